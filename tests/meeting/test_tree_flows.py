"""The key tree's own flows on the fake board: a leave keyed through the tree with no
request, and the fallbacks (a lost part, a path that does not open, a new manager)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sealroom.meeting import session as session_module
from sealroom.meeting.events import Rekeyed
from sealroom.meeting.session import MeetingConfig

from . import harness
from .harness import World


@pytest.fixture(autouse=True)
def tree_mode() -> Iterator[None]:
    saved, harness.TREE_THRESHOLD = harness.TREE_THRESHOLD, 1
    yield
    harness.TREE_THRESHOLD = saved


def _meeting() -> World:
    w = World(MeetingConfig("m-1", host="uma", invitees=("bob", "carl", "dina")))
    for u in ("uma", "bob", "carl", "dina"):
        w.add(u)
    w.run("uma", "start")
    for u in ("bob", "carl", "dina"):
        w.run(u, "join")
    for u in ("bob", "carl", "dina"):
        assert w.people[u].session._path is not None
        assert "open_envelope" not in [c.op for c in w.people[u].ks_calls]
    return w


def _opens(w: World, user: str) -> int:
    return [c.op for c in w.people[user].ks_calls].count("open_envelope")


def test_a_leave_is_keyed_through_the_tree_without_the_key_service() -> None:
    w = _meeting()
    w.run("dina", "leave")
    w.advance(11)
    epoch, sk = w.key("uma")
    last = w.notices("uma")[-1]
    assert isinstance(last, Rekeyed)
    assert last.reason == "leave"
    for u in ("bob", "carl"):
        assert w.key(u) == (epoch, sk)
        assert _opens(w, u) == 0
    assert any(m.kind == "tree" for m in w.board)


def test_a_member_that_misses_a_tree_part_has_the_key_opened_instead() -> None:
    w = _meeting()
    carl = w.people["carl"].session
    carl._on_tree_part = lambda m: []  # type: ignore[method-assign]  # the relay dropped it
    w.run("dina", "leave")
    w.advance(11)
    assert w.key("carl") == w.key("uma") == w.key("bob")
    assert _opens(w, "carl") == 1  # through the key service, as in small meetings
    assert _opens(w, "bob") == 0
    assert carl._path is None  # behind now: it no longer follows the tree


def test_a_wrong_check_value_makes_members_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    w = _meeting()
    real, calls = session_module.tree_check, []

    def first_one_wrong(sk: bytes, meeting: str, epoch: int) -> bytes:
        calls.append(epoch)  # the manager's post comes first; members check after
        return bytes(16) if len(calls) == 1 else real(sk, meeting, epoch)

    monkeypatch.setattr(session_module, "tree_check", first_one_wrong)
    w.run("dina", "leave")
    w.advance(11)
    assert len(calls) >= 3  # the manager's post, then bob's and carl's checks
    for u in ("bob", "carl"):  # the derived key did not match: opened instead, and right
        assert w.key(u) == w.key("uma")
        assert _opens(w, u) == 1
        assert w.people[u].session._path is None


def test_a_new_manager_builds_its_own_tree_and_the_old_one_is_dropped() -> None:
    w = _meeting()
    w.run("uma", "leave")  # the last admin hands over to the first participant (bob)
    w.advance(11)
    bob = w.people["bob"].session
    assert bob.is_manager
    assert w.people["uma"].session._duties.tree is None
    w.run("carl", "leave")
    w.advance(11)
    assert bob._duties.tree is not None
    assert "carl" not in bob._duties.tree
    assert w.key("dina") == w.key("bob")
