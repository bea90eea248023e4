"""Without node, the web tests skip and say why, instead of failing or passing silently."""

from __future__ import annotations

import pytest

from tests.web import node


def test_no_node_means_a_skip_that_names_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node.shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="node is not installed"):
        node.node_or_skip()
