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
