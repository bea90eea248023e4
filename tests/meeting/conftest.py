"""The meeting protocol's tests on the fake board run in both key modes: without the key
tree (every fresh key opened through the key service) and with it from the first
participant on (large-meeting mode, meeting/keytree.py), so that every property they check
holds in both. A test marked ``seed_only`` is about the key service's opening, which a
joiner with a path skips."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import harness

#: The modules whose worlds are built by tests/meeting/harness.py.
_HARNESS_MODULES = {
    "test_session_flows",
    "test_bans_and_membership",
    "test_random_meetings",
    "test_random_bursts",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rsplit(".", 1)[-1] not in _HARNESS_MODULES:
        return
    seed_only = metafunc.definition.get_closest_marker("seed_only") is not None
    metafunc.parametrize("key_mode", ["seed"] if seed_only else ["seed", "tree"], indirect=True)


@pytest.fixture(autouse=True)
def key_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    mode = str(getattr(request, "param", "seed"))
    saved = harness.TREE_THRESHOLD
    harness.TREE_THRESHOLD = 1 if mode == "tree" else None
    try:
        yield mode
    finally:
        harness.TREE_THRESHOLD = saved
