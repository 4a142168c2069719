"""Passwords: argon2id hashes and the MLPS-grade policy (length, classes, blocklist, rotation)."""

from __future__ import annotations

from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from yiwang.settings import AuthSettings

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters

#: Common passwords and words of this field; a password containing one (case-insensitive) fails.
BLOCKLIST = (
    "password", "passw0rd", "admin", "administrator", "root", "qwerty", "asdf", "zxcv", "abc123",
    "123456", "1234567", "12345678", "111111", "000000", "888888", "666666", "iloveyou", "welcome",
    "letmein", "p@ssw0rd", "yiwang", "wangge", "zongzhi", "guangxi", "nanning", "gov", "china",
    "test", "demo", "user",
)  # fmt: skip

_CLASSES = (str.isupper, str.islower, str.isdigit)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


#: A hash of a random password, verified against when the user does not exist, so unknown users
#: cost the same time as wrong passwords (no enumeration by timing).
DUMMY_HASH = _HASHER.hash("yiwang-no-such-user-Zq8!")


def classes(password: str) -> int:
    count = sum(1 for test in _CLASSES if any(test(ch) for ch in password))
    return count + (1 if any(not ch.isalnum() for ch in password) else 0)


def problems(password: str, policy: AuthSettings, *, username: str = "") -> list[str]:
    """Every way ``password`` breaks the policy, in Chinese; empty when it is acceptable."""
    out = []
    if len(password) < policy.password_min_length:
        out.append(f"密码至少 {policy.password_min_length} 位")
    if classes(password) < policy.password_min_classes:
        out.append(f"密码须包含大写字母、小写字母、数字、符号中的至少 {policy.password_min_classes} 类")
    lowered = password.lower()
    words = [*BLOCKLIST, *(w.lower() for w in policy.password_blocklist)]
    if username and len(username) >= 3:
        words.append(username.lower())
    hit = next((w for w in words if w and w in lowered), None)
    if hit:
        out.append("密码不能包含常见词或用户名")
    return out


def expired(changed_at: datetime, now: datetime, policy: AuthSettings) -> bool:
    """Rotation: the password is older than ``password_max_age_days`` (0 disables rotation)."""
    if policy.password_max_age_days <= 0:
        return False
    return now - changed_at > timedelta(days=policy.password_max_age_days)
