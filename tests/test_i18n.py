"""Interface catalogs stay in step with the templates, and the shell is fully translated."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from yiwang.web.i18n import Catalogs, load_catalog

ROOT = Path(__file__).resolve().parent.parent
EN = ROOT / "kernel" / "yiwang" / "locale" / "en" / "LC_MESSAGES" / "messages.po"
#: Templates a user meets on every page or before logging in: fully translated.
SHELL = ("templates/base.html", "templates/auth/login.html", "templates/search/", "templates/cases/_badge.html")


def _script() -> object:
    spec = importlib.util.spec_from_file_location("yiwang_i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_catalog_lists_every_message_of_the_templates() -> None:
    script = _script()
    folders, _ = script.kernel_sources()  # type: ignore[attr-defined]
    found = script.extract(folders, None)  # type: ignore[attr-defined]
    with EN.open("rb") as fh:
        catalog = read_po(fh)
    missing = [m for m in found if catalog.get(m) is None]
    assert not missing, f"运行 scripts/i18n.py update 以加入: {missing[:10]}"


def test_the_shell_is_fully_translated_to_english() -> None:
    script = _script()
    folders, _ = script.kernel_sources()  # type: ignore[attr-defined]
    found = script.extract(folders, None)  # type: ignore[attr-defined]
    with EN.open("rb") as fh:
        catalog = read_po(fh)
    shell = [m for m, places in found.items() if any(p.startswith(SHELL) for p, _ in places)]
    menu = [m for m, places in found.items() if ("menu", 0) in places]
    untranslated = [m for m in shell + menu if not catalog.get(m).string]
    assert shell and menu and not untranslated, untranslated


def test_placeholders_survive_translation() -> None:
    with EN.open("rb") as fh:
        catalog = read_po(fh)
    for message in catalog:
        if message.id and message.string:
            for name in ("%(n)s", "%(q)s"):
                assert (name in message.id) == (name in message.string), message.id


def test_plugin_catalogs_merge_into_the_kernel_catalog(tmp_path: Path) -> None:
    plugin = tmp_path / "locale" / "en" / "LC_MESSAGES"
    plugin.mkdir(parents=True)
    (plugin / "messages.po").write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\nmsgid "通知公告"\nmsgstr "Notices"\n', encoding="utf-8")
    catalogs = Catalogs("zh_CN", [EN.parents[2], tmp_path / "locale"])
    en = catalogs.translations("en")
    assert en.gettext("通知公告") == "Notices" and en.gettext("退出") == "Log out"
    assert catalogs.translations("zh_CN").gettext("退出") == "退出"
    assert catalogs.available == ("zh_CN", "en")
    assert load_catalog(EN).gettext("事件办理") == "Case inbox"


@pytest.mark.with_plugins("notice")
def test_a_plugin_page_speaks_english_from_the_plugin_catalog(client: Any, kernel: Any, grid: Any, login: Any) -> None:
    from yiwang_notice import service

    grid.node("45010700100101")
    with kernel.db.write() as s:
        service.post(s, grid.get("450107001001"), "停水通知", "明天停水", urgency="urgent")
    login(role="community_staff", node="450107001001")
    page = client.get("/p/notice/", headers={"Accept-Language": "en"}).text
    assert "<h1>Notices" in page and ">Urgent</span>" in page and ">Title</th>" in page
    # The shell's menu label of the plugin is translated by the plugin's catalog too.
    assert ">Notices</a>" in page
    assert "<h1>通知公告" in client.get("/p/notice/").text
