"""Why a file is refused: an internal ``Refused`` from the checks, shown as ``FileRejected``."""

from __future__ import annotations

from yiwang.errors import ValidationError

# The reasons, as the user reads them.
TYPE_NOT_ALLOWED = "文件类型不允许"
TOO_LARGE = "文件过大"
MISMATCH = "文件内容与扩展名不符"
IMAGE_CORRUPT = "图片已损坏"
CORRUPT = "文件已损坏"
EMPTY = "文件为空"


class Refused(Exception):
    """Raised by the content checks, which do not know the file's name."""

    def __init__(self, reason: str, detail: str = "", *, extensions: tuple[str, ...] = ()) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
        #: Extensions this content honestly carries (a PDF with scripts is still a .pdf);
        #: another accepted type's extension on it is a disguise.
        self.extensions = extensions


class FileRejected(ValidationError):
    """A file the kernel will not store: ``照片.jpg：文件类型不允许（HTML 网页）``.

    ``filename`` is the (sanitised) name, ``reason`` one of the reasons above, ``detail`` what
    was found or the limit.
    """

    def __init__(self, filename: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{filename}：{reason}" + (f"（{detail}）" if detail else ""))
        self.filename = filename
        self.reason = reason
        self.detail = detail
