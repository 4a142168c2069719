"""Interface catalogs stay in step with the templates, and the shell is fully translated."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from yiwang.web.i18n import Catalogs, load_catalog
from yiwang.web.messages import problems, untranslatable

ROOT = Path(__file__).resolve().parent.parent
EN = ROOT / "kernel" / "yiwang" / "locale" / "en" / "LC_MESSAGES" / "messages.po"
#: Templates a user meets on every page or before logging in: fully translated.
SHELL = ("templates/base.html", "templates/auth/login.html", "templates/search/", "templates/cases/_badge.html")
#: Every kernel and theme template: no interface text outside a message (plugins: the contract).
TEMPLATE_DIRS = (ROOT / "kernel" / "yiwang" / "templates", *sorted((ROOT / "themes").glob("*/templates")))


def _script() -> object:
    spec = importlib.util.spec_from_file_location("yiwang_i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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


def test_no_kernel_template_has_chinese_outside_a_message() -> None:
    """No allow-list: what stays Chinese (a case's title, a node's name) is data, not template text."""
    found = untranslatable(TEMPLATE_DIRS)
    assert not found, "界面文字须写成 _(\"…\")（docs/i18n.md）:\n" + "\n".join(found)


def test_the_kernel_catalog_has_no_problem() -> None:
    """Every message listed and translated, placeholders and tags as in the message."""
    script = _script()
    folders, _ = script.kernel_sources()  # type: ignore[attr-defined]
    assert problems(EN, script.extract(folders, None)) == []  # type: ignore[attr-defined]


def test_a_plugin_catalog_never_changes_a_kernel_translation(tmp_path: Path) -> None:
    """Plugin catalogs add their messages; where a plugin translates a kernel message differently,
    the kernel's translation stays — on kernel pages and on every other plugin's."""
    plugin = tmp_path / "locale" / "en" / "LC_MESSAGES"
    plugin.mkdir(parents=True)
    (plugin / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "事件办理"\nmsgstr "Event handling"\n\nmsgid "插件自己的话"\nmsgstr "The plugin\'s own words"\n',
        encoding="utf-8",
    )
    english = Catalogs("zh_CN", [EN.parent.parent.parent, tmp_path / "locale"]).translations("en")
    assert english.gettext("事件办理") == "Case inbox"
    assert english.gettext("插件自己的话") == "The plugin's own words"


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


def test_admin_and_case_pages_speak_english(app: Any, client: Any, case_net: Any, users: Any) -> None:
    from starlette.testclient import TestClient

    case = case_net.report("worker", title="井盖缺失")
    users.login(client, case_net.users["station"].username)
    client.cookies.set("yiwang_locale", "en")
    detail = client.get(f"/cases/{case.id}").text
    assert '<html lang="en">' in detail
    assert ">Details</h2>" in detail and ">Timeline</h2>" in detail and ">Time limit</h2>" in detail
    assert "<dt>Urgency</dt>" in detail and "<dt>Handling unit now</dt>" in detail
    assert "基本信息" not in detail and "流转记录" not in detail and "当前承办单位" not in detail
    assert "井盖缺失" in detail  # data stays as it was written
    with TestClient(app) as admin:
        users.login(admin, users.make("system_admin", "45").username)
        admin.cookies.set("yiwang_locale", "en")
        page = admin.get("/admin/users").text
        assert "<h1>Users</h1>" in page and ">New user</a>" in page and ">Last login</th>" in page
        assert "用户管理" not in page and "最近登录" not in page and "姓名或用户名" not in page
        admin.cookies.set("yiwang_locale", "zh_CN")
        assert "<h1>用户管理</h1>" in admin.get("/admin/users").text


def test_labels_declared_in_python_speak_english_on_case_pages(client: Any, case_net: Any, users: Any) -> None:
    """State, action, case type, urgency, tab and column titles are declared in Python; the
    templates translate them (``yiwang.web.messages.kernel_labels`` lists them in the catalog),
    and the Chinese page shows them as declared."""
    case = case_net.report("worker", title="井盖缺失", urgency="urgent")
    users.login(client, case_net.users["station"].username)
    client.cookies.set("yiwang_locale", "en")
    detail = client.get(f"/cases/{case.id}").text
    assert '<span class="tag state">To accept</span>' in detail and "<summary>Accept</summary>" in detail
    assert "<strong>Report</strong>" in detail and "<dd>Damaged public facilities（City management）</dd>" in detail
    assert "<dd>Urgent</dd>" in detail
    assert "待受理" not in detail and "<summary>受理</summary>" not in detail and "公共设施损坏" not in detail
    inbox = client.get("/cases/?tab=all").text
    assert 'aria-current="page">All' in inbox and ">Done</a>" in inbox and ">To do " in inbox
    assert '<th scope="col">State</th>' in inbox and '<span class="tag state">To accept</span>' in inbox
    assert "<td>Damaged public facilities</td>" in inbox and ">Urgent</span>" in inbox
    assert "待受理" not in inbox and "已办" not in inbox and "当前承办单位" not in inbox and "公共设施损坏" not in inbox
    client.cookies.set("yiwang_locale", "zh_CN")
    zh = client.get(f"/cases/{case.id}").text
    assert '<span class="tag state">待受理</span>' in zh and "<summary>受理</summary>" in zh
    assert "<dd>公共设施损坏（城市管理）</dd>" in zh and "<dd>紧急</dd>" in zh
    zh_inbox = client.get("/cases/?tab=all").text
    assert ">已办</a>" in zh_inbox and '<th scope="col">状态</th>' in zh_inbox and "<td>公共设施损坏</td>" in zh_inbox


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


def test_messages_escape_values_and_keep_percent_signs_however_often_asked() -> None:
    """The translations are kept per language for speed; what a template gets must not change:
    values escaped, ``%%`` a percent sign, the same answer the hundredth time, and plain text
    (no markup) where autoescape is off."""
    from jinja2 import Environment

    from yiwang.web.templating import _newstyle_gettext

    english = {"共 %(n)s 件": "%(n)s in all", "完成率 100%%": "100%% done", "事件办理": "Case inbox"}
    env = Environment(autoescape=True)
    env.globals["_"] = _newstyle_gettext(lambda m: english.get(m, m))
    page = env.from_string(
        '{{ _("共 %(n)s 件", n=v) }}|{{ _("完成率 100%%") }}|{{ _("事件办理") }}|{{ _("未译") }}'
    )
    for _round in range(3):
        assert page.render(v="<b>") == "&lt;b&gt; in all|100% done|Case inbox|未译"
    plain = Environment(autoescape=False)
    plain.globals["_"] = _newstyle_gettext(lambda m: english.get(m, m))
    assert plain.from_string('{{ _("共 %(n)s 件", n="<b>") }}').render() == "<b> in all"


def test_a_label_with_a_lone_percent_sign_renders_as_written() -> None:
    from jinja2 import Environment

    from yiwang.web.templating import _newstyle_gettext

    env = Environment(autoescape=True)
    env.globals["_"] = _newstyle_gettext(lambda m: m)
    assert env.from_string("{{ _(title) }}").render(title="完成 90% 以上") == "完成 90% 以上"
