"""Identity operations shared by every login path (web form, phone API, CLI).

One ``authenticate`` decides for all channels, so lockout, the per-IP throttle and the reply
("用户名或密码错误") are identical everywhere and never reveal whether a user exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select, update
from sqlmodel import Session, col

from yiwang.auth import passwords
from yiwang.auth.models import ApiToken, AuthSession, LoginAttempt, User
from yiwang.auth.principal import Principal
from yiwang.db import Database
from yiwang.errors import ValidationError, YiwangError
from yiwang.grid.models import utcnow
from yiwang.grid.tree import ROW_COLUMNS, NodeRow
from yiwang.grid.tree import T as NODE_T
from yiwang.rbac.authz import Grant
from yiwang.rbac.models import Assignment
from yiwang.settings import AuthSettings

GENERIC_FAILURE = "用户名或密码错误"


class LoginFailed(YiwangError):
    """A login that did not succeed; the message is safe to show (no enumeration)."""

    exit_code = 8


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def normalise_username(username: str) -> str:
    return username.strip().lower()


# --- users ------------------------------------------------------------------------------------


def create_user(
    session: Session,
    policy: AuthSettings,
    *,
    username: str,
    password: str,
    display_name: str = "",
    must_change_password: bool = True,
) -> User:
    """Validate and add a user; every problem is listed in Chinese."""
    name = normalise_username(username)
    problems = []
    if not name or len(name) > 60 or not all(ch.isalnum() or ch in "._-" for ch in name):
        problems.append("用户名须为 1–60 位字母、数字或 . _ -")
    elif session.execute(select(col(User.id)).where(col(User.username) == name)).first():
        problems.append(f"用户名 {name} 已存在")
    problems += passwords.problems(password, policy, username=name)
    if problems:
        raise ValidationError("无法创建用户", problems)
    user = User(
        username=name,
        display_name=display_name.strip()[:60],
        password_hash=passwords.hash_password(password),
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    return user


def confirm_password(db: Database, policy: AuthSettings, user_id: int, password: str) -> bool:
    """Re-check a logged-in user's password (before a sensitive change of their own account).

    Verified outside any transaction (argon2 must not hold the write lock). Failures count like
    login failures: at the lockout threshold the account locks and every session ends, so a
    stolen session cannot be used to guess the password.
    """
    with db.read() as s:
        user = s.get(User, user_id)
    if user is None:
        return False
    if passwords.verify_password(user.password_hash, password):
        return True
    now = utcnow()
    with db.write() as s:
        fails = user.failed_logins + 1
        if fails >= policy.lockout_threshold:
            s.execute(update(User).where(User.id == user_id).values(  # type: ignore[arg-type]
                failed_logins=0, locked_until=now + timedelta(minutes=policy.lockout_minutes)))  # fmt: skip
            end_sessions(s, user_id)
        else:
            s.execute(update(User).where(User.id == user_id).values(failed_logins=fails))  # type: ignore[arg-type]
    return False


def change_password(db: Database, policy: AuthSettings, user_id: int, current: str, new: str) -> None:
    """A user changes their own password; raises ValidationError with every problem."""
    if not confirm_password(db, policy, user_id, current):
        raise ValidationError("密码未修改", ["当前密码不正确"])
    with db.read() as s:
        user = s.get(User, user_id)
        assert user is not None
    problems = passwords.problems(new, policy, username=user.username)
    if new == current:
        problems.append("新密码不能与当前密码相同")
    if problems:
        raise ValidationError("密码未修改", problems)
    new_hash = passwords.hash_password(new)  # outside the write lock, like every argon2 call
    with db.write() as s:
        s.execute(
            update(User).where(User.id == user_id).values(  # type: ignore[arg-type]
                password_hash=new_hash, password_changed_at=utcnow(), must_change_password=False,
                failed_logins=0,
            )
        )  # fmt: skip


def end_sessions(session: Session, user_id: int) -> None:
    """End every browser session and revoke every API token of a user, at once."""
    session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))  # type: ignore[arg-type]
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))  # type: ignore[arg-type, union-attr]
        .values(revoked_at=utcnow())
    )


def disable_user(session: Session, user: User) -> None:
    user.active = False
    session.add(user)
    end_sessions(session, user.id or 0)


# --- authentication ---------------------------------------------------------------------------


def _aware(value: datetime | None) -> datetime | None:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def authenticate(
    db: Database, policy: AuthSettings, username: str, password: str, *, client_ip: str, channel: str
) -> User:
    """Check a password login for any channel.

    An unknown user, a wrong password, a disabled or locked account all raise LoginFailed with
    the same message after the same (argon2) work, so nothing reveals whether a user exists.
    Five consecutive failures lock the account for ``lockout_minutes``; too many failures from
    one IP within a minute are refused before any password is checked.
    """
    name = normalise_username(username)
    now = utcnow()
    with db.read() as s:
        recent = s.execute(
            select(func.count()).select_from(LoginAttempt).where(
                LoginAttempt.client_ip == client_ip,  # type: ignore[arg-type]
                LoginAttempt.success.is_(False),  # type: ignore[attr-defined]
                col(LoginAttempt.at) > now - timedelta(minutes=1),
            )
        ).scalar_one()
        user = s.scalars(select(User).where(User.username == name)).first()  # type: ignore[arg-type]
    throttled = recent >= policy.ip_failures_per_minute
    # Verify outside any transaction: argon2 is deliberately slow, the write lock must not wait.
    ok = not throttled and passwords.verify_password(
        user.password_hash if user else passwords.DUMMY_HASH, password
    )
    locked = user is not None and (_aware(user.locked_until) or now) > now
    success = bool(user and ok and user.active and not locked)
    with db.write() as s:
        s.add(LoginAttempt(username=name[:60], client_ip=client_ip[:64], channel=channel, success=success))
        if user is not None and not throttled:
            values: dict[str, object]
            if success:
                values = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
                if passwords.needs_rehash(user.password_hash):
                    values["password_hash"] = passwords.hash_password(password)
            elif locked:
                values = {}
            else:
                fails = user.failed_logins + 1
                lock = fails >= policy.lockout_threshold
                values = {
                    "failed_logins": 0 if lock else fails,
                    "locked_until": now + timedelta(minutes=policy.lockout_minutes) if lock else None,
                }
            if values:
                s.execute(update(User).where(User.id == user.id).values(**values))  # type: ignore[arg-type]
        _trail(s, "auth.login", name, client_ip, "ok" if success else "failed", channel)
    if throttled:
        raise LoginFailed("尝试过于频繁，请稍后再试")
    if not success or user is None:
        raise LoginFailed(GENERIC_FAILURE)
    return user


def _trail(session: Session, action: str, username: str, ip: str, result: str, channel: str) -> None:
    """The login's audit record, in the same transaction as its attempt row."""
    from yiwang import audit

    actor = audit.Actor(user_id=None, username=username, client_ip=ip)
    audit.record(session, action, actor=actor, object_type="user", object_id=username,
                 result=result, detail={"channel": channel})  # fmt: skip


