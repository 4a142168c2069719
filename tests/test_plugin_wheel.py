"""A plugin folder builds into a wheel that installs into another environment and is found
there through its entry point, with no change to the kernel (takes a few seconds: pip builds)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTICE = ROOT / "plugins" / "notice"

#: Run in a fresh interpreter: what the kernel discovers and loads there.
PROBE = """
import json
from yiwang import builtin
from yiwang.plugins.loader import discover, load_plugins

found = discover()
out = {"installed": sorted(found)}
if "notice2" in found:
    import yiwang_notice2
    cand = found["notice2"]
    host = load_plugins(["notice2"], builtin=builtin)
    [rep] = [r for r in host.reports if r.name == "notice2"]
    out.update(file=yiwang_notice2.__file__, distribution=cand.distribution, errors=cand.errors,
               title=cand.spec.title, loaded=rep.loaded, hooks=rep.hooks)
print(json.dumps(out))
"""


def renamed_copy(dest: Path) -> Path:
    """A copy of plugins/notice as distribution ``yiwang-notice2``, plugin ``notice2``: the
    editable ``notice`` in this environment cannot then be mistaken for the wheel's copy."""
    src = dest / "notice2"
    shutil.copytree(NOTICE, src, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (src / "yiwang_notice").rename(src / "yiwang_notice2")
    for path in [src / "pyproject.toml", *(src / "yiwang_notice2").rglob("*.py")]:
        text = re.sub(r"\byiwang_notice\b", "yiwang_notice2", path.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8")
    pyproject = src / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    text = text.replace('name = "yiwang-notice"', 'name = "yiwang-notice2"')
    text = text.replace('notice = "yiwang_notice2:plugin"', 'notice2 = "yiwang_notice2:plugin"')
    pyproject.write_text(text, encoding="utf-8")
    init = src / "yiwang_notice2" / "__init__.py"
    init.write_text(
        init.read_text(encoding="utf-8").replace('name="notice"', 'name="notice2"'),
        encoding="utf-8",
    )
    return src


def run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def probe(tmp_path: Path, pythonpath: Path | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # stevedore's entry-point cache
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return json.loads(run(sys.executable, "-c", PROBE, env=env))  # type: ignore[no-any-return]


def test_wheel_of_a_plugin_folder_installs_elsewhere_and_is_found(tmp_path: Path) -> None:
    src = renamed_copy(tmp_path)
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, src)
    [wheel] = dist.glob("yiwang_notice2-0.1.0-*.whl")
    site = tmp_path / "site"
    run(*pip, "install", "--no-deps", "--no-index", "--target", site, wheel)

    assert "notice2" not in probe(tmp_path, None)["installed"]
    found = probe(tmp_path, site)
    assert {"notice", "notice2"} <= set(found["installed"])
    assert Path(found["file"]).is_relative_to(site)
    assert found["distribution"] == "yiwang-notice2 0.1.0"
    assert found["errors"] == [] and found["title"] == "通知公告"
    assert found["loaded"] is True and "yiwang_routes" in found["hooks"]
