"""The kernel's wheel carries what an offline province needs: the front-end libraries copied at
setup (never in git), their licence manifest, the interface catalogs and the themes."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_vendor_assets_catalogs_and_themes(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [wheel] = tmp_path.glob("yiwang-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "yiwang/static/vendor/htmx.min.js",
        "yiwang/static/vendor/htmx-sse.min.js",
        "yiwang/static/vendor/echarts.min.js",
        "yiwang/static/vendor/leaflet/leaflet.js",
        "yiwang/static/vendor/leaflet/images/marker-icon.png",
        "yiwang/static/vendor/leaflet/markercluster.js",
        "yiwang/static/vendor/manifest.json",
        "yiwang/static/yiwang.js",
        "yiwang/locale/en/LC_MESSAGES/messages.po",
        "yiwang/_themes/default/templates/base.html",
        "yiwang/_themes/nanning/theme.toml",
        "yiwang/_config/yiwang.toml",
    ):
        assert needed in names, needed
    assert not any("node_modules" in n for n in names)
