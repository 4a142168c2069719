"""Pinyin initials (拼音首字母) of Chinese text, stored beside names so a Latin query finds them."""

from __future__ import annotations

from pypinyin import Style, lazy_pinyin
from sqlalchemy import String

#: Stored initials are cut to this length (a prefix is what a search box matches).
INITIALS_LENGTH = 100
#: Column type for stored initials: bytewise order on PostgreSQL so ``LIKE 'ab%'`` can use an index.
INITIALS_TYPE = String(INITIALS_LENGTH).with_variant(String(INITIALS_LENGTH, collation="C"), "postgresql")


def pinyin_initials(text: str) -> str:
    """Lower-case pinyin initials of the Chinese characters in ``text``, other letters and
    digits kept: ``西乡塘区2号`` → ``xxtq2h``. Polyphonic characters take their commonest reading."""
    parts = lazy_pinyin(text, style=Style.FIRST_LETTER, errors="default", strict=False)
    return "".join(ch for ch in "".join(parts).lower() if ch.isalnum())[:INITIALS_LENGTH]


__all__ = ["INITIALS_LENGTH", "INITIALS_TYPE", "pinyin_initials"]
