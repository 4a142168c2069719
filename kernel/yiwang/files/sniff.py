"""What a file is, decided by its bytes alone (``filetype`` for a first opinion, then each
accepted type's own structural check). Names and the client's Content-Type play no part."""

from __future__ import annotations

import filetype  # type: ignore[import-untyped]

from yiwang.files import documents, media
from yiwang.files.errors import CORRUPT, TYPE_NOT_ALLOWED, Refused
from yiwang.files.types import TYPES, FileType

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: What ``filetype`` must agree on for the types it knows exactly.
_FILETYPE_MIME = {
    "jpeg": ("image/jpeg",),
    "png": ("image/png", "image/apng"),  # animated PNGs are refused when decoded
    "webp": ("image/webp",),
    "pdf": ("application/pdf",),
}


def detect(data: bytes) -> FileType:
    """The accepted type ``data`` is; raises ``Refused`` saying what it is otherwise."""
    name = _structural(data)
    expected = _FILETYPE_MIME.get(name)
    if expected is not None:
        guess = filetype.guess(data)
        if guess is None or guess.mime not in expected:
            raise Refused(CORRUPT, "文件头不完整")
    return TYPES[name]


def _structural(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"%PDF-"):
        documents.check_pdf(data)
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return documents.ooxml_type(data)
    if media.is_amr(data):
        return "amr"
    if data[4:8] == b"ftyp":
        return media.iso_type(data)
    if media.is_mp3(data):
        return "mp3"
    raise Refused(TYPE_NOT_ALLOWED, describe(data))


def describe(data: bytes) -> str:
    """What refused content is, in Chinese: the user learns why, the audit what was tried."""
    if data.startswith(b"MZ"):
        return "Windows 可执行程序"
    if data.startswith(b"\x7fELF"):
        return "Linux 可执行程序"
    if data[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xca\xfe\xba\xbe"):
        return "macOS 可执行程序"
    if data.startswith(b"#!"):
        return "脚本"
    text = _text_head(data)
    if "<svg" in text:
        return "SVG 图像（可含脚本）"
    if any(tag in text for tag in ("<!doctype html", "<html", "<script", "<body", "<iframe")):
        return "HTML 网页"
    if text.startswith("<?xml"):
        return "XML 文件"
    guess = filetype.guess(data)
    if guess is not None:
        return f"{str(guess.extension).upper()} 格式"
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return "文本文件"
    return "未知格式"


def _text_head(data: bytes) -> str:
    """The first KB as lower-case text, if it decodes (UTF-8 or UTF-16 with a byte-order mark)."""
    head = data[:1024]
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="ignore").strip().lower()
    return head.decode("utf-8", errors="ignore").strip().lower()
