"""Keep the interface catalogs in step with the templates (docs/i18n.md).

    python scripts/i18n.py update   # add new message ids to every catalog, drop none
    python scripts/i18n.py check    # list ids missing from a catalog or left untranslated

Message ids are the Chinese source text of ``_()`` / ``{% trans %}`` in the kernel's and the
default theme's templates, plus the labels and sections of the kernel's menu items. A plugin keeps
its own catalog the same way (``--package yiwang_<name>``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
JINJA = [("**.html", "jinja2")]
JINJA_OPTIONS = {"**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}}


def kernel_sources() -> tuple[list[Path], Path]:
    kernel = ROOT / "kernel" / "yiwang"
    return [kernel / "templates", ROOT / "themes" / "default" / "templates"], kernel / "locale"


def plugin_sources(package: str) -> tuple[list[Path], Path]:
    folder = next((ROOT / "plugins").glob(f"*/{package}"), None)
    if folder is None:
        raise SystemExit(f"找不到插件包 {package}")
    return [folder / "templates"], folder / "locale"


def menu_messages(package: str | None) -> list[str]:
    """Labels and sections of the menu items declared by the kernel (or one plugin)."""
    import importlib

    if package is None:
        from yiwang import builtin

        items = builtin.yiwang_menu_items()
    else:
        hooks = importlib.import_module(package).plugin.hooks
        items = hooks.yiwang_menu_items() if hasattr(hooks, "yiwang_menu_items") else []
    out: list[str] = []
    for item in items:
        out += [item.label, item.section]
    return [m for m in out if m]


def extract(folders: list[Path], package: str | None) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for filename, lineno, message, _comments, _context in extract_from_dir(
            folder, JINJA, JINJA_OPTIONS
        ):
            if isinstance(message, tuple):  # ngettext: singular, plural
                message = message[0]
            if message:
                found.setdefault(message, []).append((str(folder.name + "/" + filename), lineno))
    for message in menu_messages(package):
        found.setdefault(message, []).append(("menu", 0))
    return found


def catalogs(locale_dir: Path) -> list[Path]:
    return sorted(locale_dir.glob("*/LC_MESSAGES/messages.po"))


def load(po_file: Path) -> Catalog:
    with po_file.open("rb") as fh:
        return read_po(fh)


def update(folders: list[Path], locale_dir: Path, package: str | None) -> int:
    found = extract(folders, package)
    for po_file in catalogs(locale_dir):
        catalog = load(po_file)
        for message, places in found.items():
            entry = catalog.get(message)
            if entry is None:
                catalog.add(message, "", locations=places)
            else:
                entry.locations = places
        with po_file.open("wb") as fh:
            write_po(fh, catalog, width=100, sort_output=True, omit_header=False)
        print(f"{po_file.relative_to(ROOT)}: {len(found)} 条")
    return 0


def check(folders: list[Path], locale_dir: Path, package: str | None) -> int:
    found = extract(folders, package)
    bad = 0
    for po_file in catalogs(locale_dir):
        catalog = load(po_file)
        missing = [m for m in found if catalog.get(m) is None]
        empty = [m for m in found if catalog.get(m) is not None and not catalog.get(m).string]
        for m in missing:
            print(f"{po_file.relative_to(ROOT)}: 缺少 {m!r}")
        for m in empty:
            print(f"{po_file.relative_to(ROOT)}: 未翻译 {m!r}")
        bad += len(missing)
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("update", "check"))
    parser.add_argument("--package", help="a plugin's package, e.g. yiwang_population")
    args = parser.parse_args()
    folders, locale_dir = plugin_sources(args.package) if args.package else kernel_sources()
    run = update if args.command == "update" else check
    return run(folders, locale_dir, args.package)


if __name__ == "__main__":
    sys.exit(main())
