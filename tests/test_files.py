"""Stored files: types decided by content, images stored without metadata, sizes limited,
blobs content-addressed and written atomically, unreferenced blobs collected, files served
inert, the store verified. Every file here is a real one, made by the test."""

from __future__ import annotations

import io
import os
import random
import types
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from PIL import ExifTags, Image, PngImagePlugin
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.routing import Route

from yiwang.api import (
    FileRejected,
    PluginSpec,
    StoredFile,
    file_response,
    files_of,
    get_file,
    hookimpl,
    read,
    requires,
    store_file,
)
from yiwang.api import kernel as kernel_of
from yiwang.audit.models import AuditEvent
from yiwang.cli.main import Context, cli
from yiwang.errors import NotFound, SettingsError, ValidationError
from yiwang.files.blobs import BlobStore
from yiwang.files.images import has_metadata
from yiwang.files.names import clean_name
from yiwang.files.types import TYPES
from yiwang.grid import tree
from yiwang.grid.service import move_node
from yiwang.settings import FILE_KINDS, build, merge

RED = (255, 0, 0)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="22,48.5N"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


# --- real files -----------------------------------------------------------------------------------


def picture(size: tuple[int, int] = (64, 48), *, noise: bool = False) -> Image.Image:
    """White with a red block in the top-left corner (so orientation can be seen)."""
    img = Image.new("RGB", size, "white")
    if noise:
        rnd = random.Random(7)
        img.putdata([(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(size[0] * size[1])])
    img.paste(RED, (0, 0, 16, 16))
    return img


def phone_exif(orientation: int) -> Image.Exif:
    """EXIF as a phone writes it: camera, orientation, and where the photo was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "YiwangPhone"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (22.0, 48.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (108.0, 19.0, 12.0)
    return exif


def jpeg(orientation: int = 1, *, size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    out = io.BytesIO()
    picture(size, noise=noise).save(
        out, "JPEG", exif=phone_exif(orientation), xmp=XMP, comment=b"taken at home", quality=95
    )
    return out.getvalue()


def png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "家庭住址")
    out = io.BytesIO()
    picture().convert("RGBA").save(out, "PNG", pnginfo=info, exif=phone_exif(1))
    return out.getvalue()


def webp() -> bytes:
    out = io.BytesIO()
    picture().save(out, "WEBP", exif=phone_exif(1), quality=80)
    return out.getvalue()


def pdf(extra: bytes = b"", *, stream: bytes = b"") -> bytes:
    """A minimal real PDF: catalogue, page tree, one page (with a content ``stream`` if
    given); xref offsets computed."""
    contents = b" /Contents 4 0 R" if stream else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R" + extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200]" + contents + b" >>",
    ]
    if stream:
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def animated_png() -> bytes:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    return out.getvalue()


def xlsx() -> bytes:
    book = Workbook()
    book.active.append(["网格", "事件数"])
    book.active.append(["金湖社区第一网格", 3])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
MACRO_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"


def docx(main_type: str = WORD_MAIN, *, macro: bool = False) -> bytes:
    """A minimal Word document as Word lays it out (a .docm with ``macro``)."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main_type}"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>情况说明</w:t></w:r></w:p></w:body></w:document>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", content_types)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/document.xml", document)
        if macro:
            z.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0" + b"\0" * 60)
    return out.getvalue()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "hello")
    return out.getvalue()


def mp4(handler: bytes = b"vide", brand: bytes = b"isom") -> bytes:
    """An ISO media file with one track of the given handler (structure only)."""

    def box(kind: bytes, body: bytes) -> bytes:
        return (8 + len(body)).to_bytes(4, "big") + kind + body

    hdlr = box(b"hdlr", b"\0" * 4 + b"\0" * 4 + handler + b"\0" * 12 + b"track\0")
    moov = box(b"moov", box(b"trak", box(b"mdia", hdlr)))
    return box(b"ftyp", brand + b"\0\0\0\0" + brand + b"mp41") + moov + box(b"mdat", b"\0" * 64)


def mp3() -> bytes:
    """An ID3 tag and MPEG-1 layer III frames (128 kbit/s, 44.1 kHz: 417 bytes each)."""
    frame = b"\xff\xfb\x90\x00" + b"\0" * 413
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + frame * 3


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 120
PE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\0" * 120


# --- helpers --------------------------------------------------------------------------------------


