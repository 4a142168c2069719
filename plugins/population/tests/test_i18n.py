"""A page asked for in English speaks English (the catalog's completeness and the templates'
translatability are checked by the contract suite, ``test_contract.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from yiwang.api import Node

from yiwang_population import hooks, service

pytestmark = pytest.mark.with_plugins("population")


def test_the_person_list_speaks_english(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    g = grid.node("45010700100101")
    body = "45010719850101123"
    with kernel.db.write() as s:
        service.register(s, s.get(Node, g.id), name="张三", id_number=body + hooks.checksum(body))
    login("community_staff", "450107001001")
    chinese = client.get("/p/population/").text
    assert "<h1>实有人口" in chinese and ">公民身份号码</th>" in chinese
    client.cookies.set("yiwang_locale", "en")
    english = client.get("/p/population/").text
    assert '<html lang="en">' in english
    assert "<h1>Resident population" in english and "<h1>实有人口" not in english
    assert ">Citizen ID number</th>" in english and ">公民身份号码</th>" not in english
    assert ">Resident population</a>" in english  # the menu label, from this catalog
    assert ">张*</a>" in english  # data stays as it is (masked)
