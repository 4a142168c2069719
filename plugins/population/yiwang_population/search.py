"""People in the global search (全局搜索 › 人员): a full, valid ID number finds its person by the
blind index (the number itself is never compared in clear); otherwise names match by substring.
Only persons where the user holds ``population.view`` are searched, and names and numbers are
shown masked, as on the list page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from yiwang.api import (
    SearchHit,
    YiwangError,
    blind_equals,
    kernel,
    mask,
    principal,
    read,
    validate_id,
)

from yiwang_population.models import KINDS, Person


def people(request: Any, q: str, limit: int) -> Sequence[SearchHit]:
    who = principal(request)
    if who is None:
        return []
    scope = kernel(request).authz.scope_filter(who.grants, "population.view", Person.node_path)
    number = None
    if len(q) in (15, 18) and q[:-1].isdigit():
        try:
            number = validate_id(q).number
        except YiwangError:
            number = None
    if number is not None:
        cond = blind_equals(Person.id_number, number)
    elif q.isascii():
        return []  # digits that are not an ID number, or Latin letters: names are Chinese
    else:
        cond = col(Person.name).contains(q, autoescape=True)
    with read(request) as s:
        rows = s.execute(
            select(Person.id, Person.name, Person.id_number, Person.kind)
            .where(cond, scope)
            .order_by(col(Person.id))
            .limit(limit)
        ).all()
    return [
        SearchHit("人员", mask(name, "name"), f"/p/population/persons/{pid}",
                  f"{KINDS.get(kind, kind)} · {mask(id_number, 'id_number')}", 0 if number else 10)  # fmt: skip
        for pid, name, id_number, kind in rows
    ]
