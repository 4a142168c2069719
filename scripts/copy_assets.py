"""Copy front-end libraries from node_modules (installed from package-lock.json) into the
kernel's ignored static/vendor folder. The list is the single place that says what we serve."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "kernel" / "yiwang" / "static" / "vendor"

#: (file in node_modules, name under static/vendor)
ASSETS = [
    ("htmx.org/dist/htmx.min.js", "htmx.min.js"),
    ("htmx.org/LICENSE", "htmx.LICENSE.txt"),
]


def main() -> int:
    VENDOR.mkdir(parents=True, exist_ok=True)
    missing = []
    for source, target in ASSETS:
        src = ROOT / "node_modules" / source
        if not src.is_file():
            missing.append(source)
            continue
        dst = VENDOR / target
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
    if missing:
        print("缺少前端文件（请先运行 npm ci）: " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
