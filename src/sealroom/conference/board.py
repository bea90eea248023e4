"""A meeting's board as the relay keeps it: two lanes, who may post control messages, caps.

The relay cannot check signatures (it holds no device keys), but it can tell from the board
itself who may post the meeting's *control* messages, as clients decide whom to follow:

* the **control lane** holds ``start``, ``session-key``, ``roster``, ``manager``,
  ``remove``, ``admit``, ``end``, ``tree`` and ``tree-path``. Its posters are the user
  who posted the meeting's first (and only accepted) ``start``, the ``admins`` and
  ``host`` named in that start,
  and the ``manager`` and ``admins`` named in ``manager`` posts that a control poster
  made. Anyone else's control post is refused (``not_allowed``), and a second ``start``
  too (``already_started``).
* the **participant lane** holds ``announce``, ``leave`` and ``roster-request``, from
  anyone with a token, at most :attr:`BoardLimits.max_posts_per_user` per user and meeting.

Each lane has its own cap and nothing is ever pushed out, so no number of participant posts
can block or displace a control post. Both lanes are one ordered log (clients rely on the
board's order: a leave before a ``manager`` post decides a takeover); a lane is a quota
over that log, not a separate store. Every bus applies these rules: in memory
(:class:`BoardStore`), in one Redis script, or through NATS subjects and per-subject limits.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sealroom.errors import SealroomError
from sealroom.meeting.messages import BoardMessage

__all__ = [
    "CONTROL_KINDS",
    "MAX_GRANTS",
    "PARTICIPANT_KINDS",
    "POSITION",
    "BoardLimits",
    "BoardLostError",
    "BoardPost",
    "BoardRefusedError",
    "BoardStore",
    "ControlPosters",
    "Lane",
    "RefusalCode",
    "user_token",
]

Lane = Literal["control", "participant"]
RefusalCode = Literal[
    "not_allowed", "already_started", "board_full", "quota_exceeded", "message_too_large",
    "service_full", "board_lost",
]  # fmt: skip
CONTROL_KINDS: Final[frozenset[str]] = frozenset(
    {"start", "session-key", "roster", "manager", "remove", "admit", "end", "tree", "tree-path"}
)
PARTICIPANT_KINDS: Final[frozenset[str]] = frozenset({"announce", "leave", "roster-request"})
MAX_GRANTS: Final[int] = 1000  # users one start or manager post may name
_ID: Final = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


@dataclass(frozen=True)
class BoardLimits:
    """What one meeting's board may hold. Defaults fit a 50,000-participant meeting."""

    max_control_posts: int = 100_000
    """Control-lane posts per meeting: a day-long meeting's session keys (one per join,
    one per debounced leave, one every 5 minutes), removals and handovers."""
    max_participant_posts: int = 200_000
    """Participant-lane posts per meeting: four per participant at 50,000 (an announce
    and a leave per device). In-process and Redis; on NATS the per-user cap bounds it."""
    max_posts_per_user: int = 256
    """Participant-lane posts one user may make in one meeting (a device posts a handful)."""
    max_participant_post_bytes: int = 4096
    """An ``announce`` or ``leave`` is a few hundred bytes; control posts may be 64 KiB."""
    max_memory_bytes: int = 256 * 1024 * 1024
    """In-process bus only: message bytes held across every meeting. Beyond it the boards
    of meetings nobody is connected to are evicted, oldest first, then posts are refused."""
    idle_seconds: float = 3600.0
    """In-process bus only: a board nobody has been connected to for this long is dropped.
    (Redis and NATS keep a board ``retention_seconds`` after its last post.)"""


