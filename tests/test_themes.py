"""Themes: a city theme extends the default one — its colours, brand and footer replace the
default's, every other template and static file still comes from the default theme."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.testclient import TestClient

from yiwang.app import create_app
from yiwang.kernel import Kernel


@pytest.fixture
def nanning(settings: Any, yiwang_db: Any) -> Iterator[TestClient]:
    city = replace(settings, theme="nanning")
    kernel = Kernel(city, db=yiwang_db)
    with TestClient(create_app(city, kernel=kernel)) as client:
        yield client
    kernel.close()


def test_the_city_theme_overrides_brand_colours_and_footer(nanning: TestClient, grid: Any, users: Any) -> None:
    grid.node("45010700100101")
    users.login(nanning, users.make("county_staff", "450107").username)
    page = nanning.get("/grid/").text
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert sheets == ["/static/theme/css/yiwang.css", "/static/theme/css/nanning.css"]
    assert '<span class="brand-city">南宁</span>' in page
    assert "南宁市社会治理综合指挥中心" in page
    # The rest of the shell is the default theme's: the menu, the search box, the language switch.
    assert '<nav class="menu" id="menu"' in page and 'id="global-q"' in page
    # Static files resolve down the chain: the city's own, then the default's.
    assert "#12794a" in nanning.get("/static/theme/css/nanning.css").text
    assert nanning.get("/static/theme/css/yiwang.css").status_code == 200


def test_the_default_theme_has_no_city_parts(client: Any, grid: Any, login: Any) -> None:
    login()
    page = client.get("/grid/").text
    assert "brand-city" not in page and "nanning.css" not in page
    assert client.get("/static/theme/css/nanning.css").status_code == 404