def put(kernel: Any, data: bytes, filename: str, **kwargs: Any) -> StoredFile:
    with kernel.db.write() as s:
        return store_file(
            kernel, s, data=data, filename=filename, owner_type=kwargs.pop("owner_type", "case"),
            owner_id=kwargs.pop("owner_id", 1), node_path=kwargs.pop("node_path", "/1/"),
            created_by=kwargs.pop("created_by", None), **kwargs,
        )  # fmt: skip


def refused(kernel: Any, data: bytes, filename: str) -> FileRejected:
    with pytest.raises(FileRejected) as info:
        put(kernel, data, filename)
    return info.value


def blob_files(kernel: Any) -> list[Path]:
    return list(BlobStore(kernel.settings.files.path).blobs())


def row_count(kernel: Any) -> int:
    with kernel.db.read() as s:
        return int(s.execute(select(func.count()).select_from(StoredFile)).scalar_one())


def stored_bytes(kernel: Any, row: StoredFile) -> bytes:
    return BlobStore(kernel.settings.files.path).path_for(row.sha256).read_bytes()


def with_files_settings(kernel: Any, **files: Any) -> None:
    """Rebuild the kernel's settings with ``[files]`` overrides (through the real parser)."""
    s = kernel.settings
    kernel.settings = build(merge(dict(s.raw), {"files": files}), home=s.home, site_file=s.site_file)


