"""Meeting transcripts made by the Python protocol core, for the web client's participant
session to replay (web/test/session.test.js).

Each scenario runs real :class:`MeetingSession` s through the fake board, clock and key
service of ``tests/meeting/harness.py``; one participant, ``web``, is recorded: every input
it took (board messages with the sender's verified key, timer calls, key-service replies,
join and leave) and every action it returned, with its state after each step. The
JavaScript session must return the same actions, byte for byte (Ed25519 is deterministic:
the same seed signs the same posts), and reach the same states.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from sealroom.api.encoding import b64e
from sealroom.crypto.envelope import seal
from sealroom.crypto.signing import SigningKey
from sealroom.errors import MalformedInputError
from sealroom.media.payload import MAX_INDEX, Packet, is_key_frame, pack, unpack
from sealroom.meeting.events import BadMessage, Joined, Knock, MeetingEvent, Retrying, RosterGap
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.session import (
    LEAVE_DEBOUNCE_SECONDS,
    RATCHET_SECONDS,
    Action,
    CallMeAt,
    InstallMediaKey,
    KeyServiceCall,
    MeetingConfig,
    MeetingSession,
    Notify,
    OpenEnvelope,
    Post,
    RetireMediaKeys,
    RotateDeviceKey,
)
from tests.meeting.harness import World

OBSERVER = "web"


def _action(a: Action) -> dict[str, Any]:
    if isinstance(a, Post):
        return {"type": "post", "message": a.message.to_json()}
    if isinstance(a, KeyServiceCall):
        args: dict[str, Any] = {"group": a.call.group}
        if isinstance(a.call, OpenEnvelope):
            args |= {
                "envelope": b64e(a.call.envelope.to_bytes()),
                "sealer": b64e(a.call.sealer.to_bytes()),
            }
        return {"type": "call", "id": a.id, "op": a.op, "args": args}
    if isinstance(a, InstallMediaKey):
        return {"type": "install", "epoch": a.epoch, "sessionKey": a.session_key.hex()}
    if isinstance(a, RetireMediaKeys):
        return {"type": "retire", "epochs": list(a.epochs)}
    if isinstance(a, CallMeAt):
        return {"type": "callMeAt", "when": a.when}
    if isinstance(a, Notify):
        name, detail = _wire(a.event)
        return {"type": "notify", "event": name, "detail": detail}
    if isinstance(a, RotateDeviceKey):
        return {"type": "rotate"}
    raise AssertionError(a)


def _wire(event: MeetingEvent) -> tuple[str, dict[str, Any]]:
    """A typed event as the page's session reports it: its name and a plain detail, with
    the names JavaScript uses and optional fields left out when unset."""
    detail = dataclasses.asdict(event)
    if isinstance(event, Joined):
        detail = ({"as": "manager"} if event.as_manager else {}) | (
            {} if event.epoch is None else {"epoch": event.epoch}
        )
    elif isinstance(event, Knock):
        detail = {"user": event.user} | ({"banned": True} if event.banned else {})
    elif isinstance(event, BadMessage):
        detail = {k: v for k, v in detail.items() if v is not None}
    elif isinstance(event, RosterGap):
        detail = {"from": event.from_epoch, "to": event.to_epoch}
    elif isinstance(event, Retrying):
        detail = {"in": event.delay}
    return event.name, detail


class Recorder:
    """Wraps the observer's session: each call's inputs, outputs and resulting state."""

    def __init__(self, session: MeetingSession) -> None:
        self.session = session
        self.steps: list[dict[str, Any]] = []
        for name in ("receive", "timer", "key_service_reply", "join", "leave"):
            setattr(session, name, self._wrap(name, getattr(session, name)))

    def _wrap(self, name: str, method: Any) -> Any:
        def recorded(*args: Any) -> list[Action]:
            step: dict[str, Any] = {"step": name, "now": args[-1]}
            if name == "receive":
                message, key = args[0], args[1]
                step |= {"message": message.to_json(), "key": b64e(key.to_bytes())}
            elif name == "key_service_reply":
                call_id, result, error = args[0], args[1], args[2]
                step |= {
                    "id": call_id,
                    "result": None if result is None else {"data": b64e(result["data"])},
                    "error": error,
                }
            actions = method(*args)
            s = self.session
            step["actions"] = [_action(a) for a in actions]
            step["after"] = {
                "state": s.state,
                "epoch": s.epoch,
                "roster": list(s.roster),
                "roster_head": s.roster_head.hex(),
                "manager": s.manager,
                "code": s.security_code(),
            }
            self.steps.append(step)
            return actions

        return recorded


class SkippingWorld(World):
    """A World whose board can lose chosen posts on their way to one participant."""

    def __init__(self, config: MeetingConfig) -> None:
        super().__init__(config)
        self.lose: set[tuple[str, int]] = set()  # (user, board index) never delivered

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for user, p in list(self.people.items()):
                while p.cursor < len(self.board) and user not in self.drop_board_for:
                    index = p.cursor
                    m = self.board[index]
                    p.cursor += 1
                    moved = True
                    if (user, index) in self.lose:
                        continue
                    self.do(user, p.session.receive(m, self._device_key(m), self.now))


def _world(config: MeetingConfig, users: list[str]) -> tuple[SkippingWorld, Recorder, bytes]:
    w = SkippingWorld(config)
    for u in users:
        w.add(u, card=u != OBSERVER)  # the page's replayed session posts no card
    observer = w.people[OBSERVER]
    seed = observer.key.expose_secret_bytes()
    return w, Recorder(observer.session), seed


def _case(
    name: str, config: MeetingConfig, recorder: Recorder, seed: bytes, users: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "config": {
            "meetingId": config.meeting_id,
            "host": config.host,
            "invitees": list(config.invitees),
        },
        "user": OBSERVER,
        "device": f"{OBSERVER}-dev",
        "seed": seed.hex(),
        "steps": recorder.steps,
    }


def _forged_posts(w: World, epoch: int) -> None:
    """Posts a hostile participant (bob, not the manager) makes: a session key with a
    valid envelope and signature of its own, and one in the manager's name that the
    manager's key did not sign."""
    bob = w.people["bob"]
    assert w.group_priv is not None
    group_pub = w.group_priv.public_key()
    envelope = seal(bytes(32) + (epoch + 1).to_bytes(8, "big"), b"forged", [group_pub], bob.key)
    body = {
        "epoch": epoch + 1,
        "reason": "join",
        "ratchet": False,
        "envelope": b64e(envelope.to_bytes()),
        "prev": b64e(bytes(32)),
        "head": b64e(bytes(32)),
        "added": [],
        "removed": [],
        "parts": 0,
        "reset": False,
    }
    bob.session._seq += 1
    w.board.append(
        BoardMessage.create(
            bob.key,
            meeting=w.config.meeting_id,
            kind="session-key",
            user="bob",
            device="bob-dev",
            seq=bob.session._seq,
            body=body,
        )
    )
    manager = w.people["hana"]
    w.board.append(  # in hana's name, signed by another key: the signature fails
        BoardMessage.create(
            SigningKey.generate(),
            meeting=w.config.meeting_id,
            kind="session-key",
            user="hana",
            device=manager.session.device,
            seq=manager.session._seq + 1000,
            body=body,
        )
    )
    w.pump()


