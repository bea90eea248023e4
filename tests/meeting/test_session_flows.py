"""Every meeting flow of docs/meetings.md, driven through a fake board, clock and key service."""

from __future__ import annotations

import pytest

from sealroom.crypto.signing import SigningKey
from sealroom.meeting.events import AddFailed, KeyRegistrationFailed, Rekeyed, Retrying
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import (
    LEAVE_DEBOUNCE_SECONDS,
    RATCHET_SECONDS,
    TRANSIENT_RETRY_MAX_SECONDS,
    MeetingConfig,
    MeetingSession,
    Notify,
    ratchet,
)

from .harness import World

CONFIG = MeetingConfig("m-1", host="hana", invitees=("bob",))


LATER = ("carl", "dina", "eve", "mallory")


def _meeting(*joiners: str, host_present: bool = True) -> World:
    w = World(MeetingConfig("m-1", host="hana", invitees=("bob", *joiners, *LATER)))
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


def test_join_ratchets_and_the_joiner_never_gets_older_keys(key_mode: str) -> None:
    w = _meeting(host_present=False)
    w.add("bob")
    sk0 = w.key("uma")[1]
    w.run("bob", "join")
    epoch = _same_key(w, ["uma", "bob"])
    assert epoch == 1
    assert w.key("uma")[1] == ratchet(sk0 or b"", "m-1", 1)
    assert set(w.people["bob"].media) == {1}  # nothing before its join
    assert "joined" in w.events("bob")
    # Existing members ratcheted locally: only the joiner asked the key service (with the
    # key tree, not even the joiner: it opened the path the manager sealed to its device).
    assert [c.op for c in w.people["uma"].ks_calls if c.op == "open_envelope"] == []
    opened = "open_path" if key_mode == "tree" else "open_envelope"
    assert [c.op for c in w.people["bob"].ks_calls] == [opened]


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
    assert not {"carl", "dina"} & w.members


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
    reasons = [e.reason for e in w.notices("bob") if isinstance(e, Rekeyed)]
    assert "takeover" in reasons
    assert epoch >= 2


def test_another_admin_takes_over_when_the_manager_leaves() -> None:
    w = _meeting("bob")
    assert w.people["bob"].session.manager == "hana"
    before = w.key("bob")[0]
    w.run("hana", "leave")
    assert all(w.people[u].session.manager == "uma" for u in ("uma", "bob"))
    w.advance(0)  # uma's key waits until hana is out of the group
    assert "hana" not in w.members
    assert "hana" not in w.admins
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


@pytest.mark.seed_only
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


@pytest.mark.seed_only
def test_a_joiner_never_admitted_gives_up() -> None:
    w = _meeting(host_present=False)
    w.add("eve")
    w.refuse_open["eve"] = 99
    w.run("eve", "join")
    w.advance(30)
    assert "not_admitted" in w.events("eve")
    assert w.key("eve") == (None, None)


@pytest.mark.seed_only
def test_a_busy_key_service_never_turns_a_joiner_away() -> None:
    """Ten openings refused as overloaded or unreachable (more than the four refusals after
    which a joiner gives up): asked again, backing off, until one goes through."""
    w = _meeting(host_present=False)
    w.add("bob")
    w.fail_next["open_envelope"] = ["overloaded", "unreachable", "rate_limited"] * 3 + ["internal"]
    w.run("bob", "join")
    w.advance(300)
    assert w.fail_next["open_envelope"] == []
    assert "not_admitted" not in w.events("bob")
    assert w.events("bob").count("retrying") == 10
    assert w.key("bob")[0] == w.key("uma")[0]
    assert w.key("bob")[1] is not None
    delays = [e.delay for e in w.notices("bob") if isinstance(e, Retrying)]
    assert delays == sorted(delays)
    assert max(delays) == TRANSIENT_RETRY_MAX_SECONDS


