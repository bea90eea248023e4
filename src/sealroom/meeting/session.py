"""One participant's view of a meeting (docs/meetings.md), as a sans-I/O state machine.

A :class:`MeetingSession` never reads a clock or a socket. Every entry point takes ``now``
and returns a list of actions for its driver: post a board message, call the key service,
install or retire a media key, call back at a time, notify the application, rotate the
device key. The driver feeds back board messages (with the sender's verified device key),
key-service replies and timer calls.

Keys: SK_n is 32 bytes. A fresh key is random; a ratchet step is
SK_{n+1} = HKDF(SK_n, label ‖ meeting ‖ n+1), which members compute locally. Each
session-key post carries SK_n sealed in an envelope to the meeting group (one encryption,
whatever the meeting's size); a member who cannot ratchet opens it through the key service.
Each post also extends a hash-chained roster that the manager signs.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, assert_never

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealroom.api.encoding import b64d, b64e
from sealroom.crypto.envelope import Envelope, seal
from sealroom.crypto.pre import PublicKey
from sealroom.crypto.signing import SigningKey, VerifyingKey
from sealroom.errors import (
    DecryptionError,
    MalformedInputError,
    MeetingStateError,
    SignatureError,
)
from sealroom.meeting.events import (
    AddFailed,
    BadMessage,
    Ended,
    HandoverFailed,
    Joined,
    KeyInstalled,
    KeyRegistrationFailed,
    KeyUnavailable,
    Knock,
    Left,
    ManagementContested,
    ManagementLost,
    ManagerChanged,
    MeetingEvent,
    MeetingFailed,
    MembershipMismatch,
    NotAdmitted,
    ParticipantLeft,
    ReconcileFailed,
    Rekeyed,
    RemovalFailed,
    Retrying,
    RosterFork,
    RosterGap,
    RosterRecovered,
    RosterUnknown,
    Superseded,
    Unmanaged,
)
from sealroom.meeting.keytree import KeyTree, TreePath, decode_path, encode_path
from sealroom.meeting.messages import BoardMessage
from sealroom.meeting.roster import RosterChain, chunks, parse_ids

__all__ = [
    "JOIN_RETRY_DELAYS",
    "JOIN_WINDOW_SECONDS",
    "LEAVE_DEBOUNCE_SECONDS",
    "MAX_JOIN_BATCH",
    "MAX_TREE_PARTS",
    "PATHS_PER_POST",
    "RATCHET_SECONDS",
    "REGISTER_RETRY_MAX_SECONDS",
    "REGISTER_RETRY_SECONDS",
    "TRANSIENT_ERRORS",
    "TRANSIENT_RETRY_MAX_SECONDS",
    "TREE_THRESHOLD",
    "Action",
    "AddAdmin",
    "AddMember",
    "AddMembers",
    "BanMember",
    "Call",
    "CallMeAt",
    "ClaimManager",
    "CreateGroup",
    "DeleteGroup",
    "GroupMembers",
    "InstallMediaKey",
    "KeyServiceCall",
    "LiftBan",
    "MeetingConfig",
    "MeetingSession",
    "Notify",
    "OpenEnvelope",
    "OpenPath",
    "Post",
    "Preapprove",
    "RegisterValue",
    "RemoveAdmin",
    "RemoveMember",
    "RetireMediaKeys",
    "RotateDeviceKey",
    "State",
    "Timing",
    "ratchet",
    "security_code",
    "tree_check",
]

JOIN_RETRY_DELAYS: Final[tuple[float, ...]] = (1.0, 5.0, 10.0, 10.0)
LEAVE_DEBOUNCE_SECONDS: Final[float] = 10.0
RATCHET_SECONDS: Final[float] = 300.0
#: Joins that arrive within this window share one ratchet (and one batch of additions)...
JOIN_WINDOW_SECONDS: Final[float] = 0.3
#: ...of at most this many joiners; more go in the next batch, right after.
MAX_JOIN_BATCH: Final[int] = 500
#: A key the key service would not register is retried after this, doubling each time...
REGISTER_RETRY_SECONDS: Final[float] = 2.0
#: ...up to this. Meanwhile the meeting stays on its current key.
REGISTER_RETRY_MAX_SECONDS: Final[float] = 60.0
#: Errors that say the key service is busy or out of reach, not that it refuses: a key
#: post's opening, or a batch of additions, is asked again, backing off from
#: REGISTER_RETRY_SECONDS up to TRANSIENT_RETRY_MAX_SECONDS, for as long as it takes (they
#: never count toward ``join_retry_delays``, after which a joiner is not admitted).
TRANSIENT_ERRORS: Final[frozenset[str]] = frozenset(
    {"unreachable", "overloaded", "rate_limited", "unavailable", "internal"}
)
TRANSIENT_RETRY_MAX_SECONDS: Final[float] = 30.0
#: The manager keeps a key tree (large-meeting mode, meeting/keytree.py) once this many
#: participants are present (bench/rekey.py and docs/scaling.md: where it pays).
TREE_THRESHOLD: Final[int] = 32
#: Joiners' sealed paths per ``tree-path`` post (each about 2 KB in base64).
PATHS_PER_POST: Final[int] = 24
#: ``tree`` parts a member keeps per epoch, and epochs it keeps them for.
MAX_TREE_PARTS: Final[int] = 64
_RATCHET_LABEL: Final[bytes] = b"sealroom/v1/meeting/ratchet"
_TREE_CHECK_LABEL: Final[bytes] = b"sealroom/v1/meeting/tree/check"
_CODE_LABEL: Final[bytes] = b"sealroom/v1/meeting/security-code"


class State(enum.StrEnum):
    """Where this device is in the meeting (a ``str``: each equals its value)."""

    IDLE = "idle"
    STARTING = "starting"  # creating the group, as the meeting's first participant
    JOINING = "joining"  # announced, waiting for a key
    IN_MEETING = "in_meeting"
    LEFT = "left"
    ENDED = "ended"
    NOT_ADMITTED = "not_admitted"  # its key was never opened: neither invited nor admitted


# --- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """Post this message on the meeting's board."""

    message: BoardMessage


# --- key-service calls: one frozen type each, carrying what its reply needs ----------------


@dataclass(frozen=True)
class CreateGroup:
    """Create the meeting group (forward-only); the reply carries its ``public_key``."""

    op: ClassVar[str] = "create_group"
    group: str


@dataclass(frozen=True)
class AddMember:
    """Add ``user`` to the group (refused as ``banned`` if a manager banned it)."""

    op: ClassVar[str] = "add_member"
    group: str
    user: str


@dataclass(frozen=True)
class AddMembers:
    """Add ``users`` in one batch; the reply's ``results`` maps each to None or a problem.
    ``start``: the invitees added as the meeting starts (no ratchet follows)."""

    op: ClassVar[str] = "add_members"
    group: str
    users: tuple[str, ...]
    start: bool = False


@dataclass(frozen=True)
class RemoveMember:
    """Take ``user`` out of the group; ``removal``: one of the calls of its removal."""

    op: ClassVar[str] = "remove_member"
    group: str
    user: str
    removal: bool = False


@dataclass(frozen=True)
class AddAdmin:
    """Make ``user`` an admin; ``handover``: to hand the meeting over to it next."""

    op: ClassVar[str] = "add_admin"
    group: str
    user: str
    handover: bool = False


@dataclass(frozen=True)
class RemoveAdmin:
    """Take ``user``'s admin rights; ``removal``: one of the calls of its removal."""

    op: ClassVar[str] = "remove_admin"
    group: str
    user: str
    removal: bool = False


@dataclass(frozen=True)
class Preapprove:
    """Let ``users`` (the invitees) in without asking the manager again."""

    op: ClassVar[str] = "preapprove"
    group: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class BanMember:
    """Out of the group until a manager admits ``user`` again (a removal)."""

    op: ClassVar[str] = "ban_member"
    group: str
    user: str
    removal: bool = True


@dataclass(frozen=True)
class LiftBan:
    """A manager admits a banned ``user`` again."""

    op: ClassVar[str] = "lift_ban"
    group: str
    user: str


@dataclass(frozen=True)
class ClaimManager:
    """Become the group's manager at the key service (audited)."""

    op: ClassVar[str] = "claim_manager"
    group: str


@dataclass(frozen=True)
class GroupMembers:
    """The group's members as the key service lists them (reply: ``members``)."""

    op: ClassVar[str] = "group_members"
    group: str


@dataclass(frozen=True)
class RegisterValue:
    """Register a session key's EDEK, naming the members the manager expects (refused with
    ``membership_mismatch`` if anyone else is in the group)."""

    op: ClassVar[str] = "register_value"
    group: str
    edek: bytes
    members: tuple[str, ...]