def basics() -> dict[str, Any]:
    """Join, a knock and an admission (ratchet on join), the timer's ratchet, a forged key,
    a leave (fresh key after the debounce), a removal (ban) and an admission back, the end."""
    config = MeetingConfig("m-web", host="hana", invitees=("bob", "web"))
    w, rec, seed = _world(config, ["hana", "bob", "web", "carl"])
    w.run("hana", "start")
    w.run("bob", "join")
    w.run("web", "join")
    w.run("carl", "join")  # not invited: knocks
    w.run("hana", "admit", "carl")
    w.advance(RATCHET_SECONDS + 1)
    epoch = w.key("hana")[0]
    assert epoch is not None
    _forged_posts(w, epoch)
    w.run("bob", "leave")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.run("hana", "remove", "carl")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.run("hana", "admit", "carl")
    w.run("hana", "end")
    return _case("basics", config, rec, seed, {})


def late_and_lost() -> dict[str, Any]:
    """A late joiner reads the history (no key from it), the key service is busy, then out
    of reach (asked again, backing off), then refuses it twice (retries on the timer), then
    a session-key post is lost on its way here: the roster is unknown, asked for, and
    recovered from the manager's snapshot. Then 140 joiners with long ids arrive together,
    and later leave together: their changes travel in roster parts."""
    many = [f"user-{i:03d}-" + "x" * 110 for i in range(140)]
    config = MeetingConfig("m-late", host="hana", invitees=("bob", "web", *many))
    w, rec, seed = _world(config, ["hana", "bob", "web", *many])
    w.run("hana", "start")
    w.run("bob", "join")
    w.advance(RATCHET_SECONDS + 1)
    w.fail_next["open_envelope"] = ["overloaded", "unreachable"]
    w.refuse_open["web"] = 2
    w.run("web", "join")
    w.advance(5.0)
    w.advance(10.0)
    assert w.people["web"].session.state == "in_meeting"
    w.run("bob", "leave")
    w.lose.add(("web", len(w.board)))  # the next post: the fresh key after bob's leave
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    for u in many:
        w.do(u, w.people[u].session.join(w.now))
    w.pump()
    w.advance(1.0)
    w.advance(RATCHET_SECONDS + 1)
    for u in many:  # they leave together: the fresh key's change travels in parts
        w.do(u, w.people[u].session.leave(w.now))
    w.pump()
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.run("web", "leave")
    return _case("late_and_lost", config, rec, seed, {})