def test_a_batch_of_additions_that_fails_transiently_goes_again() -> None:
    """The manager's batch of additions answered 503 twice: the joiner is added and keyed
    on the third try, not dropped."""
    w = _meeting("bob", host_present=False)
    w.add("zed")  # not invited: the manager admits it, and adds it to the group
    w.run("zed", "join")
    assert "knock" in w.events("uma")
    w.fail_next["add_members"] = ["overloaded", "unavailable"]
    w.do("uma", w.people["uma"].session.admit("zed", w.now))
    w.advance(30)
    assert w.fail_next["add_members"] == []
    assert w.events("uma").count("retrying") == 2
    assert "add_failed" not in w.events("uma")
    assert _same_key(w, ["uma", "bob", "zed"]) > 0


def test_a_joiner_waiting_for_its_addition_is_not_listed_and_does_not_give_up() -> None:
    """The manager's additions fail for a minute and more while others join and are keyed:
    the waiting joiner is in no key post's roster meanwhile (it would try to open a key it
    cannot have, and give up after four refusals), and gets in once its addition does."""
    w = _meeting(host_present=False)
    w.add("zed")
    w.run("zed", "join")
    w.fail_next["add_members"] = ["overloaded"] * 6  # 2 + 4 + 8 + 16 + 30 + 30 s
    w.do("uma", w.people["uma"].session.admit("zed", w.now))
    w.add("bob")
    w.run("bob", "join")  # keyed meanwhile: a key post zed reads
    w.advance(45)
    assert "not_admitted" not in w.events("zed")
    assert all("zed" not in w.posted_roster(e) for e in w.session_key_posts())
    w.advance(60)
    assert w.fail_next["add_members"] == []
    assert "not_admitted" not in w.events("zed")
    assert _same_key(w, ["uma", "bob", "zed"]) > 0


def test_one_joiner_the_key_service_keeps_failing_on_holds_nobody_back() -> None:
    """Every batch of additions naming zed fails (the service errs on it): after two tries
    zed goes alone, backing off, and amy, who joined with it, and kim, who comes an hour
    later, are added and keyed at once."""
    w = _meeting(host_present=False)
    w.fail_adding["zed"] = "internal"
    for u in ("zed", "amy"):
        w.add(u)
        w.run(u, "join")
    for u in ("zed", "amy"):
        w.do("uma", w.people["uma"].session.admit(u, w.now))
    w.advance(10)
    assert _same_key(w, ["uma", "amy"]) > 0
    w.advance(3600)
    w.add("kim")
    w.run("kim", "join")
    w.do("uma", w.people["uma"].session.admit("kim", w.now))
    w.advance(1)
    assert _same_key(w, ["uma", "amy", "kim"]) > 0
    assert w.key("zed") == (None, None)
    assert "add_failed" not in w.events("uma")  # still tried, backing off to 30 s
    tries = [c for c in w.people["uma"].ks_calls if c.op == "add_members"]
    assert 100 < len(tries) < 150  # about one every 30 s for the hour, not a storm


def test_a_batch_of_additions_refused_says_so_for_each_user() -> None:
    w = _meeting(host_present=False)
    w.add("zed")
    w.run("zed", "join")
    w.fail_next["add_members"] = ["forbidden"]
    w.do("uma", w.people["uma"].session.admit("zed", w.now))
    w.advance(30)
    assert [e for e in w.notices("uma") if e.name == "add_failed"] == [
        AddFailed("zed", "forbidden")
    ]
    assert w.key("zed") == (None, None)


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
    carl_sk = w.key("carl")[1]
    assert carl_sk is not None
    w.run("carl", "leave")
    w.add("dina")
    w.run("dina", "join")
    # A ratchet now would be derivable by carl: the join brings the fresh key forward.
    joined_epoch = _same_key(w, ["uma", "bob", "dina"])
    assert w.session_key_posts()[joined_epoch][0].body["ratchet"] is False
    assert ratchet(carl_sk, "m-1", joined_epoch) != w.key("uma")[1]
    assert w.open_as("carl", joined_epoch) == "not_member"
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert _same_key(w, ["uma", "bob", "dina"]) == joined_epoch  # it was the leave's key


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


def test_an_uninvited_joiner_knocks_and_waits_for_the_manager() -> None:
    w = World(CONFIG)
    w.add("uma")
    w.run("uma", "start")
    w.add("zed")
    w.run("zed", "join")
    assert "knock" in w.events("uma")
    assert w.key("zed") == (None, None)
    w.run("uma", "admit", "zed")
    assert w.key("zed")[0] == w.key("uma")[0]


