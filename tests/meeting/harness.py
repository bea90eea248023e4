"""A fake board, a fake clock and a fake key service that drive MeetingSessions.

Each participant's device has a PRE key pair, carried in its announce's card, so that a
manager in large-meeting mode (``TREE_THRESHOLD``: tests/meeting/conftest.py runs the
protocol tests once without the key tree and once with it from the first participant)
seals it a path that it opens itself (``open_path``).

The key service keeps real group keys and enforces membership like the real one: it opens
a session-key envelope only for a current member, lets only the group's manager change it
(another admin must claim it first), keeps bans, and registers a value only if the manager
named the group's exact members. Everything else is in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, assert_never

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.envelope import Envelope, open_with_key
from sealroom.crypto.pre import PrivateKey, generate_key_pair
from sealroom.crypto.signing import SigningKey
from sealroom.errors import DecryptionError, MalformedInputError, SignatureError
from sealroom.meeting.events import MeetingEvent
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.roster import RosterChain
from sealroom.meeting.session import (
    JOIN_WINDOW_SECONDS,
    Action,
    AddAdmin,
    AddMember,
    AddMembers,
    BanMember,
    CallMeAt,
    ClaimManager,
    CreateGroup,
    DeleteGroup,
    GroupMembers,
    InstallMediaKey,
    KeyServiceCall,
    LiftBan,
    MeetingConfig,
    MeetingSession,
    Notify,
    OpenEnvelope,
    OpenPath,
    Post,
    Preapprove,
    RegisterValue,
    RemoveAdmin,
    RemoveMember,
    RetireMediaKeys,
    RotateDeviceKey,
    Timing,
)

#: Participants present from which managers keep a key tree (None: never); see conftest.py.
TREE_THRESHOLD: int | None = None


@dataclass
class Participant:
    session: MeetingSession
    key: SigningKey
    media: dict[int, bytes] = field(default_factory=dict)
    events: list[Notify] = field(default_factory=list)
    timer: float | None = None
    cursor: int = 0
    rotated: bool = False
    ks_calls: list[KeyServiceCall] = field(default_factory=list)


class World:
    def __init__(self, config: MeetingConfig) -> None:
        self.config = config
        self.now = 0.0
        self.board: list[BoardMessage] = []
        self.people: dict[str, Participant] = {}
        self.group_priv: PrivateKey | None = None
        self.members: set[str] = set()
        # The meeting group is forward-only, as the key service keeps it: a member opens
        # only values registered at or after the generation its addition made.
        self.generation = 0
        self.since: dict[str, int] = {}
        self.registered: dict[bytes, int] = {}
        self.refuse_register = False
        self.refuse_remove: set[str] = set()  # users whose removal the service refuses
        self.admins: set[str] = set()
        self.manager: str | None = None
        self.banned: set[str] = set()
        self.deleted = False
        self.refuse_open: dict[str, int] = {}  # user -> how many opens to refuse
        self.fail_next: dict[str, list[str]] = {}  # op -> errors to answer its next calls with
        self.fail_adding: dict[str, str] = {}  # user -> the error of every batch naming it
        self.held: list[tuple[str, KeyServiceCall]] = []  # calls not answered yet
        self.hold_ops: set[str] = set()
        self.drop_board_for: set[str] = set()
        self.timing = Timing(tree_threshold=TREE_THRESHOLD)
        self.device_privs: dict[str, PrivateKey] = {}  # device -> its PRE private key

    def card(self, device: str, key: SigningKey) -> dict[str, str]:
        """A new PRE key pair for ``device``; the card its announce carries. Nothing here
        checks the certificate (the fake board hands sessions the posting device's key, as
        a driver does after checking it), so it is a placeholder of the right size."""
        priv, pub = generate_key_pair()
        self.device_privs[device] = priv
        return {
            "signing_key": b64e(key.verifying_key.to_bytes()),
            "public_key": b64e(pub.to_bytes()),
            "certificate": b64e(bytes(64)),
        }

    def session(
        self, user: str, device: str, key: SigningKey, seq_start: int = 0, card: bool = True
    ) -> MeetingSession:
        return MeetingSession(
            self.config,
            user=user,
            device=device,
            signing_key=key,
            timing=self.timing,
            seq_start=seq_start,
            card=self.card(device, key) if card else None,
        )

    def add(self, user: str, card: bool = True) -> Participant:
        """A participant; ``card``: its announce carries a device card (with the PRE key the
        key tree seals paths to)."""
        key = SigningKey.generate()
        p = Participant(self.session(user, f"{user}-dev", key, card=card), key)
        self.people[user] = p
        return p

    # --- driving ---

    def do(self, user: str, actions: list[Action]) -> None:
        p = self.people[user]
        for a in actions:
            if isinstance(a, Post):
                self.board.append(a.message)
            elif isinstance(a, KeyServiceCall):
                p.ks_calls.append(a)
                if a.op in self.hold_ops:
                    self.held.append((user, a))
                else:
                    self.answer(user, a)
            elif isinstance(a, InstallMediaKey):
                p.media[a.epoch] = a.session_key
            elif isinstance(a, RetireMediaKeys):
                for e in a.epochs:
                    p.media.pop(e, None)
            elif isinstance(a, CallMeAt):
                p.timer = a.when if p.timer is None else min(p.timer, a.when)
            elif isinstance(a, Notify):
                p.events.append(a)
            elif isinstance(a, RotateDeviceKey):
                p.rotated = True

    def answer(self, user: str, call: KeyServiceCall) -> None:
        failing = self.fail_next.get(call.op)
        result, error = (None, failing.pop(0)) if failing else self._ks(user, call)
        self.do(user, self.people[user].session.key_service_reply(call.id, result, error, self.now))

    def release_held(self) -> None:
        held, self.held = self.held, []
        for user, call in held:
            self.answer(user, call)
        self.pump()

    def _ks(self, user: str, action: KeyServiceCall) -> tuple[dict[str, Any] | None, str | None]:
        call = action.call
        match call:
            case CreateGroup():
                self.group_priv, pub = generate_key_pair()
                self.admins.add(user)
                self.manager = user
                return {"public_key": pub}, None
            case ClaimManager():
                if user not in self.admins:
                    return None, "not_admin"
                self.manager = user
                return {}, None
            case (
                AddMember()
                | RemoveMember()
                | AddAdmin()
                | RemoveAdmin()
                | DeleteGroup()
                | Preapprove()
                | BanMember()
                | LiftBan()
            ):
                return self._manage(user, call)
            case AddMembers():
                poison = [self.fail_adding[u] for u in call.users if u in self.fail_adding]
                if poison:  # the service fails on the whole request (a 500, say)
                    return None, poison[0]
                results: dict[str, str | None] = {}
                for member in call.users:
                    results[member] = self._manage(user, AddMember(call.group, member))[1]
                if set(results.values()) <= {"not_admin", "not_manager"} and results:
                    return None, next(iter(results.values()))  # refused as a whole
                return {"results": results}, None
            case GroupMembers():
                if user not in self.admins | self.members or self.deleted:
                    return None, "not_member"
                return {"members": sorted(self.members)}, None
            case RegisterValue():
                if user not in self.admins or self.refuse_register:
                    return None, "not_admin"
                if user != self.manager:
                    return None, "not_manager"
                if call.edek not in self.registered and set(call.members) != self.members:
                    return None, "membership_mismatch"
                self.registered.setdefault(call.edek, self.generation)
                return {}, None
            case OpenPath():  # the device's own key, no key service
                priv = self.device_privs.get(self.people[user].session.device)
                env = call.envelope
                if priv is None:
                    return None, "no_key"
                try:
                    data = open_with_key(env, env.edeks[0], priv, origin_signer=call.sealer)
                except (DecryptionError, MalformedInputError, SignatureError):
                    return None, "decryption_failed"
                return {"data": data}, None
            case OpenEnvelope():
                if self.refuse_open.get(user, 0) > 0:
                    self.refuse_open[user] -= 1
                    return None, "not_member"
                if self.deleted or user not in self.members:
                    return None, "not_member"
                env = call.envelope
                made_at = self.registered.get(env.edeks[0].to_bytes())
                if made_at is None or made_at < self.since[user]:
                    return None, "before_membership"
                assert self.group_priv is not None
                data = open_with_key(env, env.edeks[0], self.group_priv, origin_signer=call.sealer)
                return {"data": data}, None
            case _:
                assert_never(call)

    def _manage(
        self,
        user: str,
        call: AddMember
        | RemoveMember
        | AddAdmin
        | RemoveAdmin
        | DeleteGroup
        | Preapprove
        | BanMember
        | LiftBan,
    ) -> tuple[dict[str, Any] | None, str | None]:
        """A change only the group's manager may make."""
        if user not in self.admins:
            return None, "not_admin"
        if user != self.manager:
            return None, "not_manager"
        match call:
            case RemoveMember() | BanMember() if call.user in self.refuse_remove:
                return None, "internal"
            case BanMember():
                self.banned.add(call.user)
                self.members.discard(call.user)
                self.since.pop(call.user, None)
                self.admins.discard(call.user)
            case LiftBan():
                self.banned.discard(call.user)
            case AddMember() if call.user in self.banned:
                return None, "banned"
            case AddMember():
                self.members.add(call.user)
                self.generation += 1
                self.since[call.user] = self.generation
            case RemoveMember():
                self.members.discard(call.user)
                self.since.pop(call.user, None)
            case AddAdmin():
                self.admins.add(call.user)
            case RemoveAdmin():
                self.admins.discard(call.user)
            case DeleteGroup():
                self.deleted = True
            case Preapprove():
                pass
            case _:
                assert_never(call)
        return {}, None

    def pump(self) -> None:
        """Deliver every board message to everyone until nothing new is posted."""
        moved = True
        while moved:
            moved = False
            for user, p in list(self.people.items()):
                while p.cursor < len(self.board) and user not in self.drop_board_for:
                    m = self.board[p.cursor]
                    p.cursor += 1
                    self.do(user, p.session.receive(m, self._device_key(m), self.now))
                    moved = True

    def _device_key(self, m: BoardMessage) -> Any:
        """The posting device's key, as the driver would have checked it."""
        return self.people[m.user].key.verifying_key

    def run(self, user: str, command: str, *args: Any) -> None:
        """Run a command, deliver what follows, and let a join window pass (the manager
        keys joins that arrive together in one batch)."""
        session = self.people[user].session
        self.do(user, getattr(session, command)(*args, self.now))
        self.pump()
        self.advance(JOIN_WINDOW_SECONDS)

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every due timer in time order."""
        end = self.now + seconds
        while True:
            due = [
                (p.timer, u)
                for u, p in self.people.items()
                if p.timer is not None and p.timer <= end
            ]
            if not due:
                break
            when, user = min(due)
            self.now = max(self.now, when)
            p = self.people[user]
            p.timer = None
            self.do(user, p.session.timer(self.now))
            self.pump()
        self.now = end

    def events(self, user: str) -> list[str]:
        """The names of the events ``user``'s session notified, in order."""
        return [e.event.name for e in self.people[user].events]

    def notices(self, user: str) -> list[MeetingEvent]:
        """The typed events ``user``'s session notified, in order."""
        return [e.event for e in self.people[user].events]

    def key(self, user: str) -> tuple[int | None, bytes | None]:
        s = self.people[user].session
        return s.epoch, s._sk

    def session_key_posts(self) -> dict[int, tuple[BoardMessage, Envelope]]:
        """Every session-key post on the board by epoch, with its sealed envelope."""
        return {
            int(m.body["epoch"]): (m, Envelope.from_bytes(b64d(m.body["envelope"], "envelope")))
            for m in self.board
            if m.kind == "session-key"
        }

    def posted_roster(self, epoch: int) -> list[str]:
        """The roster of an epoch, as a device following the whole board computes it."""
        chain = RosterChain()
        for m in self.board:
            if m.kind == "roster":
                chain.add_part(m.body)
            elif m.kind == "session-key" and int(m.body["epoch"]) > chain.epoch:
                chain.follow(
                    int(m.body["epoch"]),
                    prev=b64d(m.body["prev"], "prev"),
                    head=b64d(m.body["head"], "head"),
                    added=m.body["added"],
                    removed=m.body["removed"],
                    parts=m.body["parts"],
                    reset=m.body["reset"],
                )
        known = chain.roster_at(epoch)
        assert known is not None, f"epoch {epoch}: roster unknown"
        return known[0]

    def open_as(self, user: str, epoch: int) -> str | None:
        """``user`` asks the fake key service to open an epoch's post: None, or the error."""
        m, env = self.session_key_posts()[epoch]
        call = OpenEnvelope(self.config.meeting_id, env, self._signer(m), m)
        return self._ks(user, KeyServiceCall(10**6, call))[1]

    def _signer(self, m: BoardMessage) -> Any:
        poster = next(p for p in self.people.values() if p.session.device == m.device)
        return poster.key.verifying_key