# --- browser sessions -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str


def start_session(
    db: Database, policy: AuthSettings, user: User, *, client_ip: str, user_agent: str
) -> NewSession:
    """A fresh session (new id at every login: no fixation)."""
    token = new_token()
    csrf = new_token()
    now = utcnow()
    second = bool(user.totp_enabled)
    with db.write() as s:
        s.add(
            AuthSession(
                id=token_hash(token),
                user_id=user.id or 0,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=policy.session_absolute_hours),
                csrf_token=csrf,
                second_factor_pending=second,
                client_ip=client_ip[:64],
                user_agent=user_agent[:200],
            )
        )
    return NewSession(token=token, csrf_token=csrf)


def end_session(db: Database, token: str) -> None:
    with db.write() as s:
        s.execute(delete(AuthSession).where(AuthSession.id == token_hash(token)))  # type: ignore[arg-type]


# Built once: every request resolves its principal, and building a select() costs more than
# running it (see docs/performance.md, "Request path").
_A = Assignment.__table__  # type: ignore[attr-defined]
_GRANTS = (
    select(_A.c.id, _A.c.role, *ROW_COLUMNS)
    .join(NODE_T, NODE_T.c.id == _A.c.node_id)
    .where(_A.c.user_id == bindparam("user_id"))
    .order_by(NODE_T.c.path, _A.c.role)
)


