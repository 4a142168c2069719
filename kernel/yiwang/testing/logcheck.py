"""A test-wide guard: no log record may carry a raw identity number or mobile number.

Use the fixture ``no_personal_data_in_logs`` (autouse where imported into a ``conftest.py``)::

    from yiwang.testing.logcheck import no_personal_data_in_logs  # noqa: F401

It fails a test when any record captured during its setup or call holds an identity number with
a valid checksum or a mainland mobile number (``find_personal_data``: precise enough that
timestamps, ids and grid codes do not trip it). The failure names the record masked, never raw.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from yiwang.privacy.masking import find_personal_data

_formatter = logging.Formatter()


def personal_data_in(records: list[logging.LogRecord]) -> list[str]:
    """One line per record holding raw personal data, with that data masked."""
    problems = []
    for record in records:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_text:
            text += "\n" + record.exc_text
        elif record.exc_info:
            text += "\n" + _formatter.formatException(record.exc_info)
        found = find_personal_data(text)
        if found:
            problems.append(f"{record.name}:{record.lineno}: {', '.join(found)}")
    return problems


@pytest.fixture(autouse=True)
def no_personal_data_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if a log record of its setup or call holds raw personal data."""
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    problems = personal_data_in(records)
    if problems:
        pytest.fail(
            "日志中出现未脱敏的个人信息（身份证号/手机号）:\n" + "\n".join(problems), pytrace=False
        )
