"""The kernel stays typed (mypy --strict) and lint-clean (ruff): both run as part of the suite
so a change cannot land that breaks them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_kernel_passes_mypy_strict() -> None:
    result = _run("mypy", "--no-error-summary")
    assert result.returncode == 0, result.stdout[-4000:]


def test_code_passes_ruff() -> None:
    result = _run("ruff", "check", "kernel", "plugins", "tests", "scripts", "bench")
    assert result.returncode == 0, result.stdout[-4000:]