def grants_and_nodes(session: Session, user_id: int) -> tuple[tuple[Grant, ...], dict[int, NodeRow]]:
    """The user's grants, and the row of each granted node (a request's default node is one)."""
    grants: list[Grant] = []
    nodes: dict[int, NodeRow] = {}
    for aid, role, *node in session.execute(_GRANTS, {"user_id": user_id}):
        row = NodeRow(*node)
        grants.append(Grant(aid, role, row.id, row.path, row.code, row.name, row.level))
        nodes[row.id] = row
    return tuple(grants), nodes


def grants_of(session: Session, user_id: int) -> tuple[Grant, ...]:
    return grants_and_nodes(session, user_id)[0]


#: Sessions are touched at most this often, so reads do not become writes.
TOUCH_EVERY = timedelta(seconds=60)


# The user columns a principal needs, read with the session or token row in one statement and
# without loading the User: a whole User would decrypt its sensitive fields (TOTP secret,
# mobile) on every request.
_U = User.__table__  # type: ignore[attr-defined]
_USER_COLUMNS = (_U.c.username, _U.c.display_name, _U.c.active, _U.c.must_change_password,
                 _U.c.password_changed_at, _U.c.totp_enabled)  # fmt: skip
_S = AuthSession.__table__  # type: ignore[attr-defined]
_SESSION_ROW = (
    select(_S.c.user_id, _S.c.last_seen_at, _S.c.expires_at, _S.c.csrf_token, _S.c.assignment_id,
           _S.c.second_factor_pending, *_USER_COLUMNS)  # fmt: skip
    .outerjoin(_U, _U.c.id == _S.c.user_id)
    .where(_S.c.id == bindparam("sid"))
)
_T = ApiToken.__table__  # type: ignore[attr-defined]
_TOKEN_ROW = (
    select(_T.c.user_id, _T.c.kind, _T.c.expires_at, _T.c.revoked_at, *_USER_COLUMNS)
    .outerjoin(_U, _U.c.id == _T.c.user_id)
    .where(_T.c.id == bindparam("tid"))
)


def principal_for_session(
    db: Database, policy: AuthSettings, token: str, touch: bool = True
) -> Principal | None:
    """The principal of a session cookie, or None when it is unknown, idle or expired.

    ``touch`` False leaves the idle timer alone (background refreshes)."""
    now = utcnow()
    sid = token_hash(token)
    with db.read() as s:
        row = s.execute(_SESSION_ROW, {"sid": sid}).first()
        if row is None:
            return None
        user = row if row.username is not None else None
        grants, nodes = grants_and_nodes(s, row.user_id) if user else ((), {})
    idle = now - (_aware(row.last_seen_at) or now) > timedelta(minutes=policy.session_idle_minutes)
    if user is None or not user.active or idle or (_aware(row.expires_at) or now) <= now:
        with db.write() as s:
            s.execute(delete(AuthSession).where(AuthSession.id == sid))  # type: ignore[arg-type]
        return None
    if touch and now - (_aware(row.last_seen_at) or now) > TOUCH_EVERY:
        with db.write() as s:
            s.execute(update(AuthSession).where(AuthSession.id == sid).values(last_seen_at=now))  # type: ignore[arg-type]
    current = next((g for g in grants if g.assignment_id == row.assignment_id), grants[0] if grants else None)
    return Principal(
        user_id=int(row.user_id),
        username=user.username,
        display_name=user.display_name,
        grants=grants,
        current=current,
        nodes=nodes,
        via="session",
        session_id=sid,
        csrf_token=row.csrf_token,
        must_change_password=user.must_change_password
        or passwords.expired(_aware(user.password_changed_at) or now, now, policy),
        second_factor_pending=row.second_factor_pending,
        totp_setup_required=not user.totp_enabled
        and any(g.role in policy.totp_required_roles for g in grants),
    )


