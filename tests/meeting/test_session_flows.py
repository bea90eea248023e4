"""Every meeting flow of DESIGN.md §4, driven through a fake board, clock and key service."""

from __future__ import annotations

import pytest

from sealroom.meeting.session import (
    LEAVE_DEBOUNCE_SECONDS,
    RATCHET_SECONDS,
    MeetingConfig,
    ratchet,
)

from .harness import World

CONFIG = MeetingConfig("m-1", host="hana", invitees=("bob",))


def _meeting(*joiners: str, host_present: bool = True) -> World:
    w = World(CONFIG)
    for u in ("uma", *joiners, *(("hana",) if host_present else ())):
        w.add(u)
    w.run("uma", "start")
    for u in joiners:
        w.run(u, "join")
    if host_present:
        w.run("hana", "join")
    return w


def _same_key(w: World, users: list[str]) -> int:
    keys = {w.key(u) for u in users}
    assert len(keys) == 1, keys
    epoch, sk = keys.pop()
    assert sk is not None
    assert epoch is not None
    return epoch


def test_start_posts_one_key_and_preapproves_invitees() -> None:
    w = World(CONFIG)
    w.add("uma")
    w.run("uma", "start")
    assert w.key("uma")[0] == 0
    assert w.members == {"uma", "bob"}  # U0 and the pre-approved invitee, at once
    assert "hana" in w.admins  # the host got admin rights before arriving
    assert [m.kind for m in w.board] == ["start", "session-key"]


def test_join_ratchets_and_the_joiner_never_gets_older_keys() -> None:
    w = _meeting(host_present=False)
    w.add("bob")
    sk0 = w.key("uma")[1]
    w.run("bob", "join")
    epoch = _same_key(w, ["uma", "bob"])
    assert epoch == 1
    assert w.key("uma")[1] == ratchet(sk0 or b"", "m-1", 1)
    assert set(w.people["bob"].media) == {1}  # nothing before its join
    assert "joined" in w.events("bob")
    # Existing members ratcheted locally: only the joiner asked the key service.
    assert [c.op for c in w.people["uma"].ks_calls if c.op == "open_envelope"] == []
    assert [c.op for c in w.people["bob"].ks_calls] == ["open_envelope"]


def test_leave_waits_for_the_debounce_then_rekeys_everyone_but_the_leaver() -> None:
    w = _meeting("bob", "carl", host_present=False)
    before = w.key("uma")
    w.run("carl", "leave")
    assert w.key("uma") == before  # nothing yet: debounce
    w.advance(LEAVE_DEBOUNCE_SECONDS - 1)
    assert w.key("uma") == before
    w.advance(2)
    epoch = _same_key(w, ["uma", "bob"])
    assert epoch == before[0] + 1  # type: ignore[operator]
    assert w.key("carl") == (None, None)
    assert "carl" not in w.members
    assert w.people["carl"].rotated


def test_two_leaves_in_the_window_cost_one_rekey() -> None:
    w = _meeting("bob", "carl", "dina", host_present=False)
    start_epoch = w.key("uma")[0]
    w.run("carl", "leave")
    w.advance(3)
    w.run("dina", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS)
    assert _same_key(w, ["uma", "bob"]) == start_epoch + 1  # type: ignore[operator]
    assert w.members == {"uma", "bob"}


def test_removed_participant_cannot_open_the_new_key() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.run("uma", "remove", "carl")
    assert "ended" in w.events("carl")
    w.people["carl"].session.state = "in_meeting"  # a removed client that ignores the order
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    new_epoch = _same_key(w, ["uma", "bob"])
    assert new_epoch not in w.people["carl"].media