@dataclass(frozen=True)
class OpenEnvelope:
    """Have the key service transform a session-key post's EDEK to this device and open
    it (reply: ``data``); ``message`` is the post."""

    op: ClassVar[str] = "open_envelope"
    group: str
    envelope: Envelope
    sealer: VerifyingKey
    message: BoardMessage = field(repr=False)


@dataclass(frozen=True)
class OpenPath:
    """Open, with this device's own key, the key-tree path the manager sealed to it (reply:
    ``data``): for the key post ``message`` (joining), or to adopt at epoch ``adopt``."""

    op: ClassVar[str] = "open_path"
    group: str
    envelope: Envelope
    sealer: VerifyingKey
    message: BoardMessage | None = field(default=None, repr=False)
    adopt: int | None = None


@dataclass(frozen=True)
class DeleteGroup:
    """End of the meeting: the group is deleted."""

    op: ClassVar[str] = "delete_group"
    group: str


Call = (
    CreateGroup
    | AddMember
    | AddMembers
    | RemoveMember
    | AddAdmin
    | RemoveAdmin
    | Preapprove
    | BanMember
    | LiftBan
    | ClaimManager
    | GroupMembers
    | RegisterValue
    | OpenEnvelope
    | OpenPath
    | DeleteGroup
)


@dataclass(frozen=True)
class KeyServiceCall:
    """Ask the SDK to make ``call`` (the key service, or this device's own key for
    :class:`OpenPath`); answer with :meth:`MeetingSession.key_service_reply`."""

    id: int
    call: Call

    @property
    def op(self) -> str:
        return self.call.op


@dataclass(frozen=True)
class InstallMediaKey:
    """Derive SFrame keys for ``epoch`` from this session key and start using them."""

    epoch: int
    session_key: bytes = field(repr=False)


@dataclass(frozen=True)
class RetireMediaKeys:
    """Drop the media keys of these epochs (all of them when the meeting ends)."""

    epochs: tuple[int, ...]


@dataclass(frozen=True)
class CallMeAt:
    """Call :meth:`MeetingSession.timer` at this time (or later)."""

    when: float


@dataclass(frozen=True)
class Notify:
    """Something the application hears: one typed event (sealroom.meeting.events)."""

    event: MeetingEvent


@dataclass(frozen=True)
class RotateDeviceKey:
    """The meeting is over for this device: rotate its key pair (forward secrecy)."""


Action = (
    Post | KeyServiceCall | InstallMediaKey | RetireMediaKeys | CallMeAt | Notify | RotateDeviceKey
)


@dataclass(frozen=True)
class Timing:
    """The protocol's waits (docs/meetings.md); tests and demos compress them."""

    join_retry_delays: tuple[float, ...] = JOIN_RETRY_DELAYS
    leave_debounce: float = LEAVE_DEBOUNCE_SECONDS
    ratchet_interval: float = RATCHET_SECONDS
    join_window: float = JOIN_WINDOW_SECONDS
    #: Participants present from which the manager keeps a key tree (None: never).
    tree_threshold: int | None = TREE_THRESHOLD


@dataclass(frozen=True)
class MeetingConfig:
    """What every participant knows from the invitation."""

    meeting_id: str
    host: str
    invitees: tuple[str, ...] = ()


def ratchet(session_key: bytes, meeting: str, epoch: int) -> bytes:
    """SK_epoch from SK_(epoch-1): one-way, so a joiner cannot go back."""
    info = _RATCHET_LABEL + meeting.encode() + b"\x00" + epoch.to_bytes(8, "big")
    return HKDF(hashes.SHA256(), 32, None, info).derive(session_key)


def security_code(group_key: bytes, roster_head: bytes, epoch: int) -> str:
    """Six groups of five digits for participants to compare out of band."""
    digest = hashlib.sha256(_CODE_LABEL + group_key + roster_head + epoch.to_bytes(8, "big"))
    value = int.from_bytes(digest.digest()[:20], "big")
    return " ".join(f"{(value >> (17 * i)) % 100000:05d}" for i in range(6))


def tree_check(session_key: bytes, meeting: str, epoch: int) -> bytes:
    """16 bytes that let a member check the key it derived through the tree (an HKDF
    output under its own label: it tells nothing about the key)."""
    info = _TREE_CHECK_LABEL + meeting.encode() + b"\x00" + epoch.to_bytes(8, "big")
    return HKDF(hashes.SHA256(), 16, None, info).derive(session_key)


def _backoff(failures: int) -> float:
    """The wait before asking again after ``failures`` transient failures in a row."""
    return float(min(REGISTER_RETRY_SECONDS * 2 ** min(failures, 16), TRANSIENT_RETRY_MAX_SECONDS))


def _head(value: Any, what: str) -> bytes:
    raw = b64d(value, what, max_bytes=32)
    if len(raw) != 32:
        raise MalformedInputError(f"{what}: a roster head is 32 bytes")
    return raw


#: Calls only the meeting group's manager may make at the key service; ``not_manager`` on
#: one of them means another admin claimed the group.
_MANAGER_CALLS: Final = (
    AddMember,
    AddMembers,
    RemoveMember,
    AddAdmin,
    RemoveAdmin,
    Preapprove,
    BanMember,
    LiftBan,
    RegisterValue,
    DeleteGroup,
)


@dataclass
class _Unpublished:
    """A session key sealed and waiting for the key service to register it."""

    epoch: int
    sk: bytes
    reason: str
    ratchet: bool  # derived from the previous key: members derive it, only joiners open it
    envelope: Envelope
    failures: int = 0
    tree_parts: list[bytes] = field(default_factory=list)  # a fresh key's wraps (tree mode)


@dataclass
class _ManagerDuties:
    """What only the meeting's manager keeps. When management leaves this device (it hands
    the meeting over, another takes it over, it leaves, the meeting ends) all of it goes in
    one step: ``self._duties = _ManagerDuties()``."""

    rekey_at: float | None = None  # a fresh key is due then (leaves are debounced)
    rekey_reason: str = "leave"  # why
    rekey_held: bool = False  # rekey_at is past due, held back by pending removals
    leavers: set[str] = field(default_factory=set)  # left since the last fresh key
    ratchet_at: float | None = None  # the timer's next ratchet
    joining: set[str] = field(default_factory=set)  # let in, to be added and keyed together
    join_at: float | None = None  # when the next batch of joins goes
    adding: bool = False  # a batch of additions is at the key service
    add_tries: dict[str, int] = field(default_factory=dict)  # user -> transient failures
    add_after: dict[str, float] = field(default_factory=dict)  # user -> not before (backoff)
    unpublished: _Unpublished | None = None  # a key being registered
    register_retry_at: float | None = None
    unpublished_waits: bool = False  # its registration waits for the membership to settle
    removing: dict[str, int] = field(default_factory=dict)  # user -> failed attempts
    removing_ops: dict[str, set[str]] = field(default_factory=dict)  # user -> calls left
    removal_retry_at: float | None = None
    reconciling: bool = False  # checking the group's members at the key service
    reconcile_failures: int = 0
    claiming: bool = False  # claiming the group back at the key service
    after_claim: list[Call] = field(default_factory=list)  # calls refused meanwhile
    snapshot_for: int = -1  # the epoch whose whole roster it last posted
    # Large-meeting mode (meeting/keytree.py). The tree lives as long as this management: a
    # tree handed back later would still hold the keys of those who left meanwhile.
    tree: KeyTree | None = None
    pathed: dict[str, str] = field(default_factory=dict)  # user -> device sealed a path


_BoardHandler = Callable[[BoardMessage, VerifyingKey, float], "list[Action]"]


