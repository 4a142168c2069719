"""A page asked for in English speaks English (the catalog's completeness and the templates'
translatability are checked by the contract suite, ``test_contract.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from yiwang.api import Node

from yiwang_org import service

pytestmark = pytest.mark.with_plugins("org")


def test_the_worker_list_speaks_english(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    g = grid.node("45010700100101")
    with kernel.db.write() as s:
        community = s.get(Node, grid.get("450107001001").id)
        service.add_worker(s, community, "韦小梅", "13912345678", [s.get(Node, g.id)])
    login("community_staff", "450107001001")
    chinese = client.get("/p/org/").text
    assert "<h1>机构队伍" in chinese and "<h2>网格员</h2>" in chinese
    client.cookies.set("yiwang_locale", "en")
    english = client.get("/p/org/").text
    assert '<html lang="en">' in english
    assert "<h1>Organisations and staff" in english and "<h1>机构队伍" not in english
    assert "<h2>Grid workers</h2>" in english and ">On duty</td>" in english
    assert ">Organisations and staff</a>" in english  # the menu label, from this catalog
    assert ">韦小梅</a>" in english  # data stays as it is
