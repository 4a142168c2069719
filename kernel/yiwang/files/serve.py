"""Serving a stored file so that it can only ever be shown or saved, never run.

The caller has already decided that the user may see this file (the owner's permission and
scope): ``file_response`` checks nothing about who asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import FileResponse, Response

from yiwang.errors import NotFound
from yiwang.files.models import StoredFile
from yiwang.files.names import content_disposition
from yiwang.files.store import blob_store

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

#: Nothing may load or run; the browser's own viewer may show the image or play the media.
#: ``sandbox`` gives the document a unique origin without scripts, should anything slip
#: through; PDFs go without it, since browsers refuse to show a PDF in a sandboxed document.
CSP = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)
SANDBOX = "; sandbox"
#: Shown in the browser unless a download is asked for; other kinds are always downloaded.
INLINE_KINDS = frozenset({"image", "audio", "video"})
INLINE_MIMES = frozenset({"application/pdf"})


def file_response(kernel: Kernel, stored: StoredFile, *, download: bool = False) -> Response:
    """The blob of ``stored`` with its sniffed type and headers that keep it inert.

    ``Content-Type`` is the type decided at upload; ``X-Content-Type-Options: nosniff`` stops a
    browser from guessing another; ``Content-Security-Policy`` allows no script; the name is sent
    as RFC 5987 ``filename*`` (Chinese names intact); ``Cache-Control: private`` keeps shared
    caches out. Range requests are served (video seeking). Check permission before calling.
    """
    path = blob_store(kernel).path_for(stored.sha256)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise NotFound(
            f"附件「{stored.original_name}」的内容缺失，请联系管理员运行 `yiwang files check`"
        ) from None
    inline = not download and (stored.kind in INLINE_KINDS or stored.mime in INLINE_MIMES)
    csp = CSP if stored.mime in INLINE_MIMES else CSP + SANDBOX
    headers = {
        "content-disposition": content_disposition(stored.original_name, attachment=not inline),
        "x-content-type-options": "nosniff",
        "content-security-policy": csp,
        "cache-control": "private",
        "x-frame-options": "SAMEORIGIN",
        "cross-origin-resource-policy": "same-origin",
        "etag": f'"{stored.sha256}"',
    }
    return FileResponse(path, media_type=stored.mime, headers=headers, stat_result=stat)
