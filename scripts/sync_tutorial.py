"""Refresh the code blocks of docs/plugins/tutorial.md from the files they show.

A block is written as ``<!-- file: plugins/notice/... -->`` followed by a fenced code block;
tests/test_docs.py fails when a block and its file differ, and this script makes them equal.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "plugins" / "tutorial.md"
LANG = {".py": "python", ".toml": "toml", ".html": "html+jinja"}


def main() -> None:
    text = TUTORIAL.read_text(encoding="utf-8")

    def fill(match: re.Match[str]) -> str:
        path = match.group(1)
        body = (ROOT / path).read_text(encoding="utf-8")
        lang = LANG.get(Path(path).suffix, "")
        return f"<!-- file: {path} -->\n```{lang}\n{body}```"

    text = re.sub(r"<!-- file: (\S+) -->\n```\S*\n.*?```", fill, text, flags=re.S)
    TUTORIAL.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
