"""The file types the kernel accepts, each checkable by content."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("image", "document", "audio", "video")
#: Chinese names of the kinds, for messages.
KIND_LABELS = {"image": "图片", "document": "文档", "audio": "音频", "video": "视频"}


@dataclass(frozen=True)
class FileType:
    """An accepted type: ``name`` is what ``files.allowed`` lists; the first extension is the
    one given to a file uploaded without one."""

    name: str
    kind: str
    mime: str
    extensions: tuple[str, ...]
    label: str


TYPES: dict[str, FileType] = {
    t.name: t
    for t in (
        FileType("jpeg", "image", "image/jpeg", ("jpg", "jpeg", "jpe", "jfif"), "JPEG 图片"),
        FileType("png", "image", "image/png", ("png",), "PNG 图片"),
        FileType("webp", "image", "image/webp", ("webp",), "WebP 图片"),
        FileType("pdf", "document", "application/pdf", ("pdf",), "PDF 文档"),
        FileType(
            "docx", "document",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ("docx",), "Word 文档",
        ),  # fmt: skip
        FileType(
            "xlsx", "document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ("xlsx",), "Excel 表格",
        ),  # fmt: skip
        FileType("mp3", "audio", "audio/mpeg", ("mp3",), "MP3 音频"),
        FileType("amr", "audio", "audio/amr", ("amr",), "AMR 语音"),
        # An audio-only MP4 container; phones also name these .mp4.
        FileType("m4a", "audio", "audio/mp4", ("m4a", "mp4"), "M4A 音频"),
        FileType("mp4", "video", "video/mp4", ("mp4", "m4v"), "MP4 视频"),
    )
}

#: Every extension some accepted type uses: a name ending so claims to be that type.
KNOWN_EXTENSIONS = frozenset(ext for t in TYPES.values() for ext in t.extensions)