class MeetingSession:
    """One device's participation in one meeting."""

    def __init__(
        self,
        config: MeetingConfig,
        *,
        user: str,
        device: str,
        signing_key: SigningKey,
        timing: Timing | None = None,
        seq_start: int = 0,
        card: dict[str, str] | None = None,
    ) -> None:
        """``seq_start`` must exceed every sequence number this device used before (the
        driver passes a millisecond clock), so that a restarted device is not taken for a
        replay. ``card`` (the device's signing key, PRE key and certificate, as the key
        service lists them) rides in our announce, so that others check this device
        against its user's key without asking the key service about it."""
        self.config = config
        self.timing = timing or Timing()
        self.user, self.device, self._key = user, device, signing_key
        self._card = dict(card or {})
        self.state = State.IDLE
        self._duties: _ManagerDuties = _ManagerDuties()
        self.epoch: int | None = None
        self._sk: bytes | None = None
        self.group_key: PublicKey | None = None
        self.admins: set[str] = set()
        self.manager: str | None = None
        self.present: dict[str, str] = {}  # user -> device
        self.members: set[str] = set()  # as the manager knows them
        self.roster: list[str] = []  # who holds our current epoch's key (sender indices)
        self.roster_head = bytes(32)
        self.last_envelope = b""  # the newest session-key envelope, as posted
        self._board_epoch = -1  # newest session-key post by a manager, opened or not
        self._chain = RosterChain()  # the roster chain as the board showed it
        self._duties.snapshot_for = -1  # manager: the epoch whose full roster it last posted
        self._asked_for = -1  # the epoch whose full roster we last asked for
        self._seq = self._seq_start = seq_start
        # (user, device) -> the newest seq seen: keyed by the user too, so that a post
        # naming another user's device id (anyone may claim any id in their own posts)
        # cannot make us drop that device's real posts as replays.
        self._seen: dict[tuple[str, str], int] = {}
        self._heard_own_announce = False  # session-key posts before it are history
        self._knocking: dict[str, str] = {}  # user -> device, waiting for admit()
        self._admitted: set[str] = set(config.invitees) | {config.host}
        # Removed by a manager (a ``remove`` post), until a manager admits it again (an
        # ``admit`` post): every device follows the board, so a ban outlives any change of
        # manager; the key service keeps it too (``ban_member``).
        self._banned: set[str] = set()
        self._calls: dict[int, Call] = {}  # made, not answered yet
        self._next_call = 1
        self._duties.adding = False  # a batch of additions is at the key service
        self._join_attempts = 0
        self._transient_failures = 0  # openings failed transiently in a row
        self._retry_at: float | None = None
        self._pending_post: BoardMessage | None = None  # newest session-key post to open
        self._opening: BoardMessage | None = None  # the post the key service is opening
        self._board_ratchets: dict[int, bool] = {}  # recent key posts: epoch -> a ratchet?
        self._pending_key: VerifyingKey | None = None
        self._handing_over = False  # leaving: making an heir an admin first
        self._duties.rekey_reason = "leave"  # why the pending fresh key (_rekey_at) is due
        self._duties.rekey_held = False  # _rekey_at is past due, held back by pending removals
        self._duties.reconciling = False  # a new manager checking the group's members
        self._duties.reconcile_failures = 0
        self._duties.unpublished_waits = False  # registration waits for the membership to settle
        self._duties.claiming = False  # claiming the group back at the key service
        # Large-meeting mode (meeting/keytree.py). The manager's tree lives as long as its
        # management: another manager starts without one (its fresh keys go through the
        # key service) and a tree handed back would still hold leavers' keys.
        # (user, device) -> the PRE key its announce carried (keyed by the user too: an
        # announce naming another user's device id must not replace that device's key).
        self._device_keys: dict[tuple[str, str], bytes] = {}
        self._path: TreePath | None = None  # ours, as the manager sealed it to this device
        self._path_offer: tuple[int, bytes] | None = None  # (epoch, sealed path) for us
        self._tree_parts: dict[int, dict[int, bytes]] = {}  # epoch -> part -> wraps
        self._board_handlers = self._handlers()

    # --- helpers -------------------------------------------------------------------------

    @property
    def _group(self) -> str:
        return self.config.meeting_id

    @property
    def is_manager(self) -> bool:
        return self.manager == self.user and self.state in (State.STARTING, State.IN_MEETING)

    def _post(self, kind: str, body: dict[str, Any]) -> Post:
        self._seq += 1
        return Post(
            BoardMessage.create(
                self._key,
                meeting=self.config.meeting_id,
                kind=kind,
                user=self.user,
                device=self.device,
                seq=self._seq,
                body=body,
            )
        )

    def _call(self, call: Call) -> KeyServiceCall:
        call_id = self._next_call
        self._next_call += 1
        self._calls[call_id] = call
        return KeyServiceCall(call_id, call)

    def _timers(self) -> list[Action]:
        times = [
            t
            for t in (
                self._duties.join_at,
                self._duties.rekey_at,
                self._duties.ratchet_at,
                self._retry_at,
                self._duties.removal_retry_at,
                self._duties.register_retry_at,
            )
            if t is not None
        ]
        return [CallMeAt(min(times))] if times else []

    def _install(self, epoch: int, sk: bytes, now: float, reason: str) -> list[Action]:
        old = self.epoch
        self.epoch, self._sk = epoch, sk
        actions: list[Action] = [InstallMediaKey(epoch, sk)]
        if old is not None and old < epoch:
            actions.append(RetireMediaKeys((old,)))
        if self.is_manager:
            self._duties.ratchet_at = now + self.timing.ratchet_interval
        actions.append(
            Notify(Rekeyed(epoch, reason) if old is not None else KeyInstalled(epoch, reason))
        )
        return actions

    def _publish_key(
        self,
        sk: bytes,
        epoch: int,
        reason: str,
        now: float,
        *,
        ratchet: bool,
        tree_parts: list[bytes] | None = None,
    ) -> list[Action]:
        """Manager: seal SK_epoch to the group once and have the key service register it;
        :meth:`_registered` posts it. The meeting group is forward-only, so only members
        added before the registration can have it opened; a key is never posted before."""
        if self.group_key is None:
            raise MeetingStateError("the group key is not known yet")
        envelope = seal(
            sk + epoch.to_bytes(8, "big"), self._object_id(epoch), [self.group_key], self._key
        )
        waiting = self._duties.unpublished  # superseded: its failures carry over to the backoff
        self._duties.unpublished = _Unpublished(
            epoch, sk, reason, ratchet, envelope, waiting.failures if waiting else 0
        )
        self._duties.unpublished.tree_parts = list(tree_parts or [])
        self._duties.register_retry_at = None
        return [self._register_call(self._duties.unpublished)]

    def _register_call(self, u: _Unpublished) -> KeyServiceCall:
        """Register ``u`` naming the members we admitted: the key service refuses
        (``membership_mismatch``) if anyone else is in the group."""
        self._duties.unpublished_waits = False
        edek = u.envelope.edeks[0].to_bytes()
        return self._call(RegisterValue(self._group, edek, tuple(sorted(self.members))))

    def _registered(self, call: RegisterValue, error: str | None, now: float) -> list[Action]:
        u = self._duties.unpublished
        if u is None or u.envelope.edeks[0].to_bytes() != call.edek or not self.is_manager:
            return []  # superseded by a newer key, or no longer ours to post
        if error == "membership_mismatch":
            # Someone is in the group who we did not let in, or someone we let in is not:
            # check the group's members, take out the stranger, then register again.
            self._duties.unpublished_waits = True
            return [Notify(MembershipMismatch(u.epoch)), *self._reconcile()]
        if error is not None:
            delay = min(REGISTER_RETRY_SECONDS * 2**u.failures, REGISTER_RETRY_MAX_SECONDS)
            u.failures += 1
            self._duties.register_retry_at = now + delay
            failed = KeyRegistrationFailed(u.epoch, error, delay)
            return [Notify(failed), *self._timers()]
        self._duties.unpublished = None
        if self._removals_pending() or (u.ratchet and self._fresh_key_owed()):
            # Someone left while it waited: it must not go out; a fresh key (held until the
            # removals are through) takes its place.
            return self._rekey_fresh(u.reason, now)
        return self._post_key(u, now)

    def _post_key(self, u: _Unpublished, now: float) -> list[Action]:
        """Post a registered key with the next roster entry, and install it."""
        epoch, envelope, reason = u.epoch, u.envelope, u.reason
        # Who holds this key: present and let into the group (a joiner still waiting for
        # its addition is not listed, so it does not try to open a key it cannot have).
        members = sorted(u for u in self.present if u in self.members or u == self.user)
        fields, parts = self._chain.plan(epoch, members)
        posts = [self._post("roster", part) for part in parts]  # a large change, before it
        tree_field: dict[str, Any] = {}
        if self._duties.tree is None and self._tree_wanted():
            self._duties.tree = KeyTree(self.config.meeting_id)
        if self._duties.tree is not None:
            posts += [
                self._post("tree", {"epoch": epoch, "part": i, "wraps": b64e(part)})
                for i, part in enumerate(u.tree_parts)
            ]
            self._duties.tree.posted()
            posts += self._path_posts(self._duties.tree, epoch, u.sk)
            if not u.ratchet:
                check = tree_check(u.sk, self.config.meeting_id, epoch)
                tree_field = {"tree": {"parts": len(u.tree_parts), "check": b64e(check)}}
        posts.append(
            self._post(
                "session-key",
                {
                    "epoch": epoch,
                    "reason": reason,
                    "ratchet": u.ratchet,
                    "envelope": b64e(envelope.to_bytes()),
                    **fields,
                    "prev": b64e(fields["prev"]),
                    "head": b64e(fields["head"]),
                    **tree_field,
                },
            )
        )
        for part in parts:
            self._chain.add_part(part)
        self._chain.follow(
            epoch,
            prev=fields["prev"],
            head=fields["head"],
            added=fields["added"],
            removed=fields["removed"],
            parts=fields["parts"],
            reset=fields["reset"],
        )
        self.roster, self.roster_head = members, fields["head"]
        self._board_epoch = epoch
        self.last_envelope = envelope.to_bytes()
        return [*posts, *self._install(epoch, u.sk, now, reason), *self._timers()]

    def _object_id(self, epoch: int) -> bytes:
        return f"{self.config.meeting_id}/session-key/{epoch}".encode()

    # --- large-meeting mode: the manager's key tree (meeting/keytree.py) ---------------

    def _tree_wanted(self) -> bool:
        threshold = self.timing.tree_threshold
        return self.is_manager and threshold is not None and len(self.present) >= threshold

    def _keyed(self) -> set[str]:
        """Who the key being posted is for: present participants we added to the group,
        less the banned and those being taken out (and ourselves)."""
        return (
            (set(self.present) & self.members)
            - self._banned
            - set(self._duties.removing)
            - {self.user}
        )

    def _path_posts(self, tree: KeyTree, epoch: int, sk: bytes) -> list[Post]:
        """Seal a path (and SK_epoch) to each keyed participant's device that has none yet,
        to the PRE key its announce carried (checked by the driver against the user's
        certificate), in ``tree-path`` posts. Opening one needs no key service."""
        sealed: dict[str, str] = {}
        for user in sorted(self._keyed()):
            device = self.present[user]
            if self._duties.pathed.get(user) == device or (user, device) not in self._device_keys:
                continue
            try:
                key = PublicKey.from_bytes(self._device_keys[user, device])
            except (MalformedInputError, ValueError):
                self._device_keys.pop((user, device), None)
                continue
            leaf, keys = tree.add(user, epoch)
            object_id = f"{self.config.meeting_id}/tree-path/{epoch}/{device}".encode()
            data = encode_path(epoch, leaf, sk, keys)
            sealed[device] = b64e(seal(data, object_id, [key], self._key).to_bytes())
            self._duties.pathed[user] = device
        devices = sorted(sealed)
        return [
            self._post(
                "tree-path",
                {"epoch": epoch, "paths": {d: sealed[d] for d in devices[i : i + PATHS_PER_POST]}},
            )
            for i in range(0, len(devices), PATHS_PER_POST)
        ]

    def _rekey_fresh(self, reason: str, now: float) -> list[Action]:
        """A fresh key, unless someone who must not have it is still in the group: then it
        waits (``_rekey_at``) until the removals are through."""
        if self._removals_pending():
            self._duties.rekey_reason, self._duties.rekey_held = reason, True
            self._duties.rekey_at = min(self._duties.rekey_at or now, now)
            return self._timers()
        next_epoch = max(self._board_epoch, -1 if self.epoch is None else self.epoch) + 1
        self._duties.rekey_at, self._duties.rekey_held = None, False
        self._duties.leavers.clear()
        sk, parts = os.urandom(32), list[bytes]()
        if self._duties.tree is not None:
            # Everyone in the tree who is not keyed now leaves it: the keys they held are
            # replaced, and the fresh key comes from the new root.
            gone = self._duties.tree.users() - self._keyed()
            for user in gone:
                self._duties.pathed.pop(user, None)
            parts = self._duties.tree.remove(gone, next_epoch)
            sk = self._duties.tree.session_key(next_epoch) or sk
        return self._publish_key(sk, next_epoch, reason, now, ratchet=False, tree_parts=parts)

    def _removals_pending(self) -> bool:
        """Someone who must not have the next key may still be in the group."""
        return bool(self._duties.removing) or self._duties.reconciling

    def _fresh_key_owed(self) -> bool:
        waiting = self._duties.unpublished
        return bool(
            self._duties.rekey_at is not None
            or self._removals_pending()
            or self._duties.leavers
            or (waiting is not None and not waiting.ratchet)
        )

    def _rekey_ratchet(self, reason: str, now: float) -> list[Action]:
        if self._sk is None or self.epoch is None or self._fresh_key_owed():
            # Someone left (or is being removed) since the last fresh key: a ratchet of the
            # key they hold would be theirs too, so the next key is fresh.
            return self._rekey_fresh(reason, now)
        next_epoch = self.epoch + 1
        return self._publish_key(
            ratchet(self._sk, self.config.meeting_id, next_epoch),
            next_epoch,
            reason,
            now,
            ratchet=True,
        )

    # --- commands ------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Start the meeting as its first participant U0: create the group, add the host as
        admin and every invitee as member, then post SK_0."""
        if self.state != State.IDLE:
            raise MeetingStateError("already started or joined")
        self.state = State.STARTING
        self.manager = self.user
        self.admins = {self.user}
        self.present[self.user] = self.device
        return [self._call(CreateGroup(self._group))]

    def join(self, now: float) -> list[Action]:
        """Announce this participant and wait for the key the manager posts for it."""
        if self.state != State.IDLE:
            raise MeetingStateError("already started or joined")
        self.state = State.JOINING
        self.present[self.user] = self.device
        self._join_attempts = 0
        return [self._post("announce", {"card": self._card} if self._card else {})]

    def leave(self, now: float) -> list[Action]:
        if (
            self.state not in (State.JOINING, State.IN_MEETING, State.STARTING)
            or self._handing_over
        ):
            return []
        heir = self._heir()
        if heir is not None:
            # The last present admin leaves: make a participant an admin and hand the
            # meeting over first, so that somebody still rekeys after we are gone.
            self._handing_over = True
            return [self._call(AddAdmin(self._group, heir, handover=True))]
        return self._depart()

    def _heir(self) -> str | None:
        """Who inherits the meeting when we, its manager, leave and no other admin is
        present: the first present member by user id."""
        if not self.is_manager or self.state != State.IN_MEETING:
            return None
        if any(a in self.present for a in self.admins - {self.user}):
            return None  # that admin takes over (_successor)
        heirs = [u for u in self.present if u != self.user and u in self.members]
        return min(heirs, default=None)

    def _handed_over(self, heir: str, error: str | None, now: float) -> list[Action]:
        self._handing_over = False
        if error is not None:
            return [Notify(HandoverFailed(heir, error)), *self._depart()]
        if not self.is_manager or heir not in self.present:
            # Things moved on while the key service answered (the host took over, or the
            # heir left): take the admin rights back, then leave or pick another heir.
            undo = self._call(RemoveAdmin(self._group, heir))
            return [undo, *(self.leave(now) if self.is_manager else self._depart())]
        self.admins.add(heir)
        post = self._handover_post(heir, leaving=True)
        return [post, *self._depart()]

    def _handover_post(self, heir: str, *, leaving: bool) -> Post:
        """Hand management to ``heir``, passing on the removals it must still make (and,
        when we are leaving, our own, so that the heir's first key goes out without us)."""
        removing = set(self._duties.removing) | ({self.user} if leaving else set())
        self.manager = heir
        self._duties = _ManagerDuties()  # not ours now
        return self._post(
            "manager",
            {"manager": heir, "admins": sorted(self.admins), "removing": sorted(removing)},
        )

    def _depart(self) -> list[Action]:
        self._forget()
        epochs = () if self.epoch is None else (self.epoch,)
        self.state, self._sk, self.epoch = State.LEFT, None, None
        return [self._post("leave", {}), RetireMediaKeys(epochs), Notify(Left()), RotateDeviceKey()]

    def remove(self, user: str, now: float) -> list[Action]:
        """Manager: remove a participant; the rekey follows after the debounce."""
        if not self.is_manager:
            raise MeetingStateError("only the manager removes participants")
        self._banned.add(user)
        self._admitted.discard(user)
        actions = [self._post("remove", {"user": user}), *self._handle_departure(user, now)]
        if user not in self._duties.removing:  # never let in: the key service records the ban too
            actions += self._removal_calls(user, was_admin=False)
        return actions

    def end(self, now: float) -> list[Action]:
        """Manager: end the meeting. The group is deleted and every key dropped."""
        if not self.is_manager:
            raise MeetingStateError("only the manager ends the meeting")
        post = self._post("end", {})
        return [post, self._call(DeleteGroup(self._group)), *self._close()]

    def _removed(self, op: str, user: str, error: str | None, now: float) -> list[Action]:
        if user not in self._duties.removing:
            return []  # no longer to be removed (admitted again meanwhile)
        if error is None or error == "not_found":
            ops = self._duties.removing_ops.get(user, set())
            ops.discard(op)
            if ops:
                return []
            self._duties.removing.pop(user, None)
            self._duties.removing_ops.pop(user, None)
            # The last removal went through: a fresh key that waited for it goes out now (a
            # debounce still running is left alone).
            return self._settled(now)
        failures = self._duties.removing.get(user, 0) + 1
        self._duties.removing[user] = failures
        # Keep trying, backing off; the fresh key waits until the leaver is out.
        retry = now + min(2.0**failures, 30.0)
        self._duties.removal_retry_at = min(self._duties.removal_retry_at or retry, retry)
        # Reported every time (retries back off to 30 s): the fresh key is held meanwhile.
        failed = Notify(RemovalFailed(user, error, failures))
        return [failed, *self._timers()]

    def _forget(self) -> None:
        """The meeting is over for this device: every duty, timer and tree key goes."""
        self._duties = _ManagerDuties()
        self._retry_at = None
        self._path = self._path_offer = None
        self._tree_parts.clear()

    def _close(self) -> list[Action]:
        self._forget()
        self._calls.clear()
        self._pending_post = self._opening = None
        epochs = () if self.epoch is None else (self.epoch,)
        self.state, self._sk, self.epoch = State.ENDED, None, None
        return [RetireMediaKeys(epochs), Notify(Ended()), RotateDeviceKey()]

    def security_code(self) -> str | None:
        if self.group_key is None or self.epoch is None:
            return None
        return security_code(self.group_key.to_bytes(), self.roster_head, self.epoch)

    # --- timers --------------------------------------------------------------------------

    def timer(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self._duties.register_retry_at is not None and now >= self._duties.register_retry_at:
            self._duties.register_retry_at = None
            if self.is_manager and self._duties.unpublished is not None:
                actions.append(self._register_call(self._duties.unpublished))
        if self._duties.removal_retry_at is not None and now >= self._duties.removal_retry_at:
            self._duties.removal_retry_at = None
            if self.is_manager:
                for user in list(self._duties.removing):
                    actions += self._retry_removal(user)
                if self._duties.reconciling:
                    actions.append(self._call(GroupMembers(self._group)))
        if self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            actions += self._open_pending()
        if self._duties.join_at is not None and now >= self._duties.join_at:
            self._duties.join_at = None
            if self.is_manager and not self._duties.adding:
                actions += self._flush_joins(now)
            elif not self.is_manager:
                self._duties.joining.clear()
        if self._duties.rekey_at is not None and now >= self._duties.rekey_at and self.is_manager:
            if self._removals_pending():  # a leaver may still be in the group: hold the key
                self._duties.rekey_at, self._duties.rekey_held = now + 1.0, True
            else:
                self._duties.leavers.clear()
                reason, self._duties.rekey_reason = self._duties.rekey_reason, "leave"
                actions += self._rekey_fresh(reason, now)
        if (
            self._duties.ratchet_at is not None
            and now >= self._duties.ratchet_at
            and self.is_manager
        ):
            self._duties.ratchet_at = None  # re-armed when the next key is installed
            if (
                self._duties.unpublished is None and self._duties.rekey_at is None
            ):  # else one is coming
                actions += self._rekey_ratchet("timer", now)
        return actions + self._timers()

    # --- key-service replies -------------------------------------------------------------

    def key_service_reply(
        self, call_id: int, result: dict[str, Any] | None, error: str | None, now: float
    ) -> list[Action]:
        call = self._calls.pop(call_id, None)
        if call is None or self.state in (State.LEFT, State.ENDED):
            return []
        if error == "not_manager" and isinstance(call, _MANAGER_CALLS) and self.is_manager:
            return self._contested(call)
        match call:
            case CreateGroup():
                return self._created(result, error, now)
            case ClaimManager():
                return self._claimed(error, now)
            case GroupMembers():
                return self._reconciled(result, error, now)
            case RemoveMember() | RemoveAdmin() | BanMember():
                return self._removed(call.op, call.user, error, now) if call.removal else []
            case AddAdmin():
                if call.handover:
                    return self._handed_over(call.user, error, now)
                if error is None:
                    self.admins.add(call.user)
                return []
            case AddMembers():
                return self._added(call, result, error, now)
            case AddMember():
                if error == "banned" and self.is_manager:
                    return self._refused_as_banned(call.user)
                (self.members.discard if error is not None else self.members.add)(call.user)
                return []
            case OpenEnvelope():
                return self._opened(call.message, result, error, now)
            case OpenPath():
                return self._opened_path(call, result, error, now)
            case RegisterValue():
                return self._registered(call, error, now)
            case Preapprove() | LiftBan() | DeleteGroup():
                return []
            case _:
                assert_never(call)

    def _created(
        self, result: dict[str, Any] | None, error: str | None, now: float
    ) -> list[Action]:
        """The group exists: join it, make the host an admin, add the invitees, post
        ``start`` and SK_0."""
        if error is not None or result is None:
            self.state = State.ENDED
            return [Notify(MeetingFailed("create_group", error))]
        self.group_key = result["public_key"]
        # U0 is a member too: a later manager's fresh keys must reach it.
        actions: list[Action] = [self._call(AddMember(self._group, self.user))]
        if self.config.host != self.user:
            actions.append(self._call(AddAdmin(self._group, self.config.host)))
        invitees = sorted(set(self.config.invitees) - {self.user})
        for i in range(0, len(invitees), 1000):  # the key service's limit per request
            actions.append(self._call(Preapprove(self._group, tuple(invitees[i : i + 1000]))))
        if invitees:  # in one batch of additions (the SDK sends 256 per request)
            self._duties.adding = True
            actions.append(self._call(AddMembers(self._group, tuple(invitees), start=True)))
        # The first key is registered right after these additions, naming their members
        # (an invitee without an account is not added: the registration then reports the
        # mismatch, the members are checked and the key registered again).
        self.members |= {self.user, *self.config.invitees}
        start = self._post(
            "start",
            {
                "group_key": b64e(self.group_key.to_bytes()),
                "admins": sorted(self.admins),
                "host": self.config.host,
            },
        )
        self.state = State.IN_MEETING
        return [
            *actions,
            start,
            *self._rekey_fresh("start", now),
            Notify(Joined()),
            *self._timers(),
        ]

    # --- board messages ------------------------------------------------------------------

    def receive(self, message: BoardMessage, sender_key: VerifyingKey, now: float) -> list[Action]:
        """A board message, with the sender device's key as the driver verified it
        (device certificate chained to the pinned key of ``message.user``)."""
        if message.meeting != self.config.meeting_id:
            return []
        try:
            message.verify(sender_key)  # our own device's posts too: the board is not trusted
        except SignatureError:
            return [Notify(BadMessage(message.device))]
        if message.device == self.device and message.seq > self._seq_start:
            # Our own post of this incarnation; an earlier incarnation's are history.
            if message.kind == "announce" and not self._heard_own_announce:
                self._heard_own_announce = True
                return self._resume_management(now)
            return []
        if message.seq <= self._seen.get((message.user, message.device), 0):
            return []  # duplicate or replay
        self._seen[message.user, message.device] = message.seq
        if self.state in (State.LEFT, State.ENDED, State.NOT_ADMITTED):
            return []
        try:
            return self._dispatch(message, sender_key, now)
        except (KeyError, TypeError, ValueError, OverflowError, MalformedInputError):
            return [Notify(BadMessage(message.device))]

    def _dispatch(self, m: BoardMessage, key: VerifyingKey, now: float) -> list[Action]:
        handler = self._board_handlers.get(m.kind)
        return handler(m, key, now) if handler is not None else []

    def _handlers(self) -> dict[str, _BoardHandler]:
        """Each board kind's handler (every one takes the message, the poster's key and
        the time)."""
        return {
            "start": lambda m, key, now: self._on_start(m),
            "announce": self._on_announce_post,
            "session-key": self._on_session_key,
            "roster": lambda m, key, now: self._on_roster(m),
            "roster-request": lambda m, key, now: self._on_roster_request(now),
            "tree": lambda m, key, now: self._on_tree_part(m),
            "tree-path": lambda m, key, now: self._on_tree_path(m, key),
            "leave": self._on_leave,
            "admit": self._on_admit,
            "remove": self._on_remove,
            "manager": lambda m, key, now: self._on_manager(m, now),
            "end": lambda m, key, now: self._close() if m.user == self.manager else [],
        }

    def _on_announce_post(self, m: BoardMessage, key: VerifyingKey, now: float) -> list[Action]:
        if m.user == self.user:
            if m.device != self.device and self._heard_own_announce:
                # this user joined again from another device since: step aside
                return [Notify(Superseded(m.device)), *self._close()]
            return []  # our own history, or another device's from before we came
        self._learn_device_key(m)
        if (
            self.is_manager
            and m.user not in self.members
            and (m.user not in self._admitted or m.user in self._banned)
        ):
            self._knocking[m.user] = m.device  # kept out of the roster until admitted
            return [Notify(Knock(m.user))]
        self.present[m.user] = m.device
        return self._on_announce(m.user, now)

    def _on_leave(self, m: BoardMessage, key: VerifyingKey, now: float) -> list[Action]:
        if m.user == self.user:
            if not self._heard_own_announce:  # an earlier run of ours left:
                self.admins.discard(self.user)  # its admin rights went with it
                if self.manager == self.user:
                    self.manager = None  # and management is not ours to resume
            return []
        if self.present.get(m.user) not in (None, m.device):
            return []  # a device this user no longer sits at
        return self._handle_departure(m.user, now)

    def _on_admit(self, m: BoardMessage, key: VerifyingKey, now: float) -> list[Action]:
        if m.user == self.manager:
            user = str(m.body["user"])
            self._banned.discard(user)
            self._admitted.add(user)
        return []

    def _on_remove(self, m: BoardMessage, key: VerifyingKey, now: float) -> list[Action]:
        user = str(m.body["user"])
        if m.user != self.manager:
            return []
        self._banned.add(user)
        self._admitted.discard(user)
        if user == self.user:
            joining = self.state == State.JOINING and not self._heard_own_announce
            return [] if joining else self._close()
        return self._handle_departure(user, now)

    def _learn_device_key(self, m: BoardMessage) -> None:
        """The PRE key in an announce's card (the driver checked the card's certificate):
        the manager seals this device's path to it in large meetings."""
        card = m.body.get("card")
        if isinstance(card, dict) and isinstance(card.get("public_key"), str):
            if len(self._device_keys) >= 100_000 and (m.user, m.device) not in self._device_keys:
                return
            key = b64d(card["public_key"], "public_key", max_bytes=512)
            self._device_keys[m.user, m.device] = key

    def _on_tree_part(self, m: BoardMessage) -> list[Action]:
        """Wraps of a coming fresh key, from the manager: kept for the newest few epochs."""
        if m.user != self.manager or self._path is None:
            return []
        epoch, part = int(m.body["epoch"]), int(m.body["part"])
        if not 0 <= part < MAX_TREE_PARTS or epoch <= (
            self.epoch if self.epoch is not None else -1
        ):
            return []
        wraps = b64d(m.body["wraps"], "wraps", max_bytes=48 * 1024)
        self._tree_parts.setdefault(epoch, {})[part] = wraps
        for old in sorted(self._tree_parts)[:-4]:
            del self._tree_parts[old]
        return []

    def _on_tree_path(self, m: BoardMessage, key: VerifyingKey) -> list[Action]:
        """A path the manager sealed to this device: used to open the key of its epoch
        when we are joining, adopted when we are in the meeting already."""
        paths = m.body["paths"]
        if m.user != self.manager or not isinstance(paths, dict) or self.device not in paths:
            return []
        epoch = int(m.body["epoch"])
        sealed = b64d(paths[self.device], "path", max_bytes=16384)
        self._path_offer = (epoch, sealed)
        if self.state != State.IN_MEETING or (self._path is not None and self._path.epoch >= epoch):
            return []  # a joiner opens it with the key post that follows
        envelope = Envelope.from_bytes(sealed)
        return [self._call(OpenPath(self._group, envelope, key, adopt=epoch))]

    def _on_start(self, m: BoardMessage) -> list[Action]:
        if self.manager is not None:
            return []
        self.manager = m.user
        self.admins = set(m.body["admins"]) | {m.user}
        self.group_key = PublicKey.from_bytes(b64d(m.body["group_key"], "group_key"))
        self.present[m.user] = m.device
        return []

    def _on_announce(self, user: str, now: float) -> list[Action]:
        if not self.is_manager:
            return []
        actions: list[Action] = []
        if user == self.config.host and user != self.user:
            # A late host: make it an admin, then hand management over.
            actions.append(self._call(AddAdmin(self._group, user)))
            self.admins.add(user)
            actions.append(self._call(AddMember(self._group, user)))
            actions.append(self._handover_post(user, leaving=False))
            return actions
        return self._admit(user, now)

    def _admit(self, user: str, now: float) -> list[Action]:
        """Let ``user`` in: it is added to the group and keyed with whoever else joins
        within the join window (one batch of additions, one ratchet)."""
        # Adding a user replaces its membership, so a removal still pending for it is moot
        # (and retrying it later would throw the returning participant out again).
        self._duties.removing.pop(user, None)
        self._duties.removing_ops.pop(user, None)
        self._duties.add_tries.pop(user, None)  # a fresh start for its addition
        self._duties.add_after.pop(user, None)
        device = self._knocking.pop(user, None)
        if device is not None:
            self.present[user] = device
        self._duties.joining.add(user)
        window = now + self.timing.join_window  # (sooner than a backoff others wait out)
        self._duties.join_at = min(self._duties.join_at or window, window)
        return self._timers()

    def _flush_joins(self, now: float) -> list[Action]:
        """Add the next batch of joiners to the group in one call; the ratchet follows. A
        joiner whose addition failed transiently twice goes alone, once its backoff is over,
        so that one the key service keeps failing on cannot hold the others back."""
        d = self._duties
        d.joining &= set(self.present)
        ready = sorted(u for u in d.joining if d.add_after.get(u, now) <= now)
        fresh = [u for u in ready if d.add_tries.get(u, 0) < 2]
        batch = fresh[:MAX_JOIN_BATCH] if fresh else ready[:1]
        d.joining -= set(batch)
        new = [u for u in batch if u not in self.members]
        if new:
            d.adding = True
            return [self._call(AddMembers(self._group, tuple(new)))]
        actions = self._rekey_ratchet("join", now) if batch else []
        self._next_join(now)
        return actions

    def _next_join(self, now: float) -> None:
        """When the next batch of joins goes: now, or when the first backoff is over."""
        d = self._duties
        d.join_at = min((max(d.add_after.get(u, now), now) for u in d.joining), default=None)

    def _added(
        self, call: AddMembers, result: dict[str, Any] | None, error: str | None, now: float
    ) -> list[Action]:
        """A batch of additions answered: each user in, refused as banned, or not added.
        Joiners then get one ratchet; the invitees added at the start wait for SK_0."""
        self._duties.adding = False
        if not self.is_manager:
            return []
        outcomes = result.get("results") if result is not None else None
        if error is not None or not isinstance(outcomes, dict):
            outcomes = {user: error or "no_result" for user in call.users}
        d = self._duties
        actions: list[Action] = []
        added, delays = False, list[float]()
        for user, problem in sorted(outcomes.items()):
            if problem in TRANSIENT_ERRORS:
                # Not added, for now: a joiner here goes again, backing off (an absent
                # invitee is added when it joins).
                self.members.discard(user)
                if user in self.present:
                    tries = d.add_tries[user] = d.add_tries.get(user, 0) + 1
                    delay = _backoff(tries - 1 if len(call.users) == 1 else 0)
                    d.add_after[user] = now + delay
                    d.joining.add(user)
                    delays.append(delay)
                continue
            d.add_tries.pop(user, None)
            d.add_after.pop(user, None)
            if problem is None:
                self.members.add(user)
                added = True
            elif problem == "banned":
                actions += self._refused_as_banned(user)
            else:
                self.members.discard(user)
                actions.append(Notify(AddFailed(user, problem)))
        if added and not call.start:
            actions += self._rekey_ratchet("join", now)
        if delays:
            actions.append(Notify(Retrying(min(delays))))
        self._next_join(now)
        return actions + self._timers()

    def admit(self, user: str, now: float) -> list[Action]:
        """Manager: let in a participant who was neither invited nor pre-approved."""
        if not self.is_manager:
            raise MeetingStateError("only the manager admits participants")
        self._admitted.add(user)
        actions: list[Action] = []
        if user in self._banned:  # lifted on the board and at the key service, for good
            self._banned.discard(user)
            actions += [self._post("admit", {"user": user}), self._call(LiftBan(self._group, user))]
        return actions + (self._admit(user, now) if user in self._knocking else [])

    def _resume_management(self, now: float) -> list[Action]:
        """A restarted manager, having heard its own new announce, takes management back
        (not one that left: its own earlier leave on the board gave management up)."""
        if self.manager != self.user or self.state != State.JOINING or self.group_key is None:
            return []
        self.state = State.IN_MEETING
        post = self._post("manager", {"manager": self.user, "admins": sorted(self.admins)})
        return [post, Notify(Joined(as_manager=True)), *self._take_over(now, [])]

    def _on_manager(self, m: BoardMessage, now: float) -> list[Action]:
        new = str(m.body["manager"])
        # The manager hands over to an admin, the host, or (leaving as the last admin
        # present) a participant it has just made an admin.
        handover = m.user == self.manager and (
            new in self.admins | {self.config.host} or new in self.present
        )
        takeover = m.user == new and self.manager not in self.present and new == self._successor()
        if not (handover or takeover):
            return [Notify(BadMessage(m.device, "manager"))]
        if handover:
            self.admins |= set(m.body.get("admins", [])) & (self.admins | {self.config.host, new})
        self.manager = new
        if new != self.user:
            self._duties = _ManagerDuties()
        actions: list[Action] = [Notify(ManagerChanged(new))]
        if (
            new == self.user
            and self.state in (State.JOINING, State.IN_MEETING)
            and self._heard_own_announce
        ):
            if self.state == State.JOINING:  # a late host: it makes the next key itself
                self.state = State.IN_MEETING
                self._pending_post = None
                actions.append(Notify(Joined(as_manager=True)))
            removing = m.body.get("removing", []) if handover else []
            passed = [
                u
                for u in (removing if isinstance(removing, list) else [])[:1000]
                if isinstance(u, str) and (u not in self.present or u == m.user)
            ]  # the previous manager's unfinished removals, and itself if it is leaving
            actions += self._take_over(now, passed)
        return actions

    def _take_over(
        self, now: float, removing: list[str], former_admins: frozenset[str] = frozenset()
    ) -> list[Action]:
        """We manage the meeting from now on (a takeover, a handover, a restart). Everyone
        who held the last key but is gone, and every removal passed on to us, leaves the
        group before our first key, which waits for that (see :meth:`_rekey_fresh`)."""
        held = set(self.roster) | set(self._chain.members or ())  # who had the newest key
        self.members |= held & set(self.present)
        actions: list[Action] = []
        for user in sorted(set(self.present) - held - self._admitted - {self.user}):
            # Announced but never let in (we took the others' word for "present"): knocking,
            # and out of the group in case the previous manager had added it already.
            self._knocking[user] = self.present.pop(user)
            self.members.discard(user)
            actions += [Notify(Knock(user)), *self._removal_calls(user, False)]
        gone = ({u for u in held if u not in self.present} | set(removing)) - {self.user}
        for user in sorted(gone):
            self.present.pop(user, None)  # a leaving manager we inherit from: gone already
            self.members.discard(user)
            was_admin = user in self.admins or user in former_admins
            actions += self._removal_calls(user, was_admin=was_admin)
            self.admins.discard(user)
        # What we know may be incomplete (a restart, removals the last manager never passed
        # on): the key service's member list is the truth. Our first key waits for it.
        return [
            self._call(ClaimManager(self._group)),
            *actions,
            *self._reconcile(),
            *self._rekey_fresh("takeover", now),
        ]

    def _reconcile(self) -> list[Action]:
        """Check the group's members at the key service; fresh keys wait for it."""
        self._duties.reconciling, self._duties.reconcile_failures = True, 0
        return [self._call(GroupMembers(self._group))]

    def _reconciled(
        self, result: dict[str, Any] | None, error: str | None, now: float
    ) -> list[Action]:
        if not self.is_manager or not self._duties.reconciling:
            self._duties.reconciling = False
            return []
        members = result.get("members") if result is not None else None
        if error is not None or not isinstance(members, list):
            self._duties.reconcile_failures += 1
            retry = now + min(2.0**self._duties.reconcile_failures, 30.0)
            self._duties.removal_retry_at = min(self._duties.removal_retry_at or retry, retry)
            failed = ReconcileFailed(error, self._duties.reconcile_failures)
            return [Notify(failed), *self._timers()]
        self._duties.reconciling = False
        listed = {u for u in members if isinstance(u, str)}
        # Exactly who we let in stays: present participants and the members we added
        # (absent invitees); anyone else, or anyone banned, goes out before our next key.
        keep = (set(self.present) | self.members) - self._banned
        actions: list[Action] = []
        for user in sorted(listed - keep - {self.user} - set(self._duties.removing)):
            actions += self._removal_calls(user, was_admin=user in self.admins)
            self.admins.discard(user)
        self.members = (keep & listed) - set(self._duties.removing)
        return actions + self._settled(now) + self._timers()

    def _settled(self, now: float) -> list[Action]:
        """The membership may have settled: a key that waited for it goes out now."""
        if self._removals_pending() or not self.is_manager:
            return []
        actions = self._held_key_due(now)
        if self._duties.unpublished is not None and self._duties.unpublished_waits:
            actions.append(self._register_call(self._duties.unpublished))
        return actions

    def _refused_as_banned(self, user: str) -> list[Action]:
        """The key service keeps a ban we had not heard of (its ``remove`` post never
        reached us): the user knocks until the manager admits it again."""
        self._banned.add(user)
        self._admitted.discard(user)
        self.members.discard(user)
        device = self.present.pop(user, None)
        if device is not None:
            self._knocking[user] = device
        return [Notify(Knock(user, banned=True))]

    def _contested(self, call: Call) -> list[Action]:
        """Another admin claimed the group behind our back: claim it again, check who it
        let in (and take them out), then redo what was refused. Never quiet: the
        application hears ``management_contested``, and the claim is in the audit trail."""
        if isinstance(call, RegisterValue):
            self._duties.unpublished_waits = True  # re-registered once the membership is settled
        else:
            self._duties.after_claim.append(call)
        self._duties.reconciling = True  # fresh keys wait until the members are checked
        if self._duties.claiming:
            return []
        self._duties.claiming = True
        contested = Notify(ManagementContested(call.op))
        return [contested, self._call(ClaimManager(self._group))]

    def _claimed(self, error: str | None, now: float) -> list[Action]:
        contested, self._duties.claiming = self._duties.claiming, False
        redo, self._duties.after_claim = self._duties.after_claim, []
        if not self.is_manager:
            return []
        if error is not None:
            return [Notify(ManagementLost(error))]
        if not contested:
            return []  # a takeover's claim: its reconciliation is already on its way
        actions: list[Action] = self._reconcile()
        for p in redo:
            actions.append(self._call(p))
        return actions

    def _held_key_due(self, now: float) -> list[Action]:
        """The fresh key that waited for removals, once none is left: now."""
        if not self._duties.rekey_held or self._removals_pending() or not self.is_manager:
            return []
        reason, self._duties.rekey_reason = self._duties.rekey_reason, "leave"
        return self._rekey_fresh(reason, now)

    def _successor(self) -> str | None:
        """The admin who takes over when the manager is gone: the first present by id."""
        candidates = [a for a in self.admins if a in self.present]
        return min(candidates, default=None)

    def _removal_calls(self, user: str, was_admin: bool) -> list[Action]:
        """Take ``user`` out of the group (and its admins: one who leaves must not add
        itself back); a removed user is banned there too, which takes both. Fresh keys
        wait until the calls have gone through."""
        self._duties.removing[user] = self._duties.removing.get(user, 0)
        ops = self._duties.removing_ops.setdefault(user, set())
        if user in self._banned:
            ops.clear()
            ops.add("ban_member")
        else:
            ops |= {"remove_member", "remove_admin"} if was_admin else {"remove_member"}
        return self._retry_removal(user)

    def _retry_removal(self, user: str) -> list[Action]:
        ops = sorted(self._duties.removing_ops.get(user, ()))  # remove_admin before remove_member
        out: list[Action] = []
        for op in ops:
            call: Call = (
                BanMember(self._group, user)
                if op == "ban_member"
                else RemoveAdmin(self._group, user, removal=True)
                if op == "remove_admin"
                else RemoveMember(self._group, user, removal=True)
            )
            out.append(self._call(call))
        return out

    def _handle_departure(self, user: str, now: float) -> list[Action]:
        was_here = self.present.pop(user, None) is not None or user in self.members
        was_admin = user in self.admins
        self.admins.discard(user)
        self._knocking.pop(user, None)
        actions: list[Action] = [Notify(ParticipantLeft(user))]
        if user == self.manager:
            successor = self._successor()
            if successor == self.user and self.state == State.IN_MEETING:
                self.manager = self.user
                actions.append(
                    self._post("manager", {"manager": self.user, "admins": sorted(self.admins)})
                )
                former = frozenset({user}) if was_admin else frozenset()
                actions += self._take_over(now, [user], former)
            elif successor is None and self.state == State.IN_MEETING:
                # Nobody left here can manage: no more rekeys. The application should end
                # the meeting.
                actions.append(Notify(Unmanaged(user)))
            return actions + self._timers()
        if self.is_manager and was_here:  # (not one we already took out at a takeover)
            self.members.discard(user)
            self._duties.leavers.add(user)
            actions += self._removal_calls(user, was_admin)
            if self._duties.rekey_at is None:
                self._duties.rekey_at = now + self.timing.leave_debounce
        return actions + self._timers()

    def _on_session_key(self, m: BoardMessage, key: VerifyingKey, now: float) -> list[Action]:
        if m.user != self.manager:
            return [Notify(BadMessage(m.device, "not the manager"))]
        epoch = int(m.body["epoch"])
        if not 0 <= epoch < 1 << 32:
            return [Notify(BadMessage(m.device, "epoch"))]
        prev, head = _head(m.body["prev"], "prev"), _head(m.body["head"], "head")
        actions: list[Action] = []
        if epoch > self._board_epoch:
            envelope = b64d(m.body["envelope"], "envelope", max_bytes=16384)
            added = parse_ids(m.body["added"], "added")
            removed = parse_ids(m.body["removed"], "removed")
            parts, reset = int(m.body["parts"]), m.body["reset"] is True
            self.last_envelope, self._board_epoch = envelope, epoch
            self._board_ratchets[epoch] = m.body.get("ratchet") is True
            for old in [e for e in self._board_ratchets if e < epoch - 256]:
                del self._board_ratchets[old]
            followed = self._chain.follow(
                epoch, prev=prev, head=head, added=added, removed=removed, parts=parts, reset=reset
            )
            if not followed:
                actions += self._lost_track(epoch)
        if self.state == State.IDLE:
            return []  # history read before joining: no key material for us there
        if self.epoch is not None and epoch <= self.epoch:
            return actions  # old or repeated
        if self.epoch is not None and epoch == self.epoch + 1 and prev != self.roster_head:
            return [*actions, Notify(RosterFork(epoch))]
        if self.epoch is not None and epoch > self.epoch + 1:
            actions.append(Notify(RosterGap(self.epoch, epoch)))
        known = self._chain.roster_at(epoch)
        tree = m.body.get("tree")
        if (
            isinstance(tree, dict)
            and not m.body.get("ratchet")
            and self._path is not None
            and self.state == State.IN_MEETING
        ):
            sk = self._from_tree(self._path, epoch, tree)
            if sk is not None:
                self.roster, self.roster_head = known[0] if known else [], head
                return actions + self._install(epoch, sk, now, str(m.body["reason"]))
        if (
            m.body.get("ratchet")
            and self._sk is not None
            and self.epoch == epoch - 1
            and self.state == State.IN_MEETING
        ):
            self.roster, self.roster_head = known[0] if known else [], head
            return actions + self._install(
                epoch, ratchet(self._sk, self.config.meeting_id, epoch), now, str(m.body["reason"])
            )
        if (known is not None and self.user not in known[0]) or (
            self.state == State.JOINING and not self._heard_own_announce
        ):
            return actions  # not for us, or from before we announced ourselves
        self._pending_post, self._pending_key = m, key
        self._join_attempts = 0
        return actions + self._open_pending()

    def _from_tree(self, path: TreePath, epoch: int, tree: dict[str, Any]) -> bytes | None:
        """A fresh key from our path and the epoch's ``tree`` parts, checked against the
        post's check value; None (and the path dropped: it is behind now) if it does not
        come out, and the key service opens the key instead."""
        count, check = int(tree["parts"]), b64d(tree["check"], "check", max_bytes=16)
        parts = self._tree_parts.pop(epoch, {})
        trial = path.copy()
        try:
            if not 0 <= count <= MAX_TREE_PARTS or sorted(parts) != list(range(count)):
                raise DecryptionError()
            sk = trial.apply([parts[i] for i in range(count)], epoch)
            if not hmac.compare_digest(tree_check(sk, self.config.meeting_id, epoch), check):
                raise DecryptionError()
        except (DecryptionError, MalformedInputError):
            self._path = None
            return None
        self._path = trial
        return sk

    def _lost_track(self, epoch: int) -> list[Action]:
        """The chain did not add up (a lost or forged post): ask the manager for the whole
        roster of this epoch, once per epoch."""
        if self.state not in (State.JOINING, State.IN_MEETING) or self._asked_for >= epoch:
            return []
        self._asked_for = epoch
        return [
            Notify(RosterUnknown(epoch)),
            self._post("roster-request", {"epoch": epoch}),
        ]

    def _on_roster(self, m: BoardMessage) -> list[Action]:
        """A part of a large roster change, or of a snapshot the manager posted."""
        if m.user != self.manager:
            return []
        self._chain.add_part(m.body)
        epoch = int(m.body["epoch"])
        if "members" not in m.body or not self._chain.snapshot(epoch):
            return []
        known = self._chain.roster_at(epoch)
        if known is not None and epoch == self.epoch:
            self.roster, self.roster_head = known
            return [Notify(RosterRecovered(epoch))]
        return []

    def _on_roster_request(self, now: float) -> list[Action]:
        """Manager: post the current epoch's whole roster, at most once per epoch."""
        if not self.is_manager or self.epoch is None or self._duties.snapshot_for >= self.epoch:
            return []
        self._duties.snapshot_for = self.epoch
        roster = list(self.roster)
        cut = chunks(roster) or [[]]
        return [
            self._post(
                "roster", {"epoch": self.epoch, "part": i, "parts": len(cut), "members": piece}
            )
            for i, piece in enumerate(cut)
        ]

    def _open_pending(self) -> list[Action]:
        """Have the newest key post for us opened (one at a time: a newer post waits, and
        is often reached by ratcheting the one being opened)."""
        m = self._pending_post
        if m is None or self._opening is not None:
            return []
        envelope = Envelope.from_bytes(b64d(m.body["envelope"], "envelope", max_bytes=16384))
        if self._pending_key is None or envelope.signer != self._pending_key.to_bytes():
            self._pending_post = None
            return [Notify(BadMessage(m.device, "envelope signer"))]
        self._opening = m
        offer = self._path_offer
        if offer is not None and self._ratchets_between(offer[0], int(m.body["epoch"])):
            # The manager sealed our path (with this epoch's key, or one that later posts
            # only ratchet) to this device: opened here, without the key service.
            self._path_offer = None
            path = Envelope.from_bytes(offer[1])
            return [self._call(OpenPath(self._group, path, self._pending_key, message=m))]
        return [self._call(OpenEnvelope(self._group, envelope, self._pending_key, m))]

    def _ratchets_between(self, older: int, newer: int) -> bool:
        """Every key post after ``older`` up to ``newer`` is a ratchet (so SK_newer
        follows from SK_older)."""
        return older <= newer and all(
            self._board_ratchets.get(e) for e in range(older + 1, newer + 1)
        )

    def _opened_path(
        self, call: OpenPath, result: dict[str, Any] | None, error: str | None, now: float
    ) -> list[Action]:
        """Our sealed path opened (or not): adopted, or turned into the key it carries; if
        it does not open, the key service opens the key post instead."""
        try:
            if error is not None or result is None:
                raise DecryptionError()
            epoch, sk, path = decode_path(self.config.meeting_id, result["data"])
        except (DecryptionError, MalformedInputError, KeyError, TypeError):
            if call.message is not None:
                self._opening = None
                return self._open_pending()  # the offer is gone: the key service, then
            return []
        m = call.message
        if m is None:  # adopting a path while in the meeting
            if epoch == call.adopt and (self._path is None or self._path.epoch < epoch):
                self._path = path
            return []
        target = int(m.body["epoch"])
        if not self._ratchets_between(epoch, target):
            self._opening = None
            return self._open_pending()
        self._path = path
        for e in range(epoch + 1, target + 1):
            sk = ratchet(sk, self.config.meeting_id, e)
        data = sk + target.to_bytes(8, "big")
        return self._opened(m, {"data": data}, None, now)

    def _opened(
        self, m: BoardMessage, result: dict[str, Any] | None, error: str | None, now: float
    ) -> list[Action]:
        """The key post ``m`` opened (or not)."""
        self._opening = None
        if (error is not None or result is None) and m is not self._pending_post:
            self._join_attempts = 0
            return self._open_pending()  # a newer post is waiting: that one, then
        if error in TRANSIENT_ERRORS:
            # The key service is busy or out of reach: the post is still ours to open.
            delay = _backoff(self._transient_failures)
            self._transient_failures += 1
            self._retry_at = now + delay
            return [Notify(Retrying(delay)), *self._timers()]
        self._transient_failures = 0
        if error is not None or result is None:
            delays = self.timing.join_retry_delays
            if self._join_attempts < len(delays):
                self._retry_at = now + delays[self._join_attempts]
                self._join_attempts += 1
                return self._timers()
            self._pending_post = None
            if self.state == State.JOINING:
                self.state = State.NOT_ADMITTED
                return [Notify(NotAdmitted(error))]
            return [Notify(KeyUnavailable(int(m.body["epoch"]), error))]
        data: bytes = result["data"]
        epoch = int(m.body["epoch"])
        if len(data) != 40 or int.from_bytes(data[32:], "big") != epoch:
            return [Notify(BadMessage(m.device, "envelope contents"))]
        if self.epoch is not None and epoch <= self.epoch:
            return self._open_pending()
        sk, reason = data[:32], str(m.body["reason"])
        # Newer posts that only ratchet this key are ours already: derive them, as members
        # do, instead of having each opened in turn (a burst of joins posts many).
        while (self._board_ratchets.get(epoch + 1) or False) and epoch + 1 <= self._board_epoch:
            epoch += 1
            sk, reason = ratchet(sk, self.config.meeting_id, epoch), "join"
        waiting = self._pending_post
        if waiting is not None and int(waiting.body["epoch"]) <= epoch:
            self._pending_post = None
        known = self._chain.roster_at(epoch)
        self.roster = known[0] if known else []
        self.roster_head = self._chain.head_at(epoch) or _head(m.body["head"], "head")
        actions: list[Action] = []
        if self.state == State.JOINING:
            self.state = State.IN_MEETING
            actions.append(Notify(Joined(epoch=epoch)))
        return [*actions, *self._install(epoch, sk, now, reason), *self._open_pending()]
