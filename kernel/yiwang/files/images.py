"""Images: decoded with Pillow, turned upright, re-encoded without metadata.

Decoding every pixel is the real check: a truncated, corrupt or disguised file fails here, and
so does a decompression bomb (a small file declaring an enormous picture). The stored copy is a
fresh encoding of the pixels, so EXIF (GPS position, camera, time), XMP, comments and anything
appended after the picture are gone; only the colour profile is kept.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageOps

from yiwang.files.errors import IMAGE_CORRUPT, TYPE_NOT_ALLOWED, Refused
from yiwang.files.types import FileType

#: Pillow's decoder per type; MPO is a JPEG with extra frames (depth maps, phones' portraits).
_FORMATS = {"jpeg": ("JPEG", "MPO"), "png": ("PNG",), "webp": ("WEBP",)}
#: Largest picture decoded (Pillow's own bomb threshold, about 89 million pixels).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
JPEG_QUALITY = 90
WEBP_QUALITY = 90


def clean_image(data: bytes, ftype: FileType) -> bytes:
    """The picture in ``data`` upright and re-encoded in its own format, without metadata."""
    formats = _FORMATS[ftype.name]
    try:
        with Image.open(io.BytesIO(data), formats=[formats[0]]) as img:
            if img.format not in formats:
                raise Refused(IMAGE_CORRUPT, "内容不是声明的图片格式")
            if img.width * img.height > MAX_PIXELS:
                raise Refused(IMAGE_CORRUPT, f"尺寸过大（{img.width}×{img.height}）")
            if ftype.name != "jpeg" and getattr(img, "n_frames", 1) > 1:
                raise Refused(TYPE_NOT_ALLOWED, "动图")
            img.seek(0)  # an MPO's primary picture
            img.load()
            icc = img.info.get("icc_profile")
            transparency = img.info.get("transparency")
            upright = ImageOps.exif_transpose(img)
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(IMAGE_CORRUPT, "尺寸过大") from None
    except Exception:  # Pillow's parsers raise many kinds on hostile input; all mean "broken"
        raise Refused(IMAGE_CORRUPT) from None
    upright.info = {}  # nothing of the original's metadata may reach the encoder
    return _encode(upright, ftype, icc=icc, transparency=transparency, lossless=_lossless_webp(data))


def _lossless_webp(data: bytes) -> bool:
    return data[12:16] == b"VP8L"


def _encode(img: Image.Image, ftype: FileType, *, icc: Any, transparency: Any, lossless: bool) -> bytes:
    params: dict[str, Any] = {}
    if icc:
        params["icc_profile"] = icc
    if ftype.name == "jpeg":
        if img.mode not in ("L", "RGB", "CMYK"):
            img = img.convert("RGB")
        params |= {"quality": JPEG_QUALITY}
    elif ftype.name == "png":
        if transparency is not None and img.mode in ("P", "L", "RGB"):
            params["transparency"] = transparency
    else:
        params |= {"lossless": True} if lossless else {"quality": WEBP_QUALITY}
    out = io.BytesIO()
    img.save(out, format=_FORMATS[ftype.name][0], **params)
    encoded = out.getvalue()
    if has_metadata(encoded):
        raise RuntimeError("re-encoded image still carries metadata")  # a bug, never the user's
    return encoded


def has_metadata(data: bytes) -> bool:
    """Whether an encoded image carries EXIF, XMP or text metadata (the stored copy must not)."""
    with Image.open(io.BytesIO(data)) as img:
        if img.getexif():
            return True
        keys = {str(k).lower() for k in img.info}
        return any("exif" in k or "xmp" in k or k in ("comment", "text") for k in keys) or bool(
            getattr(img, "text", None)
        )
