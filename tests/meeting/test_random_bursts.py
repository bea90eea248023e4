"""Bursts of joins with the board reaching each participant at its own pace.

The other fake-board tests deliver every post to everyone before the clock moves. Here a
scheduler picks, step by step, one participant to read a few posts, or lets time pass (join
windows close, timers fire), so that participants run ahead of or behind the manager as
they do on a real relay; some join late, some leave in the middle of the burst. When the
board has reached everyone and the timers are spent, everyone present must hold the
manager's key, and nobody may have given up (``not_admitted``, ``key_unavailable``).
"""

from __future__ import annotations

import random

import pytest

from sealroom.meeting.session import MeetingConfig, State

from .harness import World

SEEDS = range(20)


def _play(seed: int, n: int = 40) -> World:
    rng = random.Random(seed)
    users = [f"p{i:02d}" for i in range(n)]
    invited = [u for u in users if rng.random() < 0.8]
    w = World(MeetingConfig("burst", host="host", invitees=tuple(invited)))
    w.add("host")
    w.run("host", "start")
    for u in users:
        w.add(u)
    waiting = list(users)  # not joined yet
    rng.shuffle(waiting)
    left: set[str] = set()
    for _ in range(4000):
        people = w.people.values()
        if not waiting and all(p.cursor == len(w.board) and p.timer is None for p in people):
            break
        roll = rng.random()
        if waiting and roll < 0.08:
            user = waiting.pop()
            w.do(user, w.people[user].session.join(w.now))
        elif roll < 0.12:
            w.advance(rng.choice([0.05, 0.1, 0.3, 1.0]))
        elif roll < 0.125 and len(left) < 3:
            inside = [u for u in users if w.people[u].session.state == State.IN_MEETING]
            if inside:
                user = rng.choice(inside)
                left.add(user)
                w.do(user, w.people[user].session.leave(w.now))
        else:
            behind = [u for u, p in w.people.items() if p.cursor < len(w.board)]
            if behind:
                _read(w, rng.choice(behind), rng.randint(1, 6))
        _admit_knocks(w)
    for _ in range(50):  # let everything settle: the board to everyone, timers to fire
        w.pump()
        _admit_knocks(w)
        w.advance(2.0)
    return w


def _read(w: World, user: str, count: int) -> None:
    """``user`` reads up to ``count`` more posts, in board order."""
    p = w.people[user]
    for _ in range(count):
        if p.cursor >= len(w.board):
            return
        m = w.board[p.cursor]
        p.cursor += 1
        w.do(user, p.session.receive(m, w._device_key(m), w.now))


def _admit_knocks(w: World) -> None:
    """The host admits whoever knocks (the uninvited)."""
    host = w.people["host"].session
    for user in list(host._knocking):
        if host.is_manager:
            w.do("host", host.admit(user, w.now))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_burst_of_joins_at_everyone_s_own_pace_ends_with_everyone_keyed(seed: int) -> None:
    w = _play(seed)
    host = w.people["host"].session
    assert host.is_manager
    assert host.epoch is not None
    gave_up = {
        u: w.events(u) for u in w.people if {"not_admitted", "key_unavailable"} & set(w.events(u))
    }
    assert not gave_up
    behind = {
        u: (p.session.state, p.session.epoch)
        for u, p in w.people.items()
        if p.session.state != State.LEFT and p.session.epoch != host.epoch
    }
    assert not behind, f"host at {host.epoch}"
