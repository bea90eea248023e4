"""Removals outlive every change of manager, and the meeting group holds exactly the
participants the manager let in (issue 9, attacks 1 and 2), on the fake board and key
service. tests/security/ tries the same attacks against the real services."""

from __future__ import annotations

from sealroom.meeting.events import Knock
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import (
    LEAVE_DEBOUNCE_SECONDS,
    AddMember,
    ClaimManager,
    MeetingConfig,
    MeetingSession,
)

from .harness import World

CONFIG = MeetingConfig("m-1", host="hana", invitees=("bob", "carl"))


def _restart(w: World, user: str) -> None:
    """``user``'s device restarts and joins again, reading the board from the start."""
    p = w.people[user]
    p.session = MeetingSession(
        w.config, user=user, device=f"{user}-dev", signing_key=p.key, seq_start=10_000 + w.now
    )
    p.cursor = 0
    p.media.clear()
    w.run(user, "join")


def _removed_bob(*, host_present: bool) -> World:
    w = World(CONFIG)
    for u in ("uma", "bob", *(("hana",) if host_present else ())):
        w.add(u)
    w.run("uma", "start")
    w.run("bob", "join")
    if host_present:
        w.run("hana", "join")
    manager = w.people["uma"].session.manager
    assert manager is not None
    w.run(manager, "remove", "bob")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert "bob" in w.banned
    assert "bob" not in w.members
    return w


def _still_out(w: World, manager: str, *, roster: bool = True) -> None:
    assert w.key("bob") == (None, None)
    assert "bob" not in w.members
    if roster:
        assert "bob" not in w.people[manager].session.roster
    assert any(isinstance(e, Knock) and e.user == "bob" for e in w.notices(manager))


def test_a_removed_invitee_stays_out_after_the_late_host_takes_over() -> None:
    w = _removed_bob(host_present=False)
    w.add("hana")
    w.run("hana", "join")
    assert w.people["hana"].session.is_manager
    _restart(w, "bob")
    _still_out(w, "hana")