def session_alive(db: Database, policy: AuthSettings, session_id: str) -> bool:
    """Is the session (by its stored id) still valid? Read only: it touches nothing."""
    now = utcnow()
    with db.read() as s:
        row = s.get(AuthSession, session_id)
    if row is None or (_aware(row.expires_at) or now) <= now:
        return False
    return now - (_aware(row.last_seen_at) or now) <= timedelta(minutes=policy.session_idle_minutes)


def switch_jurisdiction(db: Database, principal: Principal, assignment_id: int) -> None:
    if not any(g.assignment_id == assignment_id for g in principal.grants):
        raise ValidationError("没有该辖区的授权")
    with db.write() as s:
        s.execute(
            update(AuthSession).where(AuthSession.id == principal.session_id).values(assignment_id=assignment_id)  # type: ignore[arg-type]
        )


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected, given or "")


# --- phone API tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    access_expires_in: int


def issue_tokens(db: Database, policy: AuthSettings, user: User, device_id: str) -> IssuedTokens:
    device = device_id.strip()
    if not device or len(device) > 100:
        raise ValidationError("缺少设备编号 device_id（1–100 个字符）")
    access, refresh = new_token(), new_token()
    now = utcnow()
    with db.write() as s:
        s.add(ApiToken(id=token_hash(access), user_id=user.id or 0, device_id=device, kind="access",
                       expires_at=now + timedelta(minutes=policy.access_token_minutes)))  # fmt: skip
        s.add(ApiToken(id=token_hash(refresh), user_id=user.id or 0, device_id=device, kind="refresh",
                       expires_at=now + timedelta(days=policy.refresh_token_days)))  # fmt: skip
    return IssuedTokens(access, refresh, policy.access_token_minutes * 60)


def refresh_tokens(db: Database, policy: AuthSettings, refresh_token: str, device_id: str) -> IssuedTokens:
    """Rotate: the refresh token is spent, a new pair issued for the same device."""
    now = utcnow()
    with db.write() as s:
        row = s.get(ApiToken, token_hash(refresh_token))
        valid = (
            row is not None and row.kind == "refresh" and row.revoked_at is None
            and (_aware(row.expires_at) or now) > now and row.device_id == device_id.strip()
        )  # fmt: skip
        user = s.get(User, row.user_id) if row is not None else None
        if not valid or user is None or not user.active or row is None:
            raise LoginFailed("刷新令牌无效或已过期，请重新登录")
        row.revoked_at = now
        s.add(row)
    return issue_tokens(db, policy, user, device_id)


def revoke_token(db: Database, token: str) -> None:
    with db.write() as s:
        row = s.get(ApiToken, token_hash(token))
        if row is not None and row.revoked_at is None:
            s.execute(
                update(ApiToken)
                .where(ApiToken.user_id == row.user_id, ApiToken.device_id == row.device_id)  # type: ignore[arg-type]
                .values(revoked_at=utcnow())
            )


def principal_for_token(db: Database, token: str) -> Principal | None:
    now = utcnow()
    with db.read() as s:
        row = s.execute(_TOKEN_ROW, {"tid": token_hash(token)}).first()
        if row is None or row.kind != "access" or row.revoked_at is not None:
            return None
        if (_aware(row.expires_at) or now) <= now:
            return None
        if row.username is None or not row.active:
            return None
        grants, nodes = grants_and_nodes(s, row.user_id)
    return Principal(
        user_id=int(row.user_id), username=row.username, display_name=row.display_name,
        grants=grants, current=grants[0] if grants else None, nodes=nodes, via="token",
    )  # fmt: skip
