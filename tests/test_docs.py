"""The code in the README runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_blocks_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})  # noqa: S102 - our own README


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text()
    quick = text[text.index("## Quick start") :]
    first_block = quick[quick.index("```sh") : quick.index("```", quick.index("```sh") + 5)]
    assert "make demo" in first_block
    assert "make test" in first_block


def _test_names(path: Path) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), flags=re.MULTILINE))


def test_every_test_the_threat_model_names_exists() -> None:
    """docs/threat-model.md is a list of tests: each one it names must exist, where it says.
    (``file.py::name``, or ``::name`` for the file named just before it on the line.)"""
    root = Path(__file__).parents[1]
    text = (root / "docs" / "threat-model.md").read_text()
    cited = 0
    for line in text.splitlines():
        current: Path | None = None
        for ref in re.findall(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?)`", line):
            file, _, name = ref.partition("::")
            if file:
                current = root / file
                assert current.exists(), ref
            if name:
                assert current is not None, f"{ref}: no file before it on the line"
                assert name in _test_names(current), f"{current.name}::{name}"
                cited += 1
    assert cited >= 30
