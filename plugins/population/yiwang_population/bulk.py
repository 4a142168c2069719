"""Writing many persons at once (批量写入) for the importer and the demo: stored rows sealed with
the kernel's ``Codec`` (the same ciphertexts and blind indexes the unit of work makes) and sent
to the driver in one call per batch — ``executemany`` on SQLite, ``COPY`` on PostgreSQL — in the
session's transaction. No ORM objects, so memory is one batch whatever the row count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import Session

from yiwang.api import Codec, table_grew

from yiwang_population.models import Person

#: Columns of a stored row, in order.
COLUMNS = ("node_id", "node_path", "name", "id_number", "id_number_bidx", "sex", "birth_date",
           "ethnicity", "phone", "phone_bidx", "kind", "address", "hukou_address", "occupation",
           "tags", "created_at")  # fmt: skip
TABLE = Person.__table__  # type: ignore[attr-defined]
_ID, _PHONE = TABLE.c.id_number, TABLE.c.phone


class Sealer:
    """Builds stored rows for the session's database (its keys, its date format).

    A sealer pickles with its codec (and so its keys): the importer hands one to the worker
    process it starts for a large file."""

    def __init__(self, session: Session) -> None:
        self.codec = Codec(session)
        self.sqlite = session.connection().dialect.name == "sqlite"
        now = datetime.now(UTC).replace(tzinfo=None)  # stored naive UTC, as the ORM does
        self.now: Any = now.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else now

    def id_index(self, number: str) -> str:
        return self.codec.blind_index("id_number", number)

    def row(self, *, node_id: int, node_path: str, name: str, id_number: str, sex: str, birth_date: date,
            kind: str, phone: str | None = None, ethnicity: str = "", address: str | None = None,
            hukou_address: str | None = None, occupation: str = "", tags: str = "",
            id_index: str | None = None) -> tuple[Any, ...]:  # fmt: skip
        """One stored row in ``COLUMNS`` order; ``id_index`` if the caller has it already."""
        return (node_id, node_path, *self.tail(
            name=name, id_number=id_number, sex=sex, birth_date=birth_date, kind=kind, phone=phone,
            ethnicity=ethnicity, address=address, hukou_address=hukou_address, occupation=occupation,
            tags=tags, id_index=id_index,
        ))  # fmt: skip

    def tail(self, *, name: str, id_number: str, sex: str, birth_date: date, kind: str,
             phone: str | None = None, ethnicity: str = "", address: str | None = None,
             hukou_address: str | None = None, occupation: str = "", tags: str = "",
             id_index: str | None = None) -> tuple[Any, ...]:  # fmt: skip
        """A stored row without its first two columns (the grid's id and path): what a worker
        that does not resolve grids can seal."""
        c = self.codec
        return (
            name, c.encrypt(_ID, id_number), id_index or self.id_index(id_number),
            sex, birth_date.isoformat() if self.sqlite else birth_date, ethnicity,
            None if phone is None else c.encrypt(_PHONE, phone),
            None if phone is None else c.blind_index("phone", phone),
            kind, address, hukou_address, occupation, tags, self.now,
        )  # fmt: skip


def insert(session: Session, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert stored rows into ``population_person`` in the session's transaction."""
    if not rows:
        return
    conn = session.connection()
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(COLUMNS)
    cur = raw.cursor()
    try:
        if conn.dialect.name == "sqlite":
            cur.executemany(f"INSERT INTO {TABLE.name} ({names}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
        else:
            with cur.copy(f"COPY {TABLE.name} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    finally:
        cur.close()
    # The importer looks each batch up in this table: keep its statistics in step (PostgreSQL).
    table_grew(session, TABLE.name, len(rows))
