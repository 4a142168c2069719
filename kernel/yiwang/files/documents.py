"""PDF and Office Open XML (DOCX/XLSX) by their structure.

A DOCX or XLSX is a zip whose ``[Content_Types].xml`` names the main part with the right content
type; a plain zip, a macro-enabled document (.docm/.xlsm: the main type says so, or a
``vbaProject`` part is present), a template or a presentation is not one.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile

from yiwang.files.errors import CORRUPT, TYPE_NOT_ALLOWED, Refused

#: Main part and its content type, per accepted type.
MAIN_PARTS = {
    "docx": ("/word/document.xml",
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
    "xlsx": ("/xl/workbook.xml",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
}  # fmt: skip
_CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"
#: Bounds on what a zip may declare, so checking it can never unpack a zip bomb.
MAX_ENTRIES = 10_000
MAX_UNPACKED = 200 * 1024 * 1024
MAX_CONTENT_TYPES = 1024 * 1024
#: What Office documents are named: refusing one (macros, a presentation) is not a disguise.
_OFFICE = ("docx", "docm", "dotx", "xlsx", "xlsm", "xltx", "pptx", "pptm")


def ooxml_type(data: bytes) -> str:
    """``"docx"`` or ``"xlsx"`` for a zip that is one; refuses anything else."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise Refused(CORRUPT, "压缩结构损坏或不完整") from None
    if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_UNPACKED:
        raise Refused(TYPE_NOT_ALLOWED, "解压后过大的压缩包")
    names = {i.filename for i in infos}
    if "[Content_Types].xml" not in names:
        raise Refused(TYPE_NOT_ALLOWED, "ZIP 压缩包", extensions=("zip",))
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise Refused(TYPE_NOT_ALLOWED, "含宏的 Office 文档", extensions=_OFFICE)
    overrides = _overrides(archive, archive.getinfo("[Content_Types].xml"))
    if any("macroenabled" in ct.lower() or "vbaproject" in ct.lower() for ct in overrides.values()):
        raise Refused(TYPE_NOT_ALLOWED, "含宏的 Office 文档", extensions=_OFFICE)
    found = [
        name
        for name, (part, content_type) in MAIN_PARTS.items()
        if overrides.get(part) == content_type and part[1:] in names
    ]
    if len(found) != 1:
        raise Refused(TYPE_NOT_ALLOWED, "不是 Word（.docx）或 Excel（.xlsx）文档", extensions=_OFFICE)
    try:
        broken = archive.testzip()  # CRC of every part: catches a damaged upload
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError):
        broken = "?"
    if broken is not None:
        raise Refused(CORRUPT, "压缩内容校验失败")
    return found[0]


def _overrides(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, str]:
    """``part name → content type`` from ``[Content_Types].xml`` (part names compared as
    written; OOXML writers use the canonical ``/word/document.xml`` spelling)."""
    if info.file_size > MAX_CONTENT_TYPES:
        raise Refused(CORRUPT, "[Content_Types].xml 过大")
    try:
        raw = archive.read(info)
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError):
        raise Refused(CORRUPT, "压缩内容校验失败") from None
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():  # no entity games
        raise Refused(CORRUPT, "[Content_Types].xml 含 DTD")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError:
        raise Refused(CORRUPT, "[Content_Types].xml 格式错误") from None
    return {
        str(el.get("PartName", "")): str(el.get("ContentType", ""))
        for el in root.iter(f"{_CT}Override")
    }


# --- PDF ------------------------------------------------------------------------------------------

_PDF_HEADER = re.compile(rb"%PDF-[12]\.\d")
#: Name tokens of active content: scripts, launching programs, attached files, Flash.
_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch|EmbeddedFiles?|RichMedia)(?![A-Za-z0-9#._-])")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
#: Stream bodies (images, fonts, compressed data): binary, where any token may occur by chance.
_STREAM = re.compile(rb"(?<!end)stream\r?\n.*?endstream", re.S)


def check_pdf(data: bytes) -> None:
    """A PDF starts with its header, ends with ``%%EOF`` (else it was cut short), and shows no
    scripts, launch actions or embedded files.

    Active content hidden in compressed object streams is not seen here; serving rules
    (``file_response``) are what keep a PDF from running in the site's origin.
    """
    if not _PDF_HEADER.match(data):
        raise Refused(CORRUPT, "PDF 文件头错误")
    if b"%%EOF" not in data[-2048:]:
        raise Refused(CORRUPT, "PDF 不完整，可能未上传完")
    objects = _STREAM.sub(b"stream endstream", data)
    plain = _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), objects)  # /J#61vaScript
    if _ACTIVE.search(plain):
        raise Refused(TYPE_NOT_ALLOWED, "含脚本、启动程序或嵌入文件的 PDF", extensions=("pdf",))