class BoardRefusedError(SealroomError):
    """The board refused a post; ``code`` is what the client is told."""

    def __init__(self, code: RefusalCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: RefusalCode = code
        self.detail = detail


@dataclass(frozen=True)
class BoardPost:
    """A validated board message, classified for the relay."""

    meeting: str
    user: str
    kind: str
    lane: Lane
    text: str
    """The message's wire form (JSON), stored and delivered as is."""
    grants: frozenset[str] = frozenset()
    """Users who become control posters once this post is accepted."""

    @classmethod
    def of(cls, message: BoardMessage) -> BoardPost:
        # A kind this table does not know yet is a control kind: only the meeting's own
        # control posters may use it (tests check that the lanes cover KINDS exactly).
        lane: Lane = "participant" if message.kind in PARTICIPANT_KINDS else "control"
        return cls(
            message.meeting,
            message.user,
            message.kind,
            lane,
            message.to_json(),
            _grants(message),
        )

    @property
    def size(self) -> int:
        return len(self.text)  # the wire form is ASCII JSON

    def check_size(self, limits: BoardLimits) -> None:
        if self.lane == "participant" and self.size > limits.max_participant_post_bytes:
            raise BoardRefusedError(
                "message_too_large",
                f"announce and leave at most {limits.max_participant_post_bytes} bytes",
            )


def _grants(m: BoardMessage) -> frozenset[str]:
    """Who a ``start`` or ``manager`` post names to the meeting's control (the relay's
    coarse view: clients apply the finer rules, e.g. that only the manager hands over)."""
    if m.kind == "start":
        named = [m.user, m.body.get("host"), *_listed(m.body.get("admins"))]
    elif m.kind == "manager":
        named = [m.body.get("manager"), *_listed(m.body.get("admins"))]
    else:
        return frozenset()
    return frozenset(u for u in named if isinstance(u, str) and _ID.fullmatch(u))


def _listed(value: Any) -> list[Any]:
    return value[:MAX_GRANTS] if isinstance(value, list) else []


def user_token(user: str) -> str:
    """A subject-safe token for a user id (NATS subjects cannot hold ``.`` or ``*``)."""
    digest = hashlib.sha256(b"sealroom/v1/conference/user-subject\x00" + user.encode())
    return digest.hexdigest()[:32]


@dataclass
class ControlPosters:
    """Who may post control messages in one meeting, as far as this board shows."""

    started: bool = False
    posters: set[str] = field(default_factory=set)

    def check(self, post: BoardPost) -> None:
        """Raise :class:`BoardRefusedError` unless ``post`` may go on the control lane."""
        if post.lane != "control":
            return
        if post.kind == "start":
            if self.started:
                raise BoardRefusedError("already_started", "this meeting has started")
        elif post.user not in self.posters:
            raise BoardRefusedError(
                "not_allowed", f"only the meeting's host and admins post {post.kind}"
            )

    def record(self, post: BoardPost) -> None:
        """An accepted post: a start, or a manager post, names new control posters."""
        if post.kind == "start":
            self.started = True
        self.posters |= post.grants


@dataclass
class _Board:
    messages: list[str] = field(default_factory=list)
    id: str = field(default_factory=lambda: secrets.token_hex(6))  # positions name it
    size: int = 0
    control: int = 0
    participant: int = 0
    per_user: dict[str, int] = field(default_factory=dict)
    control_posters: ControlPosters = field(default_factory=ControlPosters)


class BoardLostError(SealroomError):
    """A board is gone: the broker restarted without persistence or the board was deleted,
    expired or evicted, or a client resumed after a position on a board no longer there.
    The meeting's history is gone; its participants must join again."""


#: The shape of a board position: ``<board id>.<index>`` in memory and on Redis (whose index
#: is a stream entry id), a stream sequence number on NATS.
POSITION: Final = re.compile(r"[0-9a-f]{12}\.[0-9]{1,20}(-[0-9]{1,20})?|[0-9]{1,20}")


class BoardStore:
    """The in-process bus's boards, bounded: the lanes' caps per meeting, a total byte cap
    (idle boards evicted first, oldest first) and an idle expiry. ``clock`` is monotonic."""

    def __init__(self, limits: BoardLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits, self._clock = limits, clock
        self._boards: dict[str, _Board] = {}
        self._readers: dict[str, int] = {}
        self._idle: OrderedDict[str, float] = OrderedDict()  # boards nobody reads, since
        self.size = 0

    def __len__(self) -> int:
        return len(self._boards)

    def append(self, post: BoardPost) -> str:
        """Keep ``post`` on its meeting's board, or raise :class:`BoardRefusedError`;
        returns its position."""
        self.expire()
        post.check_size(self.limits)
        board = self._boards.get(post.meeting) or _Board()
        board.control_posters.check(post)
        if post.lane == "control":
            if board.control >= self.limits.max_control_posts:
                raise BoardRefusedError("board_full", "this meeting's control lane is full")
        else:
            if board.participant >= self.limits.max_participant_posts:
                raise BoardRefusedError("board_full", "this meeting's participant lane is full")
            if board.per_user.get(post.user, 0) >= self.limits.max_posts_per_user:
                raise BoardRefusedError(
                    "quota_exceeded",
                    f"at most {self.limits.max_posts_per_user} announce/leave per user",
                )
        self._make_room(post.size, keep=post.meeting)
        if post.lane == "control":
            board.control += 1
            board.control_posters.record(post)
        else:
            board.participant += 1
            board.per_user[post.user] = board.per_user.get(post.user, 0) + 1
        board.messages.append(post.text)
        board.size += post.size
        self.size += post.size
        self._boards[post.meeting] = board
        if post.meeting not in self._readers:
            self._set_idle(post.meeting)
        return f"{board.id}.{len(board.messages)}"

    def history(self, meeting: str, after: str | None = None) -> list[tuple[str, str]]:
        """The board's messages with their positions, those after ``after`` only;
        :class:`BoardLostError` if ``after`` names a board that is gone."""
        board = self._boards.get(meeting)
        start = 0
        if after is not None:
            board_id, _, index = after.partition(".")
            if board is None or board.id != board_id or int(index) > len(board.messages):
                raise BoardLostError
            start = int(index)
        if board is None:
            return []
        return [
            (f"{board.id}.{i + 1}", board.messages[i]) for i in range(start, len(board.messages))
        ]

    def opened(self, meeting: str) -> None:
        """A reader is connected to ``meeting``: its board does not expire meanwhile."""
        self.expire()
        self._readers[meeting] = self._readers.get(meeting, 0) + 1
        self._idle.pop(meeting, None)

    def closed(self, meeting: str) -> None:
        left = self._readers.get(meeting, 1) - 1
        if left > 0:
            self._readers[meeting] = left
            return
        self._readers.pop(meeting, None)
        if meeting in self._boards:
            self._set_idle(meeting)

    def expire(self) -> None:
        """Drop the boards nobody has read for ``idle_seconds``."""
        cutoff = self._clock() - self.limits.idle_seconds
        while self._idle:
            meeting, since = next(iter(self._idle.items()))
            if since > cutoff:
                return
            self._drop(meeting)

    def _set_idle(self, meeting: str) -> None:
        self._idle[meeting] = self._clock()
        self._idle.move_to_end(meeting)

    def _make_room(self, size: int, keep: str) -> None:
        if self.size + size <= self.limits.max_memory_bytes:
            return
        for meeting in list(self._idle):  # oldest idle first
            if meeting != keep:
                self._drop(meeting)
                if self.size + size <= self.limits.max_memory_bytes:
                    return
        raise BoardRefusedError("service_full", "the service holds too many board messages")

    def _drop(self, meeting: str) -> None:
        self._idle.pop(meeting, None)
        board = self._boards.pop(meeting, None)
        if board is not None:
            self.size -= board.size
