"""The kernel API for plugins: import from here (and ``yiwang.testing`` in tests), nothing else.

Everything named in ``__all__`` is part of the versioned plugin API (``API_VERSION``); the
contract suite fails a plugin that imports other ``yiwang`` modules.

Endpoints that use the database or the request's node are plain ``def`` functions: Starlette
runs them in a thread pool, where these helpers may block.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from markupsafe import Markup
from sqlmodel import Session
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse

from yiwang import API_VERSION, __version__, notify, stats
from yiwang.audit import Actor
from yiwang.audit import record as audit
from yiwang.cases.api import doer_of
from yiwang.cases.engine import ActionInput, Doer, NewCase, Upload
from yiwang.cases.engine import act as act_on_case
from yiwang.cases.engine import report as report_case
from yiwang.cases.workflow import Action, CaseType, FormField, Limits, State, Workflow
from yiwang.db import table_grew
from yiwang.dicts import dictionary
from yiwang.dicts import labels as dictionary_labels
from yiwang.errors import Forbidden, NotFound, ValidationError, YiwangError
from yiwang.files import FileRejected, StoredFile, file_response, files_of, get_file, store_file
from yiwang.grid.geo import distance_m, gcj02_to_wgs84, wgs84_to_gcj02
from yiwang.grid.levels import Level
from yiwang.grid.models import PATH_TYPE, Node, Organisation
from yiwang.grid.shapes import contains as outline_contains
from yiwang.grid.shapes import point_inside
from yiwang.grid.tree import NodeRow, ancestor_ids, is_within, move_paths
from yiwang.grid.tree import within as subtree_filter
from yiwang.hookspecs import hookimpl
from yiwang.jobs import Job
from yiwang.kernel import Kernel
from yiwang.notify import Message, Notifier
from yiwang.pinyin import INITIALS_TYPE, pinyin_initials
from yiwang.plugins.records import Dictionary, MapLayer, MenuItem, Permission, RoleSpec, SearchHit
from yiwang.plugins.spec import PluginSpec, Scope
from yiwang.privacy import (
    Codec,
    DecryptionError,
    IdInfo,
    InvalidIdNumber,
    PersonalField,
    audit_reveal,
    blind_equals,
    blind_in,
    blind_index_field,
    csv_values,
    lookup,
    mask,
    mask_text,
    masked_row,
    personal_field,
    personal_fields_of,
    reveal,
    sensitive_field,
    text_fields,
    validate_id,
    xlsx_append,
    xlsx_cells,
)
from yiwang.rbac.guard import AUTHENTICATED, PUBLIC, public, require, requires
from yiwang.stats import Indicator
from yiwang.web.context import actor, current_node, kernel_of, principal
from yiwang.web.prefs import SavedFilter, get_pref, save_filter, saved_filters, set_pref
from yiwang.web.prefs import delete_filter as delete_saved_filter
from yiwang.web.search import text_match as search_match


def kernel(conn: HTTPConnection) -> Kernel:
    """The kernel serving this request."""
    return kernel_of(conn)


def read(conn: HTTPConnection) -> AbstractContextManager[Session]:
    """A read-only session: ``with read(request) as s: ...``."""
    return kernel_of(conn).db.read()


def write(conn: HTTPConnection) -> AbstractContextManager[Session]:
    """A unit of work that commits on success: ``with write(request) as s: ...``."""
    return kernel_of(conn).db.write()


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render a page template in the site's layout (only its content for htmx requests).

    A page template starts with ``{% extends "base.html" if not htmx else "fragment.html" %}``
    and fills ``{% block title %}`` and ``{% block content %}``.
    """
    k = kernel_of(request)
    return k.templates.render(
        request, name, context, status_code=status_code, node=current_node(request)
    )


def render_fragment(request: Request, name: str, context: dict[str, Any] | None = None) -> Markup:
    """Render a template to HTML (for template slots)."""
    return kernel_of(request).templates.render_fragment(name, {"request": request, **(context or {})})


__all__ = [
    "API_VERSION",
    "AUTHENTICATED",
    "Forbidden",
    "Actor",
    "audit",
    "actor",
    "PUBLIC",
    "Permission",
    "RoleSpec",
    "principal",
    "public",
    "require",
    "requires",
    "Kernel",
    "Level",
    "MapLayer",
    "Markup",
    "MenuItem",
    "Node",
    "NodeRow",
    "NotFound",
    "PATH_TYPE",
    "Organisation",
    "PluginSpec",
    "Scope",
    "ValidationError",
    "YiwangError",
    "__version__",
    "ancestor_ids",
    "current_node",
    "hookimpl",
    "is_within",
    "kernel",
    "move_paths",
    "read",
    "render",
    "render_fragment",
    "subtree_filter",
    "write",
    # dictionaries (docs/dictionaries.md)
    "Dictionary",
    "dictionary",
    "dictionary_labels",
    # global search (docs/plugins/hooks.md, yiwang_search)
    "INITIALS_TYPE",
    "SearchHit",
    "pinyin_initials",
    "search_match",
    # coordinates (docs/grid.md)
    "distance_m",
    "gcj02_to_wgs84",
    "wgs84_to_gcj02",
    # node outlines and the map (docs/grid.md)
    "outline_contains",
    "point_inside",
    # privacy (docs/privacy.md)
    "Codec",
    "DecryptionError",
    "IdInfo",
    "InvalidIdNumber",
    "PersonalField",
    "audit_reveal",
    "blind_equals",
    "blind_in",
    "blind_index_field",
    "csv_values",
    "lookup",
    "mask",
    "mask_text",
    "masked_row",
    "personal_field",
    "personal_fields_of",
    "reveal",
    "sensitive_field",
    "text_fields",
    "validate_id",
    "xlsx_append",
    "xlsx_cells",
    # cases (docs/cases.md)
    "Action",
    "ActionInput",
    "CaseType",
    "Doer",
    "FormField",
    "Limits",
    "NewCase",
    "State",
    "Upload",
    "Workflow",
    "act_on_case",
    "doer_of",
    "report_case",
    # bulk writes (docs/architecture.md: bulk units)
    "table_grew",
    # statistics (docs/stats.md)
    "Indicator",
    "stats",
    # files (docs/files.md)
    "FileRejected",
    "StoredFile",
    "file_response",
    "files_of",
    "get_file",
    "store_file",
    # notifications (docs/notifications.md)
    "Message",
    "Notifier",
    "notify",
    # jobs (docs/jobs.md)
    "Job",
    # per-user preferences and saved queries (docs/architecture.md, "Preferences")
    "SavedFilter",
    "delete_saved_filter",
    "get_pref",
    "save_filter",
    "saved_filters",
    "set_pref",
]
