"""Key files the database never holds: the data key (field encryption + blind-index HMAC) and
the audit signing key (Ed25519). Created by ``yiwang init`` with mode 600; losing the data key
loses the encrypted fields, so deployments back the key folder up separately from the database.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from yiwang.errors import SettingsError
from yiwang.settings import Settings

_DATA_KEY_BYTES = 64  # 32 for AES-256-GCM, 32 for the HMAC-SHA256 blind index


@dataclass(frozen=True)
class DataKeys:
    """Keys for sensitive fields: ``encryption`` (AES-256-GCM) and ``index`` (HMAC-SHA256)."""

    encryption: bytes
    index: bytes


def _write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def ensure_keys(settings: Settings) -> list[Path]:
    """Create whichever key file is missing; returns the files created."""
    created = []
    if not settings.data_key_file.exists():
        _write_secret(settings.data_key_file, secrets.token_bytes(_DATA_KEY_BYTES))
        created.append(settings.data_key_file)
    if not settings.audit_key_file.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_secret(settings.audit_key_file, pem)
        created.append(settings.audit_key_file)
    return created


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"{what}文件不存在: {path}（请运行 `yiwang init` 或恢复备份的密钥）") from None
    except OSError as exc:
        raise SettingsError(f"无法读取{what}文件 {path}: {exc}") from None


def data_keys(settings: Settings) -> DataKeys:
    raw = _read(settings.data_key_file, "数据密钥")
    if len(raw) != _DATA_KEY_BYTES:
        raise SettingsError(f"数据密钥文件 {settings.data_key_file} 长度不对（应为 {_DATA_KEY_BYTES} 字节）")
    return DataKeys(encryption=raw[:32], index=raw[32:])


def audit_signing_key(settings: Settings) -> Ed25519PrivateKey:
    raw = _read(settings.audit_key_file, "审计签名密钥")
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except ValueError as exc:
        raise SettingsError(f"审计签名密钥文件 {settings.audit_key_file} 无效: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"审计签名密钥文件 {settings.audit_key_file} 不是 Ed25519 私钥")
    return key


def audit_public_key(settings: Settings) -> Ed25519PublicKey:
    return audit_signing_key(settings).public_key()
