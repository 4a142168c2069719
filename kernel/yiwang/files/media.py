"""Audio and video by their structure: MP3 frames, AMR, and the ISO media (MP4) box tree.

These files are stored as they came (nothing here re-encodes them); the checks make sure a file
is what it says it is, and an ISO file's tracks decide between video (MP4) and audio (M4A).
"""

from __future__ import annotations

from collections.abc import Iterator

from yiwang.files.errors import CORRUPT, TYPE_NOT_ALLOWED, Refused

AMR_MAGIC = (b"#!AMR\n", b"#!AMR-WB\n")

_VIDEO_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ",
     b"M4VP", b"mmp4", b"MSNV", b"dash", b"XAVC", b"f4v "}
)  # fmt: skip
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B "})
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
#: Boxes whose body is made of boxes, on the way from ``moov`` to each track's handler.
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia"})


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``(type, body start, box end)`` of the boxes between ``start`` and ``end``."""
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1:  # 64-bit size follows
            if pos + 16 > end:
                raise Refused(CORRUPT, "文件结构不完整")
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:  # to the end of the enclosing box
            size = end - pos
        if size < header or pos + size > end:
            raise Refused(CORRUPT, "文件结构不完整，可能未上传完")
        yield kind, pos + header, pos + size
        pos += size


def _handlers(data: bytes, start: int, end: int) -> set[bytes]:
    found: set[bytes] = set()
    for kind, body, box_end in _boxes(data, start, end):
        if kind in _CONTAINERS:
            found |= _handlers(data, body, box_end)
        elif kind == b"hdlr" and body + 12 <= box_end:
            found.add(data[body + 8 : body + 12])  # after version/flags and pre_defined
    return found


def iso_type(data: bytes) -> str:
    """``"mp4"`` (has a video track) or ``"m4a"`` (sound only) for an ISO media file (``ftyp``
    first); HEIC/AVIF photos, QuickTime and 3GP are refused with what they are."""
    boxes = list(_boxes(data, 0, len(data)))
    kind, body, end = boxes[0]
    if kind != b"ftyp" or end - body < 8:
        raise Refused(CORRUPT, "文件结构不完整")
    major = data[body : body + 4]
    if major in _HEIF_BRANDS:
        raise Refused(TYPE_NOT_ALLOWED, "HEIC 照片；请在手机相机设置中选择“兼容性最佳”（JPEG）后拍摄，或转为 JPEG 后上传")
    if major in _AVIF_BRANDS:
        raise Refused(TYPE_NOT_ALLOWED, "AVIF 图片；请转为 JPEG 后上传")
    if major == b"qt  ":
        raise Refused(TYPE_NOT_ALLOWED, "MOV 视频；请转为 MP4 后上传")
    if major[:3] in (b"3gp", b"3g2"):
        raise Refused(TYPE_NOT_ALLOWED, "3GP 音视频；请转为 MP4 或 M4A 后上传")
    if major not in _VIDEO_BRANDS | _AUDIO_BRANDS:
        raise Refused(TYPE_NOT_ALLOWED, f"未知的 MP4 类格式 {major.decode('latin-1')!r}")
    handlers: set[bytes] = set()
    has_moov = False
    for kind, body, end in boxes:
        if kind == b"moov":
            has_moov = True
            handlers |= _handlers(data, body, end)
    if not has_moov:
        raise Refused(CORRUPT, "缺少索引（moov），可能未上传完")
    if b"vide" in handlers:
        return "mp4"
    if b"soun" in handlers:
        return "m4a"
    raise Refused(CORRUPT, "没有音频或视频轨道")


# --- MP3 ------------------------------------------------------------------------------------------

_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
#: MPEG version bits → sample rates (3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5; 1 is reserved).
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _frame_length(data: bytes, pos: int) -> int:
    """Length of the MPEG audio layer III frame at ``pos``, or 0 if there is none."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return 0
    version = (data[pos + 1] >> 3) & 3
    layer = (data[pos + 1] >> 1) & 3
    bitrate_index = data[pos + 2] >> 4
    rate_index = (data[pos + 2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return 0
    bitrate = (_BITRATES_V1 if version == 3 else _BITRATES_V2)[bitrate_index] * 1000
    rate = _RATES[version][rate_index]
    padding = (data[pos + 2] >> 1) & 1
    return (144 if version == 3 else 72) * bitrate // rate + padding


def is_mp3(data: bytes) -> bool:
    """An ID3v2 tag followed by an MPEG layer III frame, or two consecutive frames."""
    pos = 0
    tagged = data[:3] == b"ID3" and len(data) >= 10
    if tagged:
        size = 0
        for byte in data[6:10]:  # "syncsafe": 7 bits per byte
            size = (size << 7) | (byte & 0x7F)
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
        limit = min(len(data), pos + 64 * 1024)
        while pos < limit and data[pos] == 0:  # padding some encoders leave after the tag
            pos += 1
    length = _frame_length(data, pos)
    if not length:
        return False
    return tagged or pos + length >= len(data) or _frame_length(data, pos + length) > 0


def is_amr(data: bytes) -> bool:
    return data.startswith(AMR_MAGIC) and len(data) > len(b"#!AMR-WB\n")
