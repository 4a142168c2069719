"""Errors the kernel raises for bad input or environment; each carries a clear Chinese message.

The CLI turns them into a message and an exit code (``exit_code``); the web layer into a page or
JSON error. Anything else that escapes is a bug.
"""

from __future__ import annotations


class YiwangError(Exception):
    """Base of every expected failure; ``str(exc)`` is the message shown to the user."""

    exit_code = 1


class SettingsError(YiwangError):
    """Malformed or missing configuration."""

    exit_code = 2


class DatabaseUnavailable(YiwangError):
    """The database URL cannot be reached or opened."""

    exit_code = 3


class PluginError(YiwangError):
    """An enabled plugin is unknown, invalid, incompatible or failed to load."""

    exit_code = 4


class ValidationError(YiwangError):
    """Input rejected; ``problems`` lists one message per offending row or field."""

    exit_code = 5

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class NotFound(YiwangError):
    """A named object does not exist."""

    exit_code = 6


class Forbidden(YiwangError):
    """The user may not do this here (outside their jurisdiction or without the permission)."""

    exit_code = 9


class Conflict(YiwangError):
    """Someone else changed the object first (HTTP 409); the user reloads and decides again."""

    exit_code = 10


class AuditTampered(YiwangError):
    """The audit trail failed verification: a record or checkpoint was altered, removed or forged."""

    exit_code = 7
