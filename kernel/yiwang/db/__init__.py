"""Database access: engines, units of work, the shared metadata and migrations."""

from __future__ import annotations

from yiwang.db.bulk import table_grew
from yiwang.db.engine import Database, display_url, normalise_url

__all__ = ["Database", "display_url", "normalise_url", "table_grew"]