def test_a_device_restarting_never_reuses_an_old_epoch() -> None:
    # A crashed device comes back with a fresh session: it must not reopen the epoch it
    # sent in before (its SFrame counter restarts at 0), only the one made for its return.
    w = _meeting("bob", host_present=False)
    old_epoch = w.key("bob")[0]
    from sealroom.meeting.session import MeetingSession

    p = w.people["bob"]
    p.session = MeetingSession(
        w.config, user="bob", device="bob-dev", signing_key=p.key, seq_start=10_000
    )
    p.media.clear()
    p.cursor = 0  # on reconnecting it reads the whole board again
    w.run("bob", "join")
    assert w.key("bob")[0] == w.key("uma")[0]
    assert w.key("bob")[0] != old_epoch  # type: ignore[comparison-overlap]


def test_the_old_manager_stops_its_timers_after_a_handover() -> None:
    w = _meeting("bob", host_present=False)
    w.add("hana")
    w.run("hana", "join")
    uma = w.people["uma"].session
    assert uma._duties.ratchet_at is None
    assert uma._duties.rekey_at is None
    assert uma.timer(w.now + 1000) == []


def test_replies_after_the_end_do_nothing() -> None:
    w = World(CONFIG)
    p = w.add("uma")
    w.hold_ops.add("create_group")
    w.run("uma", "start")
    w.people["uma"].session.state = "in_meeting"
    w.people["uma"].session.manager = "uma"
    w.do("uma", p.session.end(w.now))
    w.release_held()
    assert p.session.state == "ended"
    assert p.media == {}


def test_a_departed_admin_loses_its_admin_rights_and_cannot_take_over() -> None:
    w = _meeting("bob")  # hana (host) manages; uma is an admin too
    w.run("uma", "leave")
    assert "uma" not in w.admins
    assert all("uma" not in p.session.admins for u, p in w.people.items() if u != "uma")


def test_a_removed_participant_who_rejoins_must_be_admitted_again() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.run("uma", "remove", "carl")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    from sealroom.meeting.session import MeetingSession

    p = w.people["carl"]
    p.session = MeetingSession(
        w.config, user="carl", device="carl-dev", signing_key=p.key, seq_start=10_000
    )
    p.cursor = 0
    w.run("carl", "join")
    assert "knock" in w.events("uma")
    assert w.key("carl") == (None, None)
    assert "carl" not in w.people["uma"].session.roster