def managers() -> dict[str, Any]:
    """A late host takes the meeting over from U0, then leaves while another admin is
    present, which takes over; a handover in a stranger's name is refused."""
    config = MeetingConfig("m-mgr", host="hana", invitees=("bob", "web", "carl"))
    w, rec, seed = _world(config, ["uma", "hana", "bob", "web", "carl"])
    w.run("uma", "start")
    w.run("bob", "join")
    w.run("web", "join")
    w.run("hana", "join")  # the late host: management handed over
    w.advance(2.0)
    carl = w.people["carl"]
    w.run("carl", "join")
    carl.session._seq += 1
    w.board.append(  # carl, no admin, names itself manager: refused
        BoardMessage.create(
            carl.key,
            meeting=config.meeting_id,
            kind="manager",
            user="carl",
            device="carl-dev",
            seq=carl.session._seq,
            body={"manager": "carl", "admins": ["carl"]},
        )
    )
    w.pump()
    w.run("hana", "leave")  # uma (an admin, present) takes over and rekeys
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    w.run("uma", "remove", "web")
    w.advance(LEAVE_DEBOUNCE_SECONDS + 1)
    return _case("managers", config, rec, seed, {})


def payloads() -> dict[str, Any]:
    """Media payloads as the SDK packs them, and bytes it refuses."""
    good = [
        Packet("video", 0, b"\x10\x02\x00\x9d\x01\x2a\xa0\x00\x78\x00rest"),
        Packet("audio", 7, b"\xfc\xff\xfe"),
        Packet("video", MAX_INDEX, b"\x01"),
    ]
    bad = [b"", b"\x01v\x00\x00\x00\x00", b"\x02v\x00\x00\x00\x00x", b"\x01x\x00\x00\x00\x00x"]
    for raw in bad:
        try:
            unpack(raw)
        except MalformedInputError:
            continue
        raise AssertionError(raw)
    return {
        "good": [
            {
                "kind": p.kind,
                "index": p.index,
                "data": p.data.hex(),
                "packed": pack(p).hex(),
                "key": is_key_frame(p.data),
            }
            for p in good
        ],
        "bad": [raw.hex() for raw in bad],
    }


def write_cases(directory: Path) -> Path:
    path = directory / "session-cases.json"
    cases = {"cases": [basics(), late_and_lost(), managers()], "payloads": payloads()}
    path.write_text(json.dumps(cases))
    return path
