"""Documentation stays in step with the code: every hook documented, tested, and the tutorial's
code is the reference plugin's code (which CI runs)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from yiwang import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS_MD = ROOT / "docs" / "plugins" / "hooks.md"
TUTORIAL = ROOT / "docs" / "plugins" / "tutorial.md"
HOOKS = hookspecs.all_hooks()


def test_there_are_hooks() -> None:
    assert len(HOOKS) >= 8


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_has_a_contract_docstring(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert len(doc) > 80, f"{name} 的文档字符串过短"
    assert ":since:" in doc, f"{name} 缺少 :since: 版本"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_in_the_reference_with_its_signature(name: str) -> None:
    text = HOOKS_MD.read_text(encoding="utf-8")
    heading = re.search(rf"^### `{name}\((.*?)\)", text, re.M)
    assert heading, f"docs/plugins/hooks.md 缺少 {name}"
    params = list(inspect.signature(getattr(hookspecs, name)).parameters)
    documented = [p.split(":")[0].strip() for p in heading.group(1).split(",") if p.strip()]
    assert documented == params, f"{name} 的参数文档 {documented} 与定义 {params} 不符"


def test_reference_names_no_unknown_hook() -> None:
    text = HOOKS_MD.read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `(yiwang_\w+)\(", text, re.M))
    assert documented == set(HOOKS)


def _test_sources() -> str:
    files = [*ROOT.glob("tests/test_*.py"), *ROOT.glob("plugins/*/tests/test_*.py")]
    return "\n".join(p.read_text(encoding="utf-8") for p in files if p.name != "test_docs.py")


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name: str) -> None:
    assert name in _test_sources(), f"没有测试用到钩子 {name}"


def test_tutorial_code_is_the_reference_plugin() -> None:
    """Each ``<!-- file: path -->`` block in the tutorial equals that file in the repository."""
    text = TUTORIAL.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, re.S)
    assert len(blocks) >= 4, "教程应逐个展示 notice 插件的文件"
    for path, code in blocks:
        assert (ROOT / path).read_text(encoding="utf-8") == code, f"教程中的 {path} 与仓库不一致"
