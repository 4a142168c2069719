"""Keep the interface catalogs in step with the templates (docs/i18n.md).

    python scripts/i18n.py update   # add new message ids to every catalog, drop none
    python scripts/i18n.py check    # list ids missing from a catalog or left untranslated

Message ids are the Chinese source text of ``_()`` / ``{% trans %}`` in the kernel's and the
default theme's templates, plus the labels and sections of the kernel's menu items and the labels
of its declarations that the case pages translate (workflow states and actions, case types, inbox
tabs and columns, urgencies: ``yiwang.web.messages.kernel_labels``). A plugin keeps its own
catalog the same way (``--package yiwang_<name>``), with its workflows' and case types' titles.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from babel.messages.pofile import write_po

from yiwang.web.messages import catalogs, declared_labels, kernel_labels, load, problems
from yiwang.web.messages import extract as extract_messages

ROOT = Path(__file__).resolve().parent.parent


def kernel_sources() -> tuple[list[Path], Path]:
    kernel = ROOT / "kernel" / "yiwang"
    # Every theme in the repository: a city theme's own messages go into the kernel's catalog.
    return [kernel / "templates", *sorted((ROOT / "themes").glob("*/templates"))], kernel / "locale"


def plugin_sources(package: str) -> tuple[list[Path], Path]:
    folder = next((ROOT / "plugins").glob(f"*/{package}"), None)
    if folder is None:
        raise SystemExit(f"找不到插件包 {package}")
    return [folder / "templates"], folder / "locale"


def menu_items(package: str | None) -> list[Any]:
    """The menu items declared by the kernel (or one plugin): their labels are messages."""
    import importlib

    if package is None:
        from yiwang import builtin

        return list(builtin.yiwang_menu_items())
    hooks = importlib.import_module(package).plugin.hooks
    return list(hooks.yiwang_menu_items()) if hasattr(hooks, "yiwang_menu_items") else []


def labels(package: str | None) -> list[str]:
    """The labels declared in Python that templates translate: the kernel's (workflow, case
    types, inbox tabs and columns, urgencies …) or one plugin's workflows and case types."""
    import importlib

    if package is None:
        return kernel_labels()
    hooks = importlib.import_module(package).plugin.hooks
    return declared_labels(
        hooks.yiwang_workflows() if hasattr(hooks, "yiwang_workflows") else (),
        hooks.yiwang_case_types() if hasattr(hooks, "yiwang_case_types") else (),
    )


def extract(folders: list[Path], package: str | None) -> dict[str, list[tuple[str, int]]]:
    return extract_messages(folders, menu_items(package), labels(package))


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
        for problem in problems(po_file, found):
            print(f"{po_file.relative_to(ROOT)}: {problem}")
            bad += 1
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
