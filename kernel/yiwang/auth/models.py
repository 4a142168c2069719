"""Tables of identity: users, server-side sessions, login attempts, phone API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from yiwang.grid.models import utcnow
from yiwang.privacy.fields import personal_field, sensitive_field


class User(SQLModel, table=True):
    """A staff account (工作人员账号). Usernames are stored lower-case."""

    __tablename__ = "auth_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=60, unique=True)
    display_name: str = personal_field("name", "姓名", default="", max_length=60)
    #: For e-mail notifications (docs/notifications.md); optional.
    email: str | None = personal_field("other", "电子邮箱", default=None, max_length=120)
    #: For SMS notifications; encrypted at rest, decrypted only to send.
    mobile: str | None = sensitive_field("phone", "手机号码", default=None)
    password_hash: str = Field(max_length=200)
    password_changed_at: datetime = Field(default_factory=utcnow)
    must_change_password: bool = True
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = None
    #: Base32 TOTP secret, encrypted at rest with the data key (AES-256-GCM).
    totp_secret: str | None = sensitive_field("other", "动态口令密钥", default=None)
    totp_enabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class AuthSession(SQLModel, table=True):
    """A browser session. The cookie holds a random token; only its SHA-256 is stored here."""

    __tablename__ = "auth_session"

    id: str = Field(max_length=64, primary_key=True)
    user_id: int = Field(foreign_key="auth_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    csrf_token: str = Field(max_length=64)
    #: The assignment (jurisdiction) the user works in now; None: their first one.
    assignment_id: int | None = None
    #: Password accepted, TOTP code still owed.
    second_factor_pending: bool = False
    client_ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=200)


class LoginAttempt(SQLModel, table=True):
    """One login attempt, for the per-IP throttle and the login log."""

    __tablename__ = "auth_login_attempt"
    __table_args__ = (Index("ix_auth_login_attempt_ip_at", "client_ip", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    username: str = Field(max_length=60)
    client_ip: str = Field(default="", max_length=64)
    channel: str = Field(default="web", max_length=20)
    success: bool = False


class ApiToken(SQLModel, table=True):
    """A phone API token bound to a device: short-lived access or long-lived refresh.
    Only the SHA-256 of the token is stored."""

    __tablename__ = "auth_token"

    id: str = Field(max_length=64, primary_key=True)
    user_id: int = Field(foreign_key="auth_user.id", index=True)
    device_id: str = Field(max_length=100)
    kind: str = Field(max_length=10)  # "access" | "refresh"
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None
