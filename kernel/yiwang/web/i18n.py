"""Interface languages (界面语言): Babel catalogs of the kernel and of every plugin.

Message ids are the Chinese source text, so zh_CN — the default and the language of the field —
needs no catalog; another language is a ``locale/<lang>/LC_MESSAGES/messages.po`` in the kernel
package and, for a plugin's own pages, in the plugin's package. Catalogs are read from the ``.po``
files at start-up (compiled in memory), so there is no build step and no binary file in git.

A request's language: the ``yiwang_locale`` cookie (set by ``POST /locale``) when it names an
available language, else the best match of ``Accept-Language``, else the site default.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from babel import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import HTTPConnection

COOKIE = "yiwang_locale"
#: The language of the message ids.
SOURCE = "zh_CN"
#: What each language is called in itself, for the switcher.
NAMES = {"zh_CN": "中文", "en": "English"}


def load_catalog(po_file: Path) -> Translations:
    """A ``.po`` file compiled in memory."""
    with po_file.open("rb") as fh:
        catalog = read_po(fh)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def _add_missing(into: Translations, other: Translations) -> None:
    """Add ``other``'s translations of messages ``into`` lacks. The kernel's catalog is read
    first, so a plugin translating the same Chinese text differently (修改 as "Edit" where the
    kernel says "Change") changes only its own new messages, never a kernel page or another
    plugin's (``Translations.merge`` would let the last plugin read win everywhere)."""
    ours: dict[Any, Any] = into._catalog  # gettext's message table
    for key, value in other._catalog.items():
        if key and not ours.get(key):
            ours[key] = value


class Catalogs:
    """Translations per language, merged from the kernel's and the plugins' locale folders."""

    def __init__(self, default: str, folders: Iterable[Path]) -> None:
        self.default = default
        self._by_lang: dict[str, Translations] = {}
        for folder in folders:
            for po_file in sorted(folder.glob("*/LC_MESSAGES/messages.po")):
                lang = po_file.parent.parent.name
                loaded = load_catalog(po_file)
                if lang in self._by_lang:
                    _add_missing(self._by_lang[lang], loaded)
                else:
                    self._by_lang[lang] = loaded
        self.available: tuple[str, ...] = tuple(dict.fromkeys([default, SOURCE, *sorted(self._by_lang)]))
        self._null = gettext.NullTranslations()

    def translations(self, lang: str) -> gettext.NullTranslations:
        return self._by_lang.get(lang, self._null)

    def choose(self, conn: HTTPConnection) -> str:
        """The language of a request (cookie, then Accept-Language, then the default)."""
        chosen = conn.cookies.get(COOKIE, "")
        if chosen in self.available:
            return chosen
        header = conn.headers.get("accept-language", "")
        if header:
            wanted = [part.split(";")[0].strip().replace("-", "_") for part in header.split(",")]
            match = negotiate_locale([w for w in wanted if w], list(self.available), sep="_")
            if match:
                return match
        return self.default


def html_lang(lang: str) -> str:
    """The BCP 47 tag of a language for ``<html lang>`` (zh_CN → zh-CN)."""
    return lang.replace("_", "-")


__all__ = ["COOKIE", "NAMES", "SOURCE", "Catalogs", "html_lang", "load_catalog"]
