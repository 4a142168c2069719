"""Copy front-end libraries from node_modules (installed from package-lock.json) into the
kernel's ignored static/vendor folder. The list is the single place that says what we serve;
``vendor/manifest.json`` records each library's version and licence for the licence page (/about)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "kernel" / "yiwang" / "static" / "vendor"

#: npm package → [(file in the package, name under static/vendor)]
ASSETS: dict[str, list[tuple[str, str]]] = {
    "htmx.org": [("dist/htmx.min.js", "htmx.min.js"), ("LICENSE", "htmx.LICENSE.txt")],
    "htmx-ext-sse": [("dist/sse.min.js", "htmx-sse.min.js"), ("LICENSE", "htmx-sse.LICENSE.txt")],
    "echarts": [("dist/echarts.min.js", "echarts.min.js"), ("LICENSE", "echarts.LICENSE.txt")],
    "leaflet": [
        ("dist/leaflet.js", "leaflet/leaflet.js"),
        ("dist/leaflet.css", "leaflet/leaflet.css"),
        ("dist/images/layers.png", "leaflet/images/layers.png"),
        ("dist/images/layers-2x.png", "leaflet/images/layers-2x.png"),
        ("dist/images/marker-icon.png", "leaflet/images/marker-icon.png"),
        ("dist/images/marker-icon-2x.png", "leaflet/images/marker-icon-2x.png"),
        ("dist/images/marker-shadow.png", "leaflet/images/marker-shadow.png"),
        ("LICENSE", "leaflet/LICENSE.txt"),
    ],
    "leaflet.markercluster": [
        ("dist/leaflet.markercluster.js", "leaflet/markercluster.js"),
        ("dist/MarkerCluster.css", "leaflet/MarkerCluster.css"),
        ("dist/MarkerCluster.Default.css", "leaflet/MarkerCluster.Default.css"),
        ("MIT-LICENCE.txt", "leaflet/markercluster.LICENSE.txt"),
    ],
}


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)


def main() -> int:
    VENDOR.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    manifest: list[dict[str, str]] = []
    for package, files in ASSETS.items():
        folder = ROOT / "node_modules" / package
        meta_file = folder / "package.json"
        if not meta_file.is_file():
            missing.append(package)
            continue
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        for source, target in files:
            src = folder / source
            if not src.is_file():
                missing.append(f"{package}/{source}")
                continue
            _copy(src, VENDOR / target)
        homepage = meta.get("homepage") or ""
        manifest.append({
            "name": package,
            "version": str(meta.get("version", "")),
            "license": str(meta.get("license") or "见许可文件"),
            "homepage": homepage if isinstance(homepage, str) else "",
            "files": ", ".join(t for _, t in files),
        })  # fmt: skip
    if missing:
        print("缺少前端文件（请先运行 npm ci）: " + ", ".join(missing), file=sys.stderr)
        return 1
    text = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
    out = VENDOR / "manifest.json"
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