def test_ratchet_timer_fires_after_five_quiet_minutes_and_resets_on_rekey() -> None:
    w = _meeting("bob", host_present=False)
    epoch = w.key("uma")[0]
    w.advance(RATCHET_SECONDS - 1)
    assert w.key("uma")[0] == epoch
    w.advance(2)
    assert _same_key(w, ["uma", "bob"]) == epoch + 1  # type: ignore[operator]
    w.run("bob", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    after_leave = w.key("uma")[0]
    w.advance(RATCHET_SECONDS - 20)
    assert w.key("uma")[0] == after_leave  # the leave's rekey reset the timer


def test_late_host_takes_over_and_rekeys() -> None:
    w = _meeting("bob", host_present=False)
    w.add("hana")
    w.run("hana", "join")
    assert all(p.session.manager == "hana" for p in w.people.values())
    epoch = _same_key(w, ["uma", "bob", "hana"])
    reasons = [e.detail.get("reason") for e in w.people["bob"].events if e.event == "rekeyed"]
    assert "takeover" in reasons
    assert epoch >= 2


def test_another_admin_takes_over_when_the_manager_leaves() -> None:
    w = _meeting("bob")
    assert w.people["bob"].session.manager == "hana"
    before = w.key("bob")[0]
    w.run("hana", "leave")
    assert all(w.people[u].session.manager == "uma" for u in ("uma", "bob"))
    assert _same_key(w, ["uma", "bob"]) > before  # type: ignore[operator]


def test_end_deletes_the_group_and_drops_every_key() -> None:
    w = _meeting("bob")
    w.run("hana", "end")
    assert w.deleted
    for u in ("uma", "bob", "hana"):
        assert w.key(u) == (None, None)
        assert w.people[u].media == {}
        assert "ended" in w.events(u)
        assert w.people[u].rotated


def test_join_retries_after_1_5_10_10_seconds_then_succeeds() -> None:
    w = _meeting(host_present=False)
    w.add("bob")
    w.refuse_open["bob"] = 3
    w.run("bob", "join")
    assert w.key("bob") == (None, None)
    for step in (1, 5, 10):
        w.advance(step)
    assert w.key("bob")[0] == w.key("uma")[0]
    assert len([c for c in w.people["bob"].ks_calls if c.op == "open_envelope"]) == 4


def test_a_joiner_never_admitted_gives_up() -> None:
    w = _meeting(host_present=False)
    w.add("eve")
    w.refuse_open["eve"] = 99
    w.run("eve", "join")
    w.advance(30)
    assert "not_admitted" in w.events("eve")
    assert w.key("eve") == (None, None)


def test_security_codes_match_across_participants() -> None:
    w = _meeting("bob")
    codes = {w.people[u].session.security_code() for u in ("uma", "bob", "hana")}
    assert len(codes) == 1
    code = codes.pop()
    assert code is not None
    assert len(code.split()) == 6


# --- races ---


def test_join_during_a_pending_leave_rekey() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.run("carl", "leave")
    w.add("dina")
    w.run("dina", "join")
    joined_epoch = _same_key(w, ["uma", "bob", "dina"])
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert _same_key(w, ["uma", "bob", "dina"]) == joined_epoch + 1


def test_duplicated_messages_are_ignored() -> None:
    w = _meeting("bob", host_present=False)
    epoch = w.key("bob")
    w.board.extend(list(w.board))  # every message delivered twice
    w.pump()
    assert w.key("bob") == epoch


def test_reordered_session_keys_end_on_the_newest() -> None:
    w = _meeting("bob", host_present=False)
    w.drop_board_for.add("bob")
    w.add("carl")
    w.run("carl", "join")
    w.add("dina")
    w.run("dina", "join")
    w.drop_board_for.clear()
    newest = w.key("uma")
    keys = [i for i, m in enumerate(w.board) if m.kind == "session-key"]
    a, b = keys[-2], keys[-1]
    w.board[a], w.board[b] = w.board[b], w.board[a]  # bob sees the newer key first
    w.pump()
    assert w.key("bob") == newest


def test_a_session_key_from_a_non_manager_is_refused() -> None:
    w = _meeting("bob", "mallory", host_present=False)
    epoch = w.key("bob")
    forged = (
        w.people["mallory"]
        .session._post(
            "session-key",
            {
                "epoch": 99,
                "reason": "leave",
                "ratchet": False,
                "envelope": "AA",
                "roster": ["bob"],
                "prev": "AA",
            },
        )
        .message
    )
    w.board.append(forged)
    w.pump()
    assert w.key("bob") == epoch
    assert "bad_message" in w.events("bob")


@pytest.mark.parametrize("field", ["seq", "body"])
def test_tampered_messages_are_refused(field: str) -> None:
    from dataclasses import replace

    w = _meeting("bob", host_present=False)
    last = next(m for m in reversed(w.board) if m.user == "uma")
    bad = (
        replace(last, seq=last.seq + 100)
        if field == "seq"
        else replace(last, body={**last.body, "epoch": 42})
    )
    w.board.append(bad)
    w.pump()
    assert "bad_message" in w.events("bob")