def test_a_removed_invitee_stays_out_after_an_admin_succeeds_the_manager() -> None:
    w = _removed_bob(host_present=True)
    w.run("hana", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert w.people["uma"].session.is_manager
    _restart(w, "bob")
    _still_out(w, "uma")


def test_a_removed_invitee_stays_out_after_the_manager_restarts() -> None:
    w = _removed_bob(host_present=False)
    _restart(w, "uma")
    assert w.people["uma"].session.is_manager
    _restart(w, "bob")
    _still_out(w, "uma")


def test_a_ban_the_board_never_showed_is_kept_by_the_key_service() -> None:
    # The relay dropped the remove post for the new manager: the key service still refuses.
    w = _removed_bob(host_present=False)
    w.board = [m for m in w.board if m.kind != "remove"]
    for p in w.people.values():
        p.cursor = len(w.board)
    w.add("hana")
    w.run("hana", "join")
    _restart(w, "bob")
    # (hana's takeover key listed bob, still announced as far as the board showed it, but
    # bob was out of the group and opened nothing)
    _still_out(w, "hana", roster=False)
    assert any(isinstance(e, Knock) and e.banned for e in w.notices("hana"))


def test_the_manager_admitting_a_removed_user_lets_it_back_for_every_later_manager() -> None:
    w = _removed_bob(host_present=False)
    _restart(w, "bob")
    w.run("uma", "admit", "bob")
    assert "bob" not in w.banned
    assert w.key("bob") == w.key("uma")
    assert "admit" in [m.kind for m in w.board]
    w.add("hana")
    w.run("hana", "join")  # a later manager follows the board: bob is admitted again
    assert w.key("bob") == w.key("hana")


def test_a_non_manager_admin_cannot_add_anyone_to_the_meeting_group() -> None:
    w = World(CONFIG)
    for u in ("uma", "hana"):
        w.add(u)
    w.run("uma", "start")
    w.run("hana", "join")
    assert w.manager == "hana"
    # uma is an admin (it created the group) but no longer the manager.
    call = w.people["uma"].session._call(AddMember("m-1", "zed"))
    assert w._ks("uma", call) == (None, "not_manager")
    assert "zed" not in w.members


def test_an_accomplice_slipped_in_by_a_claiming_admin_never_opens_a_later_key() -> None:
    w = World(CONFIG)
    for u in ("uma", "hana", "bob"):
        w.add(u)
    w.run("uma", "start")
    w.run("hana", "join")
    w.run("bob", "join")
    # uma, an admin but not the manager, claims the group and adds zed, who never announces.
    s = w.people["uma"].session
    assert w._ks("uma", s._call(ClaimManager("m-1"))) == ({}, None)
    assert w._ks("uma", s._call(AddMember("m-1", "zed"))) == ({}, None)
    assert "zed" in w.members
    # The manager removes uma; its next operation finds the group claimed: it claims it back,
    # takes zed out, and only then registers the fresh key.
    w.run("hana", "remove", "uma")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert "management_contested" in w.events("hana")
    assert w.manager == "hana"
    assert "zed" not in w.members
    epoch = w.key("hana")[0]
    assert epoch is not None
    assert w.key("bob")[0] == epoch
    assert w.open_as("zed", epoch) == "not_member"
    assert w.open_as("uma", epoch) == "not_member"


def test_a_member_added_behind_the_managers_back_is_found_at_the_next_key() -> None:
    # Even without a claim (a key service that let an admin through), the registration
    # names the members: the mismatch is found, the stranger taken out, then the key goes.
    w = World(CONFIG)
    for u in ("uma", "bob"):
        w.add(u)
    w.run("uma", "start")
    w.run("bob", "join")
    w.members.add("zed")
    w.generation += 1
    w.since["zed"] = w.generation
    w.run("bob", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert "membership_mismatch" in w.events("uma")
    assert "zed" not in w.members
    epoch = w.key("uma")[0]
    assert epoch is not None
    assert epoch >= 2
    assert w.open_as("zed", epoch) == "not_member"


def test_ordinary_flows_register_every_key_at_the_first_try() -> None:
    # The manager's own view of the members is exact: no mismatch, no extra round trip.
    w = World(CONFIG)
    for u in ("uma", "bob", "hana", "carl"):
        w.add(u)
    w.run("uma", "start")
    w.run("bob", "join")
    w.run("hana", "join")
    w.run("carl", "join")
    w.run("hana", "remove", "bob")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.run("carl", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.run("hana", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert w.people["uma"].session.is_manager
    for user, p in w.people.items():
        assert "membership_mismatch" not in w.events(user), user
        registered = [c for c in p.ks_calls if c.op == "register_value"]
        assert len({c.call.edek for c in registered}) == len(registered), user
    assert w.key("uma")[0] is not None


def test_joins_within_the_window_cost_one_batch_of_additions_and_one_ratchet() -> None:
    joiners = [f"user{i:02d}" for i in range(12)]
    w = World(MeetingConfig("m-1", host="uma", invitees=tuple(joiners)))
    w.add("uma")
    w.run("uma", "start")
    for u in joiners:
        w.add(u)
    start_calls = len(w.people["uma"].ks_calls)
    before = w.key("uma")[0]
    for u in joiners:  # all announce before the window closes
        w.do(u, w.people[u].session.join(w.now))
    w.pump()
    w.advance(1.0)
    assert [c.op for c in w.people["uma"].ks_calls].count("add_members") == 1  # at the start
    calls = [c.op for c in w.people["uma"].ks_calls[start_calls:]]
    assert calls.count("add_members") == 0  # the invitees were added then
    assert calls.count("register_value") == 1  # one ratchet for twelve joins
    assert w.key("uma")[0] == (before or 0) + 1
    assert all(w.key(u) == w.key("uma") for u in joiners)


def test_admitted_strangers_are_added_in_one_batch() -> None:
    w = World(CONFIG)
    w.add("uma")
    w.run("uma", "start")
    strangers = [f"zed{i}" for i in range(5)]
    for u in strangers:
        w.add(u)
        w.do(u, w.people[u].session.join(w.now))
    w.pump()
    for u in strangers:
        w.do("uma", w.people["uma"].session.admit(u, w.now))
    w.pump()
    w.advance(1.0)
    batches = [c for c in w.people["uma"].ks_calls if c.op == "add_members"]
    assert [sorted(c.call.users) for c in batches] == [["bob", "carl"], strangers]
    assert all(w.key(u) == w.key("uma") for u in strangers)


def test_a_joiner_behind_a_burst_of_joins_opens_one_key_and_ratchets_to_the_newest() -> None:
    joiners = [f"user{i:02d}" for i in range(6)]
    w = World(MeetingConfig("m-1", host="uma", invitees=tuple(joiners)))
    w.add("uma")
    w.run("uma", "start")
    w.add(joiners[0])
    w.hold_ops = {"open_envelope", "open_path"}  # the first joiner is slow to open...
    w.run(joiners[0], "join")
    for u in joiners[1:]:  # ...while the others join one window apart: five more ratchets
        w.add(u)
        w.run(u, "join")
    w.hold_ops = set()
    w.release_held()
    first = w.people[joiners[0]]
    opens = [c.op for c in first.ks_calls if c.op in ("open_envelope", "open_path")]
    assert len(opens) == 1
    assert w.key(joiners[0]) == w.key("uma")
    assert w.key("uma")[0] == 6


def test_a_post_naming_the_managers_device_cannot_silence_the_manager() -> None:
    """A stranger with a token posts an announce in its own name but with the manager's
    device id and an enormous sequence number (its own key signs it, so it verifies): the
    others must not take the manager's later posts for replays, nor the manager the
    stranger's card for that device's."""
    w = World(CONFIG)
    for u in ("uma", "bob", "carl", "eve"):
        w.add(u)
    w.run("uma", "start")
    w.run("bob", "join")
    uma = w.people["uma"].session
    forged = BoardMessage.create(
        w.people["eve"].key,
        meeting=CONFIG.meeting_id,
        kind="announce",
        user="eve",
        device=uma.device,
        seq=10**12,
        body={"card": w.card(uma.device, w.people["eve"].key)},
    )
    w.board.append(forged)
    w.pump()
    w.run("carl", "join")  # the manager's key for carl must reach bob and carl
    epoch = w.key("uma")[0]
    assert epoch is not None
    assert w.key("bob") == w.key("carl") == w.key("uma")
    assert (uma.user, uma.device) not in uma._device_keys  # the manager announced nothing
