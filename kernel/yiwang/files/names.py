"""File names: what a client sends is only a label; cleaned once, never used as a path."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_NAME = 120
_RESERVED = re.compile(r'[<>:"|?*;]')
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,10})$")


def clean_name(filename: str) -> str:
    """A safe display name: the last path component, NFC, without control, format (e.g. the
    right-to-left override of ``photo\u202egpj.exe``) or reserved characters, at most
    ``MAX_NAME`` characters with the extension kept. May be empty."""
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(_RESERVED.sub("_", name).split())
    name = name.strip(" .")
    if len(name) > MAX_NAME:
        ext = extension_of(name)
        tail = f".{ext}" if ext else ""
        name = name[: MAX_NAME - len(tail)].rstrip(" .") + tail
    return name


def extension_of(name: str) -> str:
    """The lower-case extension (``"jpg"``), or ``""`` when the name has none."""
    match = _EXTENSION.search(name)
    return match.group(1).lower() if match else ""


def content_disposition(name: str, *, attachment: bool) -> str:
    """``inline``/``attachment`` with an ASCII ``filename`` for old clients and the real name
    as ``filename*`` (RFC 5987/6266), so Chinese names survive every browser."""
    ext = extension_of(name)
    stem = name[: -len(ext) - 1] if ext else name
    ascii_stem = re.sub(r"[^A-Za-z0-9._ -]", "", stem).strip(" .") or "file"
    fallback = f"{ascii_stem}.{ext}" if ext else ascii_stem
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
