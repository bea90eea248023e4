"""The roster chain: posts whose size does not grow with the meeting, large changes in
parts, and the whole roster on request (issue 10)."""

from __future__ import annotations

import uuid

import pytest

from sealroom.api.encoding import b64e
from sealroom.crypto.signing import SigningKey
from sealroom.meeting.messages import MAX_MESSAGE_BYTES, BoardMessage
from sealroom.meeting.roster import RosterChain, roster_head
from sealroom.meeting.session import LEAVE_DEBOUNCE_SECONDS, MeetingConfig

from .harness import World

KEY = SigningKey.generate()


def _ids(n: int) -> list[str]:
    return sorted(str(uuid.uuid4()) for _ in range(n))


def _posts(chain: RosterChain, epoch: int, roster: list[str]) -> list[BoardMessage]:
    """What a manager posts for this epoch's roster (the key post without its envelope)."""
    fields, parts = chain.plan(epoch, roster)
    body = {**fields, "prev": b64e(fields["prev"]), "head": b64e(fields["head"])}
    messages = [
        BoardMessage.create(KEY, meeting="m", kind="roster", user="u", device="d", seq=1, body=p)
        for p in parts
    ]
    messages.append(
        BoardMessage.create(KEY, meeting="m", kind="session-key", user="u", device="d", seq=2,
                            body={"epoch": epoch, "envelope": "A" * 1400, **body})
    )  # fmt: skip
    for p in parts:
        chain.add_part(p)
    chain.follow(
        epoch,
        prev=fields["prev"],
        head=fields["head"],
        added=fields["added"],
        removed=fields["removed"],
        parts=fields["parts"],
        reset=fields["reset"],
    )
    return messages


@pytest.mark.parametrize("n", [10, 1_000, 50_000])
def test_a_join_or_a_leave_posts_the_same_bytes_whatever_the_meeting_size(n: int) -> None:
    chain = RosterChain()
    everyone = _ids(n)
    _posts(chain, 0, everyone)  # the meeting so far (its own posts are in parts at 50,000)
    joined = _posts(chain, 1, sorted([*everyone, str(uuid.uuid4())]))
    assert len(joined) == 1
    left = _posts(chain, 2, everyone[1:])
    assert len(left) == 1
    for m in (*joined, *left):
        assert len(m.to_json()) < 2_200  # an envelope and one user id: no roster
    assert chain.members == everyone[1:]


def test_a_large_change_travels_in_parts_each_under_the_board_limit() -> None:
    chain, follower = RosterChain(), RosterChain()
    everyone = _ids(50_000)
    posts = _posts(chain, 0, everyone)
    assert len(posts) > 2
    for m in posts:
        assert len(m.to_json()) < MAX_MESSAGE_BYTES
        if m.kind == "roster":
            follower.add_part(m.body)
    key_post = posts[-1].body
    assert follower.follow(
        0,
        prev=bytes(32),
        head=roster_head(bytes(32), 0, everyone),
        added=key_post["added"],
        removed=key_post["removed"],
        parts=key_post["parts"],
        reset=key_post["reset"],
    )
    assert follower.members == everyone


def test_a_missing_part_leaves_the_roster_unknown_not_wrong() -> None:
    chain, follower = RosterChain(), RosterChain()
    everyone = _ids(20_000)
    posts = _posts(chain, 0, everyone)
    for m in posts[1:-1]:  # the first part is lost
        follower.add_part(m.body)
    body = posts[-1].body
    known = follower.follow(
        0,
        prev=bytes(32),
        head=roster_head(bytes(32), 0, everyone),
        added=body["added"],
        removed=body["removed"],
        parts=body["parts"],
        reset=body["reset"],
    )
    assert not known
    assert follower.members is None
    assert follower.roster_at(0) is None


def test_a_snapshot_that_does_not_match_the_head_is_refused() -> None:
    chain = RosterChain()
    everyone = _ids(5)
    _posts(chain, 0, everyone)
    follower = RosterChain()
    follower.follow(
        0, prev=bytes(32), head=chain.head, added=[], removed=[], parts=0, reset=False
    )  # a lost first post: unknown
    assert follower.members is None
    forged = {"epoch": 0, "part": 0, "parts": 1, "members": [*everyone, "mallory"]}
    follower.add_part(forged)
    assert not follower.snapshot(0)
    follower.add_part({"epoch": 0, "part": 0, "parts": 1, "members": everyone})
    assert follower.snapshot(0)
    assert follower.members == everyone


@pytest.mark.parametrize(
    "part",
    [
        {"epoch": 0, "part": 1, "parts": 1, "members": []},
        {"epoch": 0, "part": 0, "parts": 10_000, "members": []},
        {"epoch": 0, "part": 0, "parts": 1, "members": ["bad id"]},
        {"epoch": 0, "part": 0, "parts": 1, "added": "bob"},
    ],
)
def test_malformed_roster_parts_are_refused(part: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"roster part|user id"):
        RosterChain().add_part(part)


def test_a_member_that_lost_a_post_asks_and_gets_the_whole_roster() -> None:
    w = World(MeetingConfig("m-1", host="hana", invitees=("bob", "carl", "dina")))
    for u in ("uma", "bob", "carl"):
        w.add(u)
    w.run("uma", "start")
    w.run("bob", "join")
    w.drop_board_for.add("bob")  # bob misses carl's join (its key post among them)
    w.run("carl", "join")
    w.drop_board_for.discard("bob")
    w.people["bob"].cursor = len(w.board)  # ...for good: the relay never delivers them
    w.add("dina")
    w.run("dina", "join")  # the next post does not chain to what bob followed
    assert "roster_unknown" in w.events("bob")
    assert [m.kind for m in w.board].count("roster-request") == 1
    assert "roster_recovered" in w.events("bob")
    assert w.people["bob"].session.roster == ["bob", "carl", "dina", "uma"]
    assert w.key("bob") == w.key("uma")
    w.run("carl", "leave")  # and it follows the chain again from there
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert w.people["bob"].session.roster == ["bob", "dina", "uma"]
