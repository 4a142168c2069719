"""Field encryption (AES-256-GCM) and blind indexes (HMAC-SHA256) with per-deployment keys.

Keys travel with the engine: the ``Kernel`` binds a loader of its deployment's ``DataKeys``
(``yiwang.keys``) to ``engine.dialect``, the one object SQLAlchemy hands to column types when it
encrypts a parameter or decrypts a result. No module holds keys, so kernels of different
deployments live side by side in one process.

Ciphertext, stored as text: ``v1:`` + base64(nonce ‖ ciphertext ‖ tag), a random 96-bit nonce,
and the column's ``table.column`` as associated data, so a ciphertext copied into another
column (or another table) fails authentication instead of decrypting.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from yiwang.errors import YiwangError
from yiwang.keys import DataKeys
from yiwang.privacy.idcard import normalise_id, upgrade_15

VERSION = "v1"
_PREFIX = VERSION + ":"
_NONCE_BYTES = 12
#: Hex characters kept of the HMAC: 128 bits, collision-free at any realistic scale.
BLIND_INDEX_LENGTH = 32
_DIALECT_ATTR = "yiwang_data_keys"


class PrivacyError(YiwangError):
    """The privacy mechanism cannot do what was asked (missing keys, misdeclared field)."""


class DecryptionError(PrivacyError):
    """A stored ciphertext failed authentication or cannot be read."""


class _KeySource:
    """Loads a deployment's keys on first use and keeps them."""

    def __init__(self, load: Callable[[], DataKeys]) -> None:
        self._load = load
        self._keys: DataKeys | None = None
        self._lock = threading.Lock()

    def get(self) -> DataKeys:
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    self._keys = self._load()
        return self._keys


def bind_data_keys(engine: Any, keys: DataKeys | Callable[[], DataKeys]) -> None:
    """Make ``keys`` (or a loader called on first use) the data keys of ``engine``.

    The kernel does this for its database; a test or a script with its own engine does it too.
    Binding again replaces the keys (the test kit shares one database between test sites).
    """
    load = keys if callable(keys) else (lambda: keys)
    setattr(engine.dialect, _DIALECT_ATTR, _KeySource(load))


def keys_of(bind: Any) -> DataKeys:
    """The data keys bound to a dialect, engine, connection or session."""
    dialect = _dialect_of(bind)
    source: _KeySource | None = getattr(dialect, _DIALECT_ATTR, None)
    if source is None:
        raise PrivacyError(
            "数据库连接未加载数据密钥，无法处理加密字段（内核启动时会自动加载；脚本中请调用 bind_data_keys）"
        )
    return source.get()


def _dialect_of(bind: Any) -> Any:
    if hasattr(bind, "get_bind"):  # Session
        bind = bind.get_bind()
    return getattr(bind, "dialect", bind)


# --- encryption -------------------------------------------------------------------------------


def encrypt(key: bytes, aad: str, plaintext: str) -> str:
    """Seal ``plaintext`` for the column named ``aad`` (``table.column``)."""
    return encrypt_with(AESGCM(key), aad, plaintext)


def encrypt_with(aead: AESGCM, aad: str, plaintext: str) -> str:
    """``encrypt`` with the cipher made once (``AESGCM(key)``): for code sealing many values."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
    return _PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(key: bytes, aad: str, token: str) -> str:
    """Open a ciphertext of the column ``aad``; raise ``DecryptionError`` rather than guess."""
    if not token.startswith(_PREFIX):
        version = token.split(":", 1)[0][:8] if ":" in token else "无"
        raise DecryptionError(
            f"无法解密字段 {aad}: 密文版本不可识别（{version}），数据可能未经加密写入"
        )
    try:
        raw = base64.b64decode(token[len(_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(f"无法解密字段 {aad}: 密文已损坏") from None
    if len(raw) < _NONCE_BYTES + 16:
        raise DecryptionError(f"无法解密字段 {aad}: 密文已损坏")
    try:
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad.encode("utf-8"))
    except InvalidTag:
        raise DecryptionError(
            f"无法解密字段 {aad}: 认证失败——数据被篡改、从其他字段移来，或数据密钥与加密时不同"
        ) from None
    return plain.decode("utf-8")


# --- blind index ------------------------------------------------------------------------------

_NON_DIGITS = re.compile(r"\D+")
_SPACES = re.compile(r"\s+")


def normalise_for_index(kind: str, value: str) -> str:
    """The form two spellings of one value share.

    ``id_number``: full-width folded, spaces removed, upper-case; a 15-digit number becomes its
    18-character form. ``phone``: digits only, a leading 86/0086 before an 11-digit mobile
    dropped. Other kinds: full-width folded, spaces collapsed, trimmed.
    """
    if kind == "id_number":
        number = normalise_id(value)
        if len(number) == 15 and number.isascii() and number.isdigit():
            number = upgrade_15(number)
        return number
    if kind == "phone":
        digits = _NON_DIGITS.sub("", unicodedata.normalize("NFKC", value))
        for cc in ("0086", "86"):
            if digits.startswith(cc) and len(digits) == len(cc) + 11 and digits[len(cc)] == "1":
                return digits[len(cc) :]
        return digits
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def blind_index(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of the normalised value, separated by kind (hex, ``BLIND_INDEX_LENGTH``).

    The kind, not the column, goes into the MAC: the same person's number has the same index in
    every table, so modules can match people without decrypting.
    """
    return blind_index_with(index_mac(key), kind, value)


def index_mac(key: bytes) -> Any:
    """The keyed HMAC state ``blind_index_with`` copies (the key schedule done once)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def blind_index_with(mac: Any, kind: str, value: str) -> str:
    """``blind_index`` from a state made by ``index_mac``: for code indexing many values."""
    message = f"yiwang.bidx.{VERSION}\x00{kind}\x00{normalise_for_index(kind, value)}"
    h = mac.copy()
    h.update(message.encode("utf-8"))
    return str(h.hexdigest()[:BLIND_INDEX_LENGTH])


__all__ = [
    "BLIND_INDEX_LENGTH",
    "DecryptionError",
    "PrivacyError",
    "bind_data_keys",
    "blind_index",
    "blind_index_with",
    "decrypt",
    "encrypt",
    "encrypt_with",
    "index_mac",
    "keys_of",
    "normalise_for_index",
]
