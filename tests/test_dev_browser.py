"""``./dev test`` brings the browser the browser tests drive (``./dev browser`` alone): when
Debian's chromium or the CJK fonts are missing and it cannot install them, a developer is told
and goes on, while CI fails."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_dev(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    """``./dev browser`` on a machine where nothing is installed and the user is not root."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    for name, script in {"dpkg-query": "exit 1", "id": "echo 1000"}.items():
        (fake / name).write_text(f"#!/bin/sh\n{script}\n")
        (fake / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = f"{fake}:{env['PATH']}"
    if ci:
        env["CI"] = "true"
    return subprocess.run([str(ROOT / "dev"), "browser"], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_without_root_a_developer_is_told_and_goes_on(tmp_path: Path) -> None:
    done = run_dev(tmp_path, ci=False)
    assert done.returncode == 0, done.stderr
    assert "chromium fonts-noto-cjk" in done.stderr and "浏览器测试将跳过" in done.stderr


def test_under_ci_a_missing_browser_is_a_failure(tmp_path: Path) -> None:
    done = run_dev(tmp_path, ci=True)
    assert done.returncode == 1
    assert "CI=true 时浏览器测试必须运行" in done.stderr


INSTALLED = Path("/usr/bin/chromium").exists() and Path("/usr/share/fonts/opentype/noto").is_dir()


@pytest.mark.skipif(not INSTALLED, reason="本机未安装 chromium 与 fonts-noto-cjk")
def test_when_both_are_installed_it_does_nothing() -> None:
    done = subprocess.run([str(ROOT / "dev"), "browser"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
