"""Recipient addresses: validation of what users enter, and keeping addresses out of texts."""

from __future__ import annotations

import re

from yiwang.errors import ValidationError
from yiwang.privacy.masking import mask_phone, mask_text

#: Good enough to catch typos; the mail server is the judge of the rest.
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
#: A mainland mobile number: 11 digits, 1 then 3–9.
MOBILE_PATTERN = re.compile(r"^1[3-9]\d{9}$")
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


def clean_email(value: str) -> str | None:
    """A stripped, lower-cased domain address, None for blank; ValidationError when malformed."""
    value = value.strip()
    if not value:
        return None
    if len(value) > 120 or not EMAIL_PATTERN.match(value):
        raise ValidationError("电子邮箱格式不正确（例如 zhang@example.gov.cn）")
    local, domain = value.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def clean_mobile(value: str) -> str | None:
    """11 digits (spaces, dashes and a +86 prefix removed), None for blank; ValidationError
    unless a mainland mobile number."""
    digits = re.sub(r"[\s\-]", "", value)
    if not digits:
        return None
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    if not MOBILE_PATTERN.match(digits):
        raise ValidationError("手机号码应为 11 位中国大陆手机号（1 开头，第二位 3–9）")
    return digits


def mask_email(value: str) -> str:
    """``z***@example.gov.cn``: the first character of the local part and the domain."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def scrub(text: str, *addresses: str | None) -> str:
    """``text`` without the given addresses, e-mail addresses, mobile or identity numbers —
    for error messages that are stored and logged."""
    for address in addresses:
        if address:
            text = text.replace(address, mask_email(address) if "@" in address else mask_phone(address))
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)
    return mask_text(text)
