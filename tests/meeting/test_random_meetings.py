"""Randomized meetings on the fake board, with key-service failures injected.

Each run plays a random mix of joins, leaves, removals, admissions, manager restarts,
refused removals and registrations, admins slipping an accomplice into the group behind
the manager's back, and clock jumps. These properties must hold throughout:

* once a departure (leave or removal) is on the board and the manager has read it, the
  departed user can neither have a later session key opened by the key service nor derive
  it by ratcheting a key it held (until it announces itself again);
* a removed user who comes back gets no key until a manager admits it again, whoever
  manages the meeting by then;
* an accomplice that an admin added to the group behind the manager's back never has a
  later key opened;
* with the key tree (large-meeting mode), a departed user that kept every path it ever
  held cannot unwrap a later fresh key from the tree, and no later path is sealed to it;
* at the end, everyone in the meeting follows the same manager.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from sealroom.api.encoding import b64d
from sealroom.crypto.envelope import Envelope
from sealroom.crypto.signing import SigningKey, VerifyingKey
from sealroom.errors import DecryptionError, MalformedInputError
from sealroom.meeting.keytree import TreePath
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import (
    Action,
    AddMember,
    ClaimManager,
    InstallMediaKey,
    KeyServiceCall,
    MeetingConfig,
    OpenEnvelope,
    Post,
    ratchet,
)

from .harness import Participant, World

USERS = ("uma", "bob", "carl", "dina", "hana", "zed", "abe")
SEEDS = range(200)


class WatchedWorld(World):
    """A world that remembers every device key and checks each posted key against leavers."""

    def __init__(self, config: MeetingConfig) -> None:
        super().__init__(config)
        self.device_keys: dict[str, VerifyingKey] = {}
        self.held: dict[str, list[tuple[int, bytes]]] = {}  # user -> keys it installed
        self.departed: dict[str, int] = {}  # user -> board index of its departure
        self.leaks: list[tuple[str, str, int]] = []
        self.devices = 0
        self.removed: set[str] = set()  # removed, and not admitted again since
        self.returned: set[str] = set()  # ...and announced again meanwhile
        self.paths: dict[str, list[TreePath]] = {}  # user -> every tree path it held
        self.owners: dict[str, str] = {}  # device -> user

    def new_device(self, user: str) -> None:
        self.devices += 1
        key = SigningKey.generate()
        session = self.session(user, f"{user}-{self.devices}", key, self.devices * 10**6)
        self.people[user] = Participant(session, key)
        self.device_keys[session.device] = key.verifying_key
        self.owners[session.device] = user

    def _signer(self, m: BoardMessage) -> Any:
        return self.device_keys[m.device]

    def _device_key(self, m: BoardMessage) -> Any:
        return self.device_keys[m.device]

    def do(self, user: str, actions: list[Action]) -> None:
        for i, action in enumerate(actions):
            if isinstance(action, Post):
                m = action.message
                if m.kind == "announce":
                    self.departed.pop(m.user, None)
                    self.held[m.user] = []
                    if m.user in self.removed:
                        self.returned.add(m.user)
                elif m.kind == "leave":
                    self.departed.setdefault(m.user, len(self.board))
                elif m.kind == "remove":
                    self.departed.setdefault(str(m.body["user"]), len(self.board))
                    self.removed.add(str(m.body["user"]))
            elif isinstance(action, InstallMediaKey):
                if user in self.returned:
                    self.leaks.append(("rejoined while banned", user, action.epoch))
                self.held.setdefault(user, []).append((action.epoch, action.session_key))
            if isinstance(action, Post) and action.message.kind == "tree-path":
                self._check_paths(user, action.message)
            super().do(user, [action])
            path = self.people[user].session._path if user in self.people else None
            kept = self.paths.setdefault(user, [])
            if path is not None and not any(k is path for k in kept):
                kept.append(path)  # the object: what it unwraps later counts too
                kept.append(path.copy())  # and the keys as they were now
            if isinstance(action, Post) and action.message.kind == "session-key":
                later = [a for a in actions[i + 1 :] if isinstance(a, InstallMediaKey)]
                self._check_key_post(user, action.message, later)

    def _check_paths(self, poster: str, m: BoardMessage) -> None:
        read_up_to = self.people[poster].cursor
        for device in m.body["paths"]:
            user = self.owners.get(device, "")
            index = self.departed.get(user)
            if index is not None and index < read_up_to:
                self.leaks.append(("path sealed", user, int(m.body["epoch"])))

    def _tree_leak(self, user: str, m: BoardMessage, sk: bytes | None) -> bool:
        if sk is None or "tree" not in m.body:
            return False
        epoch = int(m.body["epoch"])
        parts = [
            b64d(p.body["wraps"], "wraps")
            for p in sorted(
                (p for p in self.board if p.kind == "tree" and p.body["epoch"] == epoch),
                key=lambda p: int(p.body["part"]),
            )
        ]
        for path in self.paths.get(user, []):
            try:
                if path.copy().apply(parts, epoch) == sk:
                    return True
            except (DecryptionError, MalformedInputError):
                continue
        return False

    def _check_key_post(self, poster: str, m: BoardMessage, later: list[InstallMediaKey]) -> None:
        epoch = int(m.body["epoch"])
        sk = next((a.session_key for a in later if a.epoch == epoch), None)
        envelope = Envelope.from_bytes(b64d(m.body["envelope"], "envelope"))
        read_up_to = self.people[poster].cursor
        for user, index in self.departed.items():
            if user == poster or index >= read_up_to:
                continue  # the manager has not read that departure yet
            call = KeyServiceCall(
                10**6, OpenEnvelope(self.config.meeting_id, envelope, self._signer(m), m)
            )
            if self._ks(user, call)[1] is None:
                self.leaks.append(("opened", user, epoch))
            if self._tree_leak(user, m, sk):
                self.leaks.append(("unwrapped", user, epoch))
            for held_epoch, held_key in self.held.get(user, []):
                if sk is None or held_epoch >= epoch:
                    continue
                derived = held_key
                for e in range(held_epoch + 1, epoch + 1):
                    derived = ratchet(derived, "m-1", e)
                if derived == sk:
                    self.leaks.append(("derived", user, epoch))


def _manager(w: World) -> str | None:
    return next((u for u, p in w.people.items() if p.session.is_manager), None)


def _play(seed: int, steps: int = 60) -> WatchedWorld:
    rnd = random.Random(seed)
    w = WatchedWorld(MeetingConfig("m-1", host="hana", invitees=("bob", "carl", "dina")))
    w.new_device("uma")
    w.run("uma", "start")
    for _ in range(steps):
        r, user = rnd.random(), rnd.choice(USERS)
        p = w.people.get(user)
        state = p.session.state if p else "none"
        manager = _manager(w)
        if r < 0.3 and state in ("none", "left", "ended", "not_admitted"):
            w.new_device(user)
            w.run(user, "join")
        elif r < 0.5 and state in ("in_meeting", "joining"):
            w.run(user, "leave")
        elif r < 0.55 and manager and user != manager and state in ("in_meeting", "joining"):
            w.run(manager, "remove", user)
        elif r < 0.62 and manager and w.people[manager].session._knocking:
            knocker = rnd.choice(sorted(w.people[manager].session._knocking))
            w.departed.pop(knocker, None)
            w.removed.discard(knocker)
            w.returned.discard(knocker)
            w.run(manager, "admit", knocker)
        elif r < 0.64 and manager and (w.admins - {manager}) & set(w.people):
            # An admin who is not the manager claims the group and slips in an accomplice,
            # who never announces; the accomplice must never have a later key opened.
            rogue = rnd.choice(sorted((w.admins - {manager}) & set(w.people)))
            s = w.people[rogue].session
            w._ks(rogue, s._call(ClaimManager(w.config.meeting_id)))
            w._ks(rogue, s._call(AddMember(w.config.meeting_id, "mal")))
            w.departed["mal"] = -1
        elif r < 0.7:
            w.refuse_remove ^= {rnd.choice(USERS)}
        elif r < 0.75:
            w.refuse_register = not w.refuse_register
        elif r < 0.78 and manager:
            q = w.people[manager]  # the manager's client restarts on the same device
            q.session = w.session(manager, q.session.device, q.key, q.session._seq + 10**5)
            q.cursor, q.timer = 0, None
            w.run(manager, "join")
        else:
            w.advance(rnd.choice([0.5, 1, 3, 11, 40, 310]))
    w.refuse_remove, w.refuse_register = set(), False
    w.advance(700)
    return w


@pytest.mark.parametrize("seed", SEEDS)
def test_no_leaver_reads_a_later_key_and_one_manager_remains(seed: int) -> None:
    w = _play(seed)
    assert w.leaks == []
    managers = {p.session.manager for p in w.people.values() if p.session.state == "in_meeting"}
    assert len(managers) <= 1