def invoke(kernel: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    obj = Context()
    obj.__dict__["kernel"] = kernel
    monkeypatch.setattr("yiwang.cli.main._ready", lambda kernel: None)
    return CliRunner().invoke(cli, ["files", *args], obj=obj)


# --- images ---------------------------------------------------------------------------------------


def test_a_phone_photo_is_stored_upright_without_gps_exif_or_xmp(kernel: Any) -> None:
    original = jpeg(orientation=3)  # "rotate 180° to display"
    with Image.open(io.BytesIO(original)) as img:  # the test file really carries it all
        assert img.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
        assert "xmp" in img.info and img.getpixel((0, 0))[0] > 200
    row = put(kernel, original, "现场照片.jpg", owner_id=7, created_by=3)
    assert (row.mime, row.kind, row.original_name) == ("image/jpeg", "image", "现场照片.jpg")
    data = stored_bytes(kernel, row)
    assert row.size == len(data) and b"Exif" not in data and b"xmpmeta" not in data
    assert b"taken at home" not in data and not has_metadata(data)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.size == (64, 48)
        assert not img.getexif() and not img.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        # Turned as the phone said: the red corner is now bottom-right.
        assert img.getpixel((63, 47))[0] > 200 and img.getpixel((63, 47))[1] < 60
        assert img.getpixel((0, 0)) > (200, 200, 200)


def test_a_sideways_photo_is_turned_upright(kernel: Any) -> None:
    row = put(kernel, jpeg(orientation=6), "竖拍.jpg")  # "rotate 90° clockwise to display"
    with Image.open(io.BytesIO(stored_bytes(kernel, row))) as img:
        assert img.size == (48, 64)
        assert img.getpixel((47, 0))[0] > 200 and img.getpixel((47, 0))[1] < 60


@pytest.mark.parametrize(
    ("make", "name", "mime"), [(png, "截图.png", "image/png"), (webp, "图.webp", "image/webp")]
)
def test_png_and_webp_are_accepted_and_lose_their_metadata(
    kernel: Any, make: Any, name: str, mime: str
) -> None:
    original = make()
    assert has_metadata(original)
    row = put(kernel, original, name)
    assert row.mime == mime and row.kind == "image"
    data = stored_bytes(kernel, row)
    assert not has_metadata(data) and "家庭住址".encode() not in data
    with Image.open(io.BytesIO(data)) as img:
        red, green, blue = img.getpixel((0, 0))[:3]
        assert img.size == (64, 48) and red > 240 and green < 16 and blue < 16


def test_a_truncated_photo_is_refused_as_damaged(kernel: Any) -> None:
    whole = jpeg(size=(200, 150), noise=True)
    error = refused(kernel, whole[: len(whole) * 3 // 5], "半张.jpg")
    assert str(error) == "半张.jpg：图片已损坏"
    assert blob_files(kernel) == [] and row_count(kernel) == 0


def test_a_picture_declaring_enormous_dimensions_is_refused(kernel: Any) -> None:
    # A few hundred bytes that would decode to 10 000 × 10 000 pixels (a decompression bomb).
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")
    assert len(out.getvalue()) < 50_000
    assert refused(kernel, out.getvalue(), "bomb.png").reason == "图片已损坏"


# --- documents, audio, video ---------------------------------------------------------------------


def test_documents_audio_and_video_are_accepted_by_content(kernel: Any) -> None:
    cases = [
        (pdf(), "情况说明.pdf", "application/pdf", "document"),
        # Binary stream data may hold any bytes, "/JS" included: that is not a script.
        (pdf(stream=b"\x00\x9c/JS /Launch\xff" * 50), "扫描.pdf", "application/pdf", "document"),
        (docx(), "报告.docx", TYPES["docx"].mime, "document"),
        (xlsx(), "台账.xlsx", TYPES["xlsx"].mime, "document"),
        (mp3(), "语音.mp3", "audio/mpeg", "audio"),
        (b"#!AMR\n" + b"\x3c" + b"\0" * 31, "语音.amr", "audio/amr", "audio"),
        (mp4(b"soun", b"M4A "), "录音.m4a", "audio/mp4", "audio"),
        (mp4(b"soun", b"mp42"), "voice.mp4", "audio/mp4", "audio"),  # audio-only .mp4
        (mp4(b"vide"), "现场.mp4", "video/mp4", "video"),
    ]
    for data, name, mime, kind in cases:
        row = put(kernel, data, name)
        assert (row.mime, row.kind, row.original_name) == (mime, kind, name)
        assert stored_bytes(kernel, row) == data  # stored as they came


def test_a_file_without_extension_gets_the_one_of_its_content(kernel: Any) -> None:
    assert put(kernel, pdf(), "扫描件").original_name == "扫描件.pdf"
    assert put(kernel, jpeg(), "").original_name == "file.jpg"


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (plain_zip(), "资料.zip", "资料.zip：文件类型不允许（ZIP 压缩包）"),
        (plain_zip(), "资料.docx", "资料.docx：文件内容与扩展名不符（扩展名 .docx，实际内容：ZIP 压缩包）"),
        (docx(MACRO_MAIN, macro=True), "宏.docm", "宏.docm：文件类型不允许（含宏的 Office 文档）"),
        (docx(MACRO_MAIN), "宏.docx", "宏.docx：文件类型不允许（含宏的 Office 文档）"),
        (docx(macro=True), "夹带.docx", "夹带.docx：文件类型不允许（含宏的 Office 文档）"),
        (xlsx(), "表格.docx", "表格.docx：文件内容与扩展名不符（扩展名 .docx，实际内容：Excel 表格）"),
        (HTML, "photo.jpg", "photo.jpg：文件内容与扩展名不符（扩展名 .jpg，实际内容：HTML 网页）"),
        (HTML, "page.html", "page.html：文件类型不允许（HTML 网页）"),
        (ELF, "照片.png", "照片.png：文件内容与扩展名不符（扩展名 .png，实际内容：Linux 可执行程序）"),
        (PE, "照片.jpg", "照片.jpg：文件内容与扩展名不符（扩展名 .jpg，实际内容：Windows 可执行程序）"),
        (PE, "setup.exe", "setup.exe：文件类型不允许（Windows 可执行程序）"),
        (animated_png(), "动图.png", "动图.png：文件类型不允许（动图）"),
        (SVG, "图标.svg", "图标.svg：文件类型不允许（SVG 图像（可含脚本））"),
        (b"", "空.jpg", "空.jpg：文件为空"),
        (jpeg(), "照片.png", "照片.png：文件内容与扩展名不符（扩展名 .png，实际内容：JPEG 图片）"),
        (jpeg(), "照片.jpg.exe", "照片.jpg.exe：文件内容与扩展名不符（扩展名 .exe，实际内容：JPEG 图片）"),
        (mp4(b"vide", b"heic"), "IMG_0001.HEIC", "IMG_0001.HEIC：文件类型不允许（HEIC 照片；请在手机相机设置中选择“兼容性最佳”（JPEG）后拍摄，或转为 JPEG 后上传）"),
        (mp4(b"vide", b"qt  "), "录像.mov", "录像.mov：文件类型不允许（MOV 视频；请转为 MP4 后上传）"),
        (pdf(b" /OpenAction << /S /JavaScript /JS (app.alert(1)) >>"), "a.pdf", "a.pdf：文件类型不允许（含脚本、启动程序或嵌入文件的 PDF）"),
        (pdf(b" /OpenAction << /S /J#61vaScript >>"), "b.pdf", "b.pdf：文件类型不允许（含脚本、启动程序或嵌入文件的 PDF）"),
        (pdf()[:-30], "c.pdf", "c.pdf：文件已损坏（PDF 不完整，可能未上传完）"),
        (mp4(b"vide")[:-20], "d.mp4", "d.mp4：文件已损坏（文件结构不完整，可能未上传完）"),
    ],
)
def test_refused_files_say_why_and_leave_nothing_behind(
    kernel: Any, data: bytes, name: str, message: str
) -> None:
    error = refused(kernel, data, name)
    assert isinstance(error, ValidationError) and error.exit_code == 5
    assert str(error) == message
    assert blob_files(kernel) == [] and row_count(kernel) == 0


def test_names_are_cleaned_of_paths_and_direction_tricks(kernel: Any) -> None:
    assert clean_name("C:\\Users\\张三\\..\\现场.jpg") == "现场.jpg"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("photo\u202egpj.exe") == "photogpj.exe"  # shows as "photoexe.jpg" otherwise
    assert clean_name("a\x00b<c>.pdf") == "ab_c_.pdf"
    long = clean_name("很长" * 100 + ".pdf")
    assert len(long) == 120 and long.endswith(".pdf")
    # The right-to-left override cannot hide an executable behind ".jpg".
    error = refused(kernel, PE, "photo\u202egpj.exe")
    assert error.filename == "photogpj.exe" and error.reason == "文件类型不允许"


# --- limits and settings -------------------------------------------------------------------------


def test_an_oversize_file_is_refused_before_anything_is_written(kernel: Any) -> None:
    with_files_settings(kernel, max_mb={"image": 0.001})
    photo = jpeg(size=(200, 150), noise=True)
    assert len(photo) > 0.001 * 1024 * 1024
    error = refused(kernel, photo, "大图.jpg")
    assert str(error) == "大图.jpg：文件过大（上限 0.001 MB）"
    assert blob_files(kernel) == [] and row_count(kernel) == 0
    assert not kernel.settings.files.path.exists()
    put(kernel, pdf(), "小文件.pdf")  # other kinds keep their own limits


def test_the_allow_list_can_narrow_the_accepted_types(kernel: Any) -> None:
    with_files_settings(kernel, allowed=["jpeg", "pdf"])
    assert str(refused(kernel, png(), "截图.png")) == "截图.png：文件类型不允许（PNG 图片）"
    put(kernel, jpeg(), "照片.jpg")


def test_files_settings_are_validated(kernel: Any) -> None:
    with pytest.raises(SettingsError, match="files.allowed 中有无法检查的类型"):
        with_files_settings(kernel, allowed=["jpeg", "svg"])
    with pytest.raises(SettingsError, match="files.max_mb.video 应为正数"):
        with_files_settings(kernel, max_mb={"video": 0})
    assert set(FILE_KINDS) == {t.kind for t in TYPES.values()}
    assert {n for names in FILE_KINDS.values() for n in names} == set(TYPES)
    assert all(TYPES[n].kind == kind for kind, names in FILE_KINDS.items() for n in names)
    assert kernel.settings.files.path == kernel.settings.home / "files"


# --- storage --------------------------------------------------------------------------------------


def test_blobs_are_content_addressed_outside_any_static_root(kernel: Any) -> None:
    first = put(kernel, pdf(), "一.pdf", owner_id=1)
    second = put(kernel, pdf(), "二.pdf", owner_id=2)
    assert first.id != second.id and first.sha256 == second.sha256
    root = kernel.settings.files.path
    assert blob_files(kernel) == [root / first.sha256[:2] / first.sha256[2:4] / first.sha256]
    assert row_count(kernel) == 2
    # The same photo twice re-encodes to the same bytes: still one blob per content.
    put(kernel, jpeg(), "a.jpg")
    put(kernel, jpeg(), "b.jpg")
    assert len(blob_files(kernel)) == 2 and row_count(kernel) == 4
    assert not any(p.name.startswith(".tmp-") for p in root.rglob("*"))


def test_files_of_and_get_file(kernel: Any) -> None:
    a = put(kernel, pdf(), "a.pdf", owner_id=5, owner_ref=11, created_by=9)
    b = put(kernel, jpeg(), "b.jpg", owner_id=5)
    put(kernel, jpeg(), "c.jpg", owner_id=6)
    put(kernel, jpeg(), "d.jpg", owner_type="notice", owner_id=5)
    with kernel.db.read() as s:
        assert [f.original_name for f in files_of(s, "case", 5)] == ["a.pdf", "b.jpg"]
        got = get_file(s, a.id)
        assert (got.owner_ref, got.created_by, got.node_path) == (11, 9, "/1/")
        assert got.created_at is not None and get_file(s, b.id).sha256 == b.sha256
        with pytest.raises(NotFound, match="附件不存在"):
            get_file(s, 999_999)


def test_a_file_prepared_before_the_transaction_is_attached_inside_it(kernel: Any) -> None:
    from yiwang.files import attach_file, prepare_file

    prepared = prepare_file(kernel, data=jpeg(orientation=6), filename="IMG_2024.JPG")
    assert prepared.name == "IMG_2024.JPG" and prepared.type.kind == "image"
    assert [p.name for p in blob_files(kernel)] == [prepared.sha256] and row_count(kernel) == 0
    with kernel.db.write() as s:
        row = attach_file(s, prepared, owner_type="case", owner_id=3, node_path="/1/", created_by=2)
        assert row.id is not None
    with kernel.db.read() as s:
        assert [(f.sha256, f.size, f.mime) for f in files_of(s, "case", 3)] == [
            (prepared.sha256, prepared.size, "image/jpeg")
        ]


def test_files_follow_their_node_when_a_subtree_moves(kernel: Any, grid: Any) -> None:
    g = grid.node("45010700100101")
    grid.node("450108001")
    row = put(kernel, pdf(), "a.pdf", node_path=g.path)
    with kernel.db.write() as s:
        move_node(kernel, s, tree.by_code(s, "450107001"), tree.by_code(s, "450108"), "450108002")
    with kernel.db.read() as s:
        assert get_file(s, row.id).node_path == tree.by_code(s, "45010800200101").path


def test_a_rolled_back_upload_leaves_a_blob_that_gc_removes(
    kernel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = put(kernel, pdf(), "kept.pdf")
    with pytest.raises(RuntimeError), kernel.db.write() as s:
        lost = store_file(kernel, s, data=jpeg(), filename="lost.jpg", owner_type="case",
                          owner_id=1, node_path="/1/", created_by=None)  # fmt: skip
        raise RuntimeError("the case step failed")
    assert row_count(kernel) == 1 and len(blob_files(kernel)) == 2
    store = BlobStore(kernel.settings.files.path)
    # Young orphans are left alone: their transaction might still commit.
    result = invoke(kernel, monkeypatch, "gc")
    assert result.exit_code == 0, result.output
    assert "已删除 0 个" in result.output and "暂留 1 个" in result.output
    assert store.path_for(lost.sha256).exists()
    result = invoke(kernel, monkeypatch, "gc", "--grace-hours", "0", "--dry-run")
    assert f"将删除 {lost.sha256}" in result.output and store.path_for(lost.sha256).exists()
    result = invoke(kernel, monkeypatch, "gc", "--grace-hours", "0")
    assert result.exit_code == 0, result.output
    assert "已删除 1 个未引用的文件" in result.output and "在用 1 个" in result.output
    assert not store.path_for(lost.sha256).exists()
    assert store.path_for(kept.sha256).read_bytes() == pdf()
    with kernel.db.read() as s:
        actions = s.execute(select(AuditEvent.action)).scalars().all()  # type: ignore[call-overload]
    assert "files.gc" in actions


def test_storing_an_orphan_again_protects_it_from_gc(kernel: Any) -> None:
    from yiwang.files.blobs import collect_garbage

    store = BlobStore(kernel.settings.files.path)
    sha = store.put(pdf())
    path = store.path_for(sha)
    old = path.stat().st_mtime - 48 * 3600
    os.utime(path, (old, old))
    row = put(kernel, pdf(), "again.pdf")  # a retry of the upload reuses the blob …
    assert row.sha256 == sha and path.stat().st_mtime > old  # … and restarts its grace period
    report = collect_garbage(store, lambda shas: set(), grace_seconds=24 * 3600)
    assert report.removed == [] and path.exists()


def test_the_periodic_gc_job_removes_old_orphans_only(kernel: Any) -> None:
    from yiwang.files.check import gc_job

    store = BlobStore(kernel.settings.files.path)
    kept = put(kernel, pdf(), "kept.pdf")
    orphan, young = store.put(jpeg()), store.put(png())
    old = store.path_for(orphan).stat().st_mtime - 25 * 3600
    for sha in (orphan, kept.sha256):
        os.utime(store.path_for(sha), (old, old))
    assert gc_job(kernel, datetime.now(UTC)) == 1
    assert not store.path_for(orphan).exists()
    assert store.path_for(young).exists() and store.path_for(kept.sha256).exists()


def test_files_check_finds_a_missing_or_corrupted_blob(
    kernel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = put(kernel, jpeg(), "现场.jpg", owner_id=1)
    put(kernel, jpeg(), "现场2.jpg", owner_id=2)
    document = put(kernel, pdf(), "说明.pdf")
    result = invoke(kernel, monkeypatch, "check")
    assert result.exit_code == 0 and "3 个附件的存储完整" in result.output
    store = BlobStore(kernel.settings.files.path)
    path = store.path_for(photo.sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    store.path_for(document.sha256).unlink()
    result = invoke(kernel, monkeypatch, "check")
    assert isinstance(result.exception, ValidationError) and result.exception.exit_code == 5
    text = str(result.exception)
    assert "3 个附件的存储有问题（共 3 个）" in text
    assert f"附件 #{photo.id}（现场.jpg）: 内容已损坏（sha256 不符）" in text
    assert f"附件 #{document.id}（说明.pdf）: 文件缺失" in text


# --- serving --------------------------------------------------------------------------------------


def _serving_plugin() -> PluginSpec:
    """A module serving its attachments the documented way: guard, look up, scope, respond."""
    hooks = types.SimpleNamespace()

    @requires("grid.view")
    def attachment(request: Request) -> Any:
        with read(request) as s:
            stored = get_file(s, int(request.path_params["file_id"]))
        return file_response(kernel_of(request), stored, download="download" in request.query_params)

    @hookimpl
    def yiwang_routes() -> list[Route]:
        return [Route("/files/{file_id:int}", attachment)]

    hooks.yiwang_routes = yiwang_routes
    return PluginSpec(name="ywt_files", version="1.0", title="附件测试", api=">=1.0,<2", hooks=hooks)


@pytest.mark.with_plugins(_serving_plugin())
def test_a_served_file_is_inert_and_keeps_its_chinese_name(
    kernel: Any, client: Any, login: Any, grid: Any
) -> None:
    grid.node("450107")
    login(role="county_staff", node="450107")
    photo = put(kernel, jpeg(orientation=3), "现场 照片.jpg")
    response = client.get(f"/p/ywt_files/files/{photo.id}")
    assert response.status_code == 200
    assert response.content == stored_bytes(kernel, photo)
    headers = response.headers
    assert headers["content-type"] == "image/jpeg"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "private"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert headers["content-disposition"] == (
        "inline; filename=\"file.jpg\"; filename*=UTF-8''%E7%8E%B0%E5%9C%BA%20%E7%85%A7%E7%89%87.jpg"
    )
    download = client.get(f"/p/ywt_files/files/{photo.id}?download=1")
    assert download.headers["content-disposition"].startswith("attachment;")
    # A PDF shows inline without the sandbox (browsers will not render it sandboxed) …
    doc = client.get(f"/p/ywt_files/files/{put(kernel, pdf(), 'report-2024.pdf').id}")
    assert doc.headers["content-type"] == "application/pdf"
    assert "sandbox" not in doc.headers["content-security-policy"]
    assert "default-src 'none'" in doc.headers["content-security-policy"]
    assert doc.headers["content-disposition"].startswith('inline; filename="report-2024.pdf";')
    # … an Office document is always a download.
    sheet = client.get(f"/p/ywt_files/files/{put(kernel, xlsx(), '台账.xlsx').id}")
    assert sheet.headers["content-disposition"].startswith('attachment; filename="file.xlsx";')
    # Video seeking: ranges are served.
    video = put(kernel, mp4(), "v.mp4")
    part = client.get(f"/p/ywt_files/files/{video.id}", headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == mp4()[:8]


@pytest.mark.with_plugins(_serving_plugin())
def test_serving_needs_the_callers_permission_and_an_existing_blob(
    kernel: Any, client: Any, login: Any, grid: Any
) -> None:
    photo = put(kernel, jpeg(), "a.jpg")
    anonymous = client.get(f"/p/ywt_files/files/{photo.id}", follow_redirects=False)
    assert anonymous.status_code in (302, 303, 401, 403, 404) and anonymous.content != stored_bytes(kernel, photo)
    grid.node("450107")
    login(role="county_staff", node="450107")
    BlobStore(kernel.settings.files.path).path_for(photo.sha256).unlink()
    with pytest.raises(NotFound, match="附件「a.jpg」的内容缺失"):
        file_response(kernel, photo)