def test_a_knocker_stays_out_of_the_roster_and_can_be_admitted_after_rekeys() -> None:
    w = World(CONFIG)
    w.add("uma")
    w.run("uma", "start")
    w.add("bob")
    w.run("bob", "join")
    w.add("zed")
    w.run("zed", "join")
    w.run("bob", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.advance(40)  # longer than every join retry
    assert "zed" not in w.people["uma"].session.roster
    assert "not_admitted" not in w.events("zed")
    w.run("uma", "admit", "zed")
    assert w.key("zed")[0] == w.key("uma")[0]


def test_an_admitted_stranger_cannot_have_earlier_keys_opened() -> None:
    # zed sits on the channel (and could record the relayed media) before being admitted;
    # afterwards it is a member of the meeting group, yet the key service opens for it only
    # the posts registered after its addition.
    w = World(CONFIG)
    w.add("uma")
    w.run("uma", "start")
    w.add("zed")
    w.run("zed", "join")
    w.run("uma", "admit", "zed")
    epoch = _same_key(w, ["uma", "zed"])
    assert epoch == 1
    assert w.open_as("zed", 1) is None
    assert w.open_as("zed", 0) == "before_membership"
    assert w.open_as("uma", 0) is None
    # The manager registered every post before posting it.
    registered = [c for c in w.people["uma"].ks_calls if c.op == "register_value"]
    assert [c.call.edek for c in registered] == [
        env.edeks[0].to_bytes() for _, (_, env) in sorted(w.session_key_posts().items())
    ]


def test_a_key_is_posted_only_once_registered_and_registration_is_retried() -> None:
    w = _meeting("bob", host_present=False)
    before = w.key("uma")
    posts = len(w.session_key_posts())
    w.refuse_register = True
    w.run("bob", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.advance(2.5)  # a first retry (after 2 s), refused again
    failed = [e for e in w.notices("uma") if isinstance(e, KeyRegistrationFailed)]
    assert [f.retry_in for f in failed] == [2.0, 4.0]
    assert len(w.session_key_posts()) == posts  # nothing posted that nobody could open
    assert w.key("uma") == before  # the meeting stays on its key meanwhile
    w.refuse_register = False
    w.advance(4)
    assert w.key("uma")[0] == before[0] + 1  # type: ignore[operator]
    newest = max(w.session_key_posts())
    assert w.session_key_posts()[newest][0].body["reason"] == "leave"
    assert w.open_as("uma", newest) is None


def test_the_last_admin_leaving_hands_the_meeting_to_a_participant() -> None:
    w = _meeting("bob", "carl", host_present=False)  # hana, the other admin, is absent
    before = _same_key(w, ["uma", "bob", "carl"])
    w.run("uma", "leave")
    assert "bob" in w.admins  # made an admin before the handover was posted
    assert {w.people[u].session.manager for u in ("bob", "carl")} == {"bob"}
    w.advance(0)
    # bob took uma out of the group before its first key, which therefore leaves her out.
    assert "uma" not in w.members
    assert "uma" not in w.admins
    took_over = _same_key(w, ["bob", "carl"])
    assert took_over == before + 1
    post = w.session_key_posts()[took_over][0]
    assert post.body["reason"] == "takeover"
    assert w.posted_roster(took_over) == ["bob", "carl"]
    assert w.open_as("uma", took_over) == "not_member"
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert w.key("bob")[0] == took_over  # her leave needed no second key
    w.run("carl", "leave")  # and the meeting goes on being managed
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert "carl" not in w.members
    assert w.key("bob")[0] == took_over + 1


def test_an_heir_by_handover_hands_over_again_and_passes_on_failed_removals() -> None:
    w = _meeting("bob", "carl", "dina", host_present=False)
    w.run("uma", "leave")
    w.advance(0)
    assert w.people["carl"].session.manager == "bob"
    w.refuse_remove = {"carl"}  # carl's removal keeps failing
    w.run("carl", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert "carl" in w.members
    w.run("bob", "leave")  # bob, manager by handover, finds an heir in the roster
    assert w.people["dina"].session.manager == "dina"
    assert "dina" in w.admins
    w.refuse_remove = set()
    w.advance(40)  # dina retries carl's removal and only then posts her key
    assert "carl" not in w.members
    assert "bob" not in w.members
    newest = max(w.session_key_posts())
    assert w.posted_roster(newest) == ["dina"]
    assert w.open_as("carl", newest) == "not_member"


def test_an_heir_who_leaves_during_the_handover_gets_no_rights_and_another_inherits() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.hold_ops.add("add_admin")
    w.run("uma", "leave")  # uma asks the key service to make bob an admin...
    w.run("bob", "leave")  # ...and bob leaves before it answers
    w.hold_ops.clear()
    w.release_held()
    assert "bob" not in w.admins  # uma took the rights back
    assert w.people["carl"].session.manager == "carl"
    assert "carl" in w.admins
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    assert not {"uma", "bob"} & w.members
    assert _same_key(w, ["carl"]) == max(w.session_key_posts())


def test_while_a_fresh_key_waits_no_ratchet_of_the_leavers_key_goes_out() -> None:
    w = _meeting("bob", "carl", host_present=False)
    carl_epoch, carl_sk = w.key("carl")
    assert carl_sk is not None
    assert carl_epoch is not None
    w.refuse_register = True
    w.run("carl", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)  # the fresh key waits for registration
    w.add("zed")
    w.run("zed", "join")
    w.run("uma", "admit", "zed")  # a join would ratchet...
    w.advance(RATCHET_SECONDS + 1)  # ...and so would the timer
    registrations = [c for c in w.people["uma"].ks_calls if c.op == "register_value"]
    assert len(registrations) < 20  # backing off, not looping on the timer
    w.refuse_register = False
    w.advance(61)
    epoch, sk = _same_key(w, ["uma", "bob", "zed"]), w.key("uma")[1]
    later = [e for e in w.session_key_posts() if e > carl_epoch]
    assert later == [epoch]
    assert w.session_key_posts()[epoch][0].body["ratchet"] is False
    assert ratchet(carl_sk, "m-1", epoch) != sk


def _rejoin(w: World, user: str) -> None:
    """``user`` comes back on a restarted client (posts numbered after its earlier run)."""
    p = w.people[user]
    p.session = MeetingSession(
        w.config, user=user, device=f"{user}-dev", signing_key=p.key, seq_start=10_000
    )
    p.cursor = 0
    w.run(user, "join")


def test_an_admin_taking_over_removes_whoever_held_the_last_key_and_is_gone() -> None:
    w = _meeting("bob", "carl")  # the host hana is present: she manages
    w.refuse_remove = {"carl"}
    w.run("carl", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)  # hana cannot get carl out: her fresh key waits
    assert "carl" in w.members
    before = w.key("uma")[0]
    w.run("hana", "leave")  # uma, an admin, takes over without a handover message
    assert w.people["bob"].session.manager == "uma"
    w.advance(5)
    assert w.key("uma")[0] == before  # uma's first key waits for carl's removal too
    assert "hana" not in w.members
    w.refuse_remove = set()
    w.advance(40)
    assert "carl" not in w.members
    newest = _same_key(w, ["uma", "bob"])
    assert newest == before + 1  # type: ignore[operator]
    assert w.open_as("carl", newest) == "not_member"
    assert "removal_failed" in w.events("uma")


def test_a_join_never_brings_out_a_fresh_key_while_a_leaver_is_still_in_the_group() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.refuse_remove = {"carl"}
    w.run("carl", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    posted = len(w.session_key_posts())
    w.add("hana")
    w.run("hana", "join")  # the late host inherits carl's removal and has no key yet
    w.add("zed")
    w.run("zed", "join")
    w.run("hana", "admit", "zed")
    w.advance(5)
    assert len(w.session_key_posts()) == posted  # no key carl could open
    w.refuse_remove = set()
    w.advance(40)
    newest = _same_key(w, ["hana", "uma", "bob", "zed"])
    assert w.open_as("carl", newest) == "not_member"


def test_a_leaver_who_comes_back_after_a_handover_is_let_in_again() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.run("carl", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.run("uma", "leave")  # uma hands over to bob
    w.advance(0)
    _rejoin(w, "carl")  # an invitee: admitted on its announce
    w.advance(1)
    assert "carl" in w.members
    assert _same_key(w, ["bob", "carl"]) == w.key("bob")[0]


def test_a_stranger_who_was_never_let_in_cannot_inherit_the_meeting() -> None:
    w = _meeting("bob", "carl")  # hana, the host, manages
    w.add("abe")
    w.run("abe", "join")  # not invited: knocks; the others see it announce
    assert "knock" in w.events("hana")
    w.run("hana", "leave")  # uma takes over...
    w.advance(0)
    assert "knock" in w.events("uma")  # ...and treats abe as knocking, not as present
    w.run("uma", "leave")  # the heir comes from the members, never abe
    w.advance(0)
    assert w.people["carl"].session.manager == "bob"
    assert "abe" not in w.admins
    assert "abe" not in w.members
    assert w.key("abe") == (None, None)
    assert "abe" not in w.posted_roster(max(w.session_key_posts()))


def test_a_restarted_manager_removes_who_left_while_it_was_away() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.drop_board_for.add("uma")  # uma's client is down...
    w.run("carl", "leave")  # ...when carl leaves: nobody removes him
    assert "carl" in w.members
    w.drop_board_for.clear()
    _rejoin(w, "uma")  # uma restarts and reads the board
    w.advance(0)
    assert "carl" not in w.members  # taken out before uma's first key
    newest = _same_key(w, ["uma", "bob"])
    assert w.open_as("carl", newest) == "not_member"


def test_participants_hear_when_nobody_can_manage_the_meeting() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.hold_ops.add("add_admin")
    w.run("uma", "leave")  # the handover to bob fails: uma leaves anyway
    held = [c for _, c in w.held if c.op == "add_admin"]
    w.held.clear()
    w.do("uma", w.people["uma"].session.key_service_reply(held[0].id, None, "internal", w.now))
    w.pump()
    assert "unmanaged" in w.events("bob")
    assert "unmanaged" in w.events("carl")


def test_a_manager_who_left_and_comes_back_does_not_take_management_back() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.hold_ops.add("add_admin")
    w.run("uma", "leave")  # leaves as manager (the handover fails)
    held = [c for _, c in w.held if c.op == "add_admin"]
    w.held.clear()
    w.hold_ops.clear()
    w.do("uma", w.people["uma"].session.key_service_reply(held[0].id, None, "internal", w.now))
    w.pump()
    posts = len(w.board)
    _rejoin(w, "uma")  # her own leave is on the board: she is a participant now
    w.advance(1)
    assert not w.people["uma"].session.is_manager
    assert [m.kind for m in w.board[posts:]] == ["announce"]


def test_replaying_an_old_handover_does_nothing() -> None:
    w = _meeting("bob", host_present=False)
    w.add("hana")
    w.run("hana", "join")  # the late host takes over...
    w.advance(0)
    w.run("hana", "leave")  # ...and leaves: uma, an admin, takes over again
    w.advance(0)
    assert w.people["bob"].session.manager == "uma"
    posts = len(w.board)
    _rejoin(w, "hana")  # reading the board, hana meets the old handover to her...
    w.advance(1)
    # ...and ignores it; she takes over only when uma hands the meeting to her again.
    mine = [m.kind for m in w.board[posts:] if m.user == "hana"]
    assert mine == ["announce", "session-key"]
    epochs = [int(m.body["epoch"]) for m in w.board if m.kind == "session-key"]
    assert len(epochs) == len(set(epochs))  # no epoch posted twice
    _same_key(w, ["uma", "bob", "hana"])


def test_a_stranger_put_back_to_knocking_is_taken_out_of_the_group() -> None:
    w = _meeting("bob", "carl", host_present=False)
    w.add("zed")
    w.run("zed", "join")
    w.hold_ops.add("register_value")  # zed's key post will not be out in time
    w.run("uma", "admit", "zed")
    assert "zed" in w.members
    w.held.clear()
    w.hold_ops.clear()
    w.run("uma", "leave")  # bob inherits, sees zed announced but never in a roster
    w.advance(0)
    assert w.people["carl"].session.manager == "bob"
    assert "zed" not in w.members
    assert "knock" in w.events("bob")
    assert w.key("zed") == (None, None)


def test_a_new_manager_checks_the_group_itself_for_who_must_go() -> None:
    w = _meeting("bob")  # hana, the host, manages; uma is an admin too
    w.add("zed")
    w.run("zed", "join")
    w.hold_ops.add("register_value")  # zed's first key never makes it out...
    w.run("hana", "admit", "zed")
    w.held.clear()
    w.hold_ops.clear()
    w.refuse_remove = {"zed"}
    w.run("zed", "leave")  # ...and zed leaves, but hana cannot get it out of the group
    w.run("hana", "leave")  # uma takes over; zed was never in any roster she saw
    w.advance(0)
    assert w.people["bob"].session.manager == "uma"
    assert "zed" in w.members
    before = w.key("uma")[0]
    w.refuse_remove = set()
    w.advance(40)  # uma found zed in the group's member list and took it out first
    assert "zed" not in w.members
    newest = _same_key(w, ["uma", "bob"])
    assert newest == before + 1  # type: ignore[operator]
    assert w.open_as("zed", newest) == "not_member"


def test_a_forged_post_in_our_own_name_is_refused() -> None:
    w = _meeting("bob", host_present=False)
    bob = w.people["bob"]
    forged = BoardMessage.create(
        SigningKey.generate(),
        meeting="m-1",
        kind="announce",
        user="bob",
        device="bob-dev",
        seq=10**9,
        body={},
    )
    events = bob.session.receive(forged, bob.key.verifying_key, w.now)
    assert [e.event.name for e in events if isinstance(e, Notify)] == ["bad_message"]


def test_a_failed_handover_still_lets_the_manager_leave() -> None:
    w = _meeting("bob", host_present=False)
    w.hold_ops.add("add_admin")
    w.run("uma", "leave")
    w.run("uma", "leave")  # a second leave while handing over does nothing more
    assert w.people["uma"].session.state == "in_meeting"
    held = [c for _, c in w.held if c.op == "add_admin"]
    assert len(held) == 1
    w.held.clear()
    w.do("uma", w.people["uma"].session.key_service_reply(held[0].id, None, "not_admin", w.now))
    w.pump()
    assert w.people["uma"].session.state == "left"
    assert "handover_failed" in w.events("uma")
    assert w.people["bob"].session.manager == "uma"  # nobody was handed the meeting


def test_a_restarted_manager_takes_management_back() -> None:
    w = _meeting("bob", host_present=False)
    from sealroom.meeting.session import MeetingSession

    p = w.people["uma"]
    p.session = MeetingSession(
        w.config, user="uma", device="uma-dev", signing_key=p.key, seq_start=10_000
    )
    p.cursor = 0
    w.run("uma", "join")
    assert p.session.manager == "uma"
    assert p.session.is_manager
    assert w.key("bob") == w.key("uma")
    w.add("carl")
    w.run("carl", "join")
    assert w.key("carl")[0] == w.key("uma")[0]


def test_a_removal_that_fails_is_retried_until_it_succeeds() -> None:
    w = _meeting("bob", "carl", host_present=False)
    epoch = w.key("uma")[0]
    original = w._ks
    failing = {"left": 4}

    def flaky(user: str, call: object) -> tuple[object, str | None]:
        if getattr(call, "op", "") == "remove_member" and failing["left"] > 0:
            failing["left"] -= 1
            return None, "internal"
        return original(user, call)  # type: ignore[arg-type]

    w._ks = flaky  # type: ignore[assignment,method-assign]
    w.run("carl", "leave")
    w.advance(5)
    assert w.key("uma")[0] == epoch  # held while carl is still in the group
    w.advance(60)
    assert "carl" not in w.members
    assert w.key("uma")[0] == w.key("bob")[0] > epoch  # type: ignore[operator]


def test_a_failed_removal_holds_the_fresh_key() -> None:
    w = _meeting("bob", "carl", host_present=False)
    epoch = w.key("uma")[0]
    original = w._ks

    def failing(user: str, call: object) -> tuple[object, str | None]:
        if getattr(call, "op", "") == "remove_member":
            return None, "internal"
        return original(user, call)  # type: ignore[arg-type]

    w._ks = failing  # type: ignore[assignment,method-assign]
    w.run("carl", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 5)
    assert "removal_failed" in w.events("uma")
    assert w.key("uma")[0] == epoch  # no fresh key while carl is still in the group


@pytest.mark.parametrize("epoch", [2**64, 2**32, -1])
def test_out_of_range_epochs_are_refused(epoch: int) -> None:
    w = _meeting("bob", host_present=False)
    before = w.key("bob")
    uma = w.people["uma"].session
    forged = uma._post(
        "session-key",
        {
            "epoch": epoch,
            "reason": "leave",
            "ratchet": False,
            "envelope": "AA",
            "roster": ["bob"],
            "prev": "AA",
        },
    )
    w.board.append(forged.message)
    w.pump()
    assert w.key("bob") == before
    assert "bad_message" in w.events("bob")


def test_board_messages_with_odd_ids_are_malformed() -> None:
    import json as _json

    from sealroom.errors import MalformedInputError
    from sealroom.meeting.messages import BoardMessage

    good = _json.loads(
        BoardMessage.create(
            __import__("sealroom.crypto.signing", fromlist=["SigningKey"]).SigningKey.generate(),
            meeting="m",
            kind="announce",
            user="u",
            device="d",
            seq=1,
            body={},
        ).to_json()
    )
    for bad in ("\x01", "a/b", "", "x" * 129):
        with pytest.raises(MalformedInputError):
            BoardMessage.from_json(_json.dumps({**good, "device": bad}))
