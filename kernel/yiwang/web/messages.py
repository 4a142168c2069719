"""The interface's messages: what the templates and menu items ask to translate, and what a
catalog is missing (docs/i18n.md).

Used by ``scripts/i18n.py`` (update, check), the kernel's tests and the plugin contract suite, so
the kernel and every plugin are held to the same rules:

* every message of the templates and of the menu items is in each catalog, translated, with the
  same placeholders and markup;
* no Chinese interface text stands in a template outside a message (``_("…")``, ``{% trans %}``)
  or a comment — text outside a message can never be translated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

JINJA = [("**.html", "jinja2")]
JINJA_OPTIONS = {
    "**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
}
#: Han characters (U+4E00–U+9FFF): the interface's source language.
HAN = re.compile(r"[\u4e00-\u9fff]")
#: Where Chinese may stand in a template: a message literal, a ``{% trans %}`` block, a comment.
_MAY_HOLD_CHINESE = re.compile(
    r"""\b(?:_|gettext|ngettext)\(\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
    r"""(?:\s*,\s*(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'))?"""  # ngettext's plural
    r"|\{%-?\s*trans\b.*?\{%-?\s*endtrans\s*-?%\}"
    r"|\{#.*?#\}",
    re.S,
)
_PLACEHOLDER = re.compile(r"%\(\w+\)s")
_TAG = re.compile(r"</?\w+")

Places = list[tuple[str, int]]


def extract(
    folders: Iterable[Path], menu_items: Sequence[Any] = (), labels: Iterable[str] = ()
) -> dict[str, Places]:
    """Message → where it is used: the templates under ``folders``, the labels and sections
    of ``menu_items`` (place ``("menu", 0)``; the shell translates them) and other ``labels``
    declared in Python that templates translate (place ``("label", 0)``: state and action titles,
    case types, inbox tabs and columns — see ``kernel_labels``, ``declared_labels``)."""
    found: dict[str, Places] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for filename, lineno, message, _comments, _context in extract_from_dir(
            folder, JINJA, JINJA_OPTIONS
        ):
            if isinstance(message, tuple):  # ngettext: singular, plural
                message = message[0]
            if message:
                found.setdefault(message, []).append((f"{folder.name}/{filename}", lineno))
    for item in menu_items:
        for message in (item.label, item.section):
            if message:
                found.setdefault(message, []).append(("menu", 0))
    for message in labels:
        if message and ("label", 0) not in found.get(message, ()):
            found.setdefault(message, []).append(("label", 0))
    return found


def declared_labels(workflows: Iterable[Any] = (), case_types: Iterable[Any] = ()) -> list[str]:
    """The titles ``workflows`` and ``case_types`` declare (``yiwang_workflows``,
    ``yiwang_case_types``), which the case pages translate: states, actions and their fields and
    choices, case types and their categories."""
    out: list[str] = []
    for wf in workflows:
        out.extend(st.title for st in wf.states)
        for action in wf.actions:
            out.append(action.title)
            for f in action.fields:
                out.extend([f.label, *(label for _value, label in f.choices)])
    for ct in case_types:
        out.extend([ct.title, ct.category])
    return out


def kernel_labels() -> list[str]:
    """The labels the kernel declares in Python and its templates translate: its workflow and
    case types, the timeline's own steps, inbox tabs, columns and date fields, urgencies, clocks
    and the dashboard's periods, measures, flags and cards."""
    from yiwang import builtin
    from yiwang.cases.clock import RISES
    from yiwang.cases.dashboard import FLAGS, MEASURES, PERIODS
    from yiwang.cases.inbox import COLUMNS
    from yiwang.cases.mobile import TASK_TABS
    from yiwang.cases.models import CARDS, URGENCY
    from yiwang.cases.pages import CLOCK_TITLES
    from yiwang.cases.queries import DATE_FIELDS, TABS

    return [
        *declared_labels(builtin.yiwang_workflows(), builtin.yiwang_case_types()),
        "上报",  # the first step of every timeline (``engine.report``)
        "其他",  # the category of case types declaring none (``pages.types_by_category``)
        *(rise.title for rise in RISES),
        *TABS.values(), *TASK_TABS.values(), *(c.title for c in COLUMNS), *DATE_FIELDS.values(),
        *URGENCY.values(), *PERIODS.values(), *(label for label, _filter in MEASURES.values()),
        *FLAGS.values(), *(card for card in CARDS.values() if card), *CLOCK_TITLES.values(),
    ]  # fmt: skip


def catalogs(locale_dir: Path) -> list[Path]:
    """Every ``<lang>/LC_MESSAGES/messages.po`` under ``locale_dir``."""
    return sorted(locale_dir.glob("*/LC_MESSAGES/messages.po"))


def load(po_file: Path) -> Catalog:
    with po_file.open("rb") as fh:
        return read_po(fh)


def problems(po_file: Path, found: dict[str, Places]) -> list[str]:
    """What ``po_file`` lacks for ``found``: messages missing or untranslated, and translations
    whose placeholders or tags differ from their message (one line each, in Chinese)."""
    catalog = load(po_file)
    out: list[str] = []
    for message in found:
        entry = catalog.get(message)
        if entry is None:
            out.append(f"缺少 {message!r}（运行 scripts/i18n.py update）")
        elif not entry.string:
            out.append(f"未翻译 {message!r}")
    for entry in catalog:
        if (
            entry.id
            and entry.string
            and isinstance(entry.id, str)
            and isinstance(entry.string, str)
        ):
            for pattern in (_PLACEHOLDER, _TAG):
                if sorted(pattern.findall(entry.id)) != sorted(pattern.findall(entry.string)):
                    out.append(f"译文的占位符或标记与原文不同 {entry.id!r}")
                    break
    return out


def untranslatable(folders: Iterable[Path]) -> list[str]:
    """``file:line: text`` of every template line under ``folders`` with Chinese outside a
    message or comment."""
    left: list[str] = []
    for folder in folders:
        for template in sorted(folder.rglob("*.html")) if folder.is_dir() else ():
            text = template.read_text(encoding="utf-8")
            # Blank out what may hold Chinese, keeping line breaks so line numbers stay true.
            rest = _MAY_HOLD_CHINESE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
            lines = text.splitlines()
            for number, line in enumerate(rest.splitlines(), start=1):
                if HAN.search(line):
                    left.append(
                        f"{template.relative_to(folder.parent)}:{number}: {lines[number - 1].strip()}"
                    )
    return left
