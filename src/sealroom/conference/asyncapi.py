"""An AsyncAPI 3.0 description of the meeting channel, served at ``/asyncapi.json``.

The channel's messages are drawn from typed models, as the key service's OpenAPI is: the
envelope every board message travels in (:class:`BoardMessageModel`), one body model per
kind (``BODIES``, which a test holds to :data:`sealroom.meeting.messages.KINDS` and to what
real meetings post), what a client sends (posts, the first-message token, SFrame frames)
and what it receives (board messages, errors with their codes, frames), and the close
codes.
"""

# No ``from __future__ import annotations``: the models' annotations must stay evaluated.
from typing import Any, Final, Literal, NotRequired, TypedDict

from sealroom import __version__
from sealroom.conference.handshake import BEARER_PROTOCOL_PREFIX, SUBPROTOCOL
from sealroom.keyservice.models import B64, schema

__all__ = [
    "BODIES",
    "CLOSE_CODES",
    "ERROR_CODES",
    "AdmitBody",
    "AnnounceBody",
    "AuthMessage",
    "BoardEnvelope",
    "BoardMessageModel",
    "DeviceCard",
    "EmptyBody",
    "ErrorMessage",
    "ManagerBody",
    "PostMessage",
    "RemoveBody",
    "RosterBody",
    "RosterRequestBody",
    "SessionKeyBody",
    "StartBody",
    "TreeBody",
    "TreeField",
    "TreePathBody",
    "document",
]


class DeviceCard(TypedDict):
    """The posting device's keys as the key service lists them: receivers check the
    certificate against the user's pinned key, without a request about the joiner."""

    signing_key: B64
    public_key: B64
    certificate: B64


class StartBody(TypedDict):
    """The meeting's first post, by the participant who starts it."""

    group_key: B64
    admins: list[str]
    host: str


class AnnounceBody(TypedDict):
    """A participant arrives (the manager admits it, or it knocks)."""

    card: NotRequired[DeviceCard]


class TreeField(TypedDict):
    """Large-meeting mode, on a fresh key: how many ``tree`` posts carry its wraps, and 16
    bytes to check the key derived from them (docs/meetings.md, the key tree)."""

    parts: int
    check: B64


class TreeBody(TypedDict):
    """One part of a fresh key's key-tree wraps (parent, child, nonce, sealed key: 68 bytes
    each, after a version byte and the epoch), posted before the session key."""

    epoch: int
    part: int
    wraps: B64


class TreePathBody(TypedDict):
    """Key-tree paths (leaf, its keys and SK_epoch) sealed by the manager to joining
    devices' PRE keys, by device id."""

    epoch: int
    paths: dict[str, B64]


class SessionKeyBody(TypedDict):
    """SK_epoch sealed once to the meeting group, with the roster chain's step: members
    fold ``added`` and ``removed`` (or the ``parts`` roster posts just before) into the
    roster they follow and check that it hashes, from ``prev``, to ``head``. ``reason``
    says why: start, join, leave, remove, timer, takeover. ``ratchet``: derived from the
    previous key (members derive it; only joiners open the envelope). ``reset``: the chain
    starts again from this roster."""

    epoch: int
    reason: str
    ratchet: bool
    envelope: B64
    prev: B64
    head: B64
    reset: bool
    added: list[str]
    removed: list[str]
    parts: int
    tree: NotRequired[TreeField]


class RosterBody(TypedDict):
    """One part of a roster change too large for one post (``added`` or ``removed``), or of
    an epoch's whole roster (``members``) answering a roster-request."""

    epoch: int
    part: int
    parts: int
    added: NotRequired[list[str]]
    removed: NotRequired[list[str]]
    members: NotRequired[list[str]]


class RosterRequestBody(TypedDict):
    """A member whose roster does not reach the posted head asks for the epoch's roster."""

    epoch: int


class RemoveBody(TypedDict):
    """The manager removes (and bans) a user."""

    user: str


class AdmitBody(TypedDict):
    """The manager admits a knocking (or earlier removed) user."""

    user: str


class ManagerBody(TypedDict):
    """The management changes hands (or is taken over); the new manager's admins, and the
    removals it must finish before its first key."""

    manager: str
    admins: list[str]
    removing: NotRequired[list[str]]


class EmptyBody(TypedDict):
    """``leave`` and ``end`` carry nothing."""


#: The body model of every board message kind.
BODIES: Final[dict[str, type]] = {
    "start": StartBody,
    "announce": AnnounceBody,
    "session-key": SessionKeyBody,
    "roster": RosterBody,
    "roster-request": RosterRequestBody,
    "leave": EmptyBody,
    "remove": RemoveBody,
    "admit": AdmitBody,
    "manager": ManagerBody,
    "end": EmptyBody,
    "tree": TreeBody,
    "tree-path": TreePathBody,
}


class BoardMessageModel(TypedDict):
    """A signed board message (docs/meetings.md): Ed25519 by the posting device over the
    canonical JSON of every field but ``sig``; ``seq`` rises with each post of a device."""

    v: Literal[1]
    meeting: str
    kind: Literal[
        "start", "announce", "session-key", "roster", "roster-request", "leave", "remove",
        "admit", "manager", "end", "tree", "tree-path",
    ]  # fmt: skip
    user: str
    device: str
    seq: int
    body: dict[str, Any]
    sig: B64


class PostMessage(TypedDict):
    """Client to service: put a message on the board (``user`` must be the token's)."""

    type: Literal["post"]
    message: BoardMessageModel


class AuthMessage(TypedDict):
    """Client to service, first message only, from a browser that offered only the
    subprotocol: the token (it then stays out of headers)."""

    type: Literal["auth"]
    token: str


class BoardEnvelope(TypedDict):
    """Service to client: a board message (the history first, then live ones)."""

    type: Literal["board"]
    message: BoardMessageModel


class ErrorMessage(TypedDict):
    """Service to client: a refused post or frame (the connection goes on), or why the
    channel is being closed (``board_lost``, ``too_many_meetings``, ``too_many_channels``)."""

    type: Literal["error"]
    code: str
    detail: str
    retry_after: NotRequired[float]


#: Every ``code`` an error message may carry, and what it means.
ERROR_CODES: Final[dict[str, str]] = {
    "malformed_message": "not a post, or a board message that does not parse",
    "wrong_meeting": "the message names another meeting",
    "wrong_user": "the message names another user than the token",
    "message_too_large": "over the size a post of its lane may have",
    "rate_limited": "over post_rate; retry_after says when the next post is allowed",
    "not_allowed": "a control post from someone the board does not name",
    "already_started": "a second start",
    "board_full": "this lane of the meeting's board is full",
    "quota_exceeded": "this user's participant posts in this meeting are used up",
    "service_full": "the in-process bus holds as much as it may",
    "board_lost": "the broker lost this meeting's board (restart without persistence)",
    "frame_too_large": "a media frame over max_frame_bytes",
    "malformed_frame": "a media frame without an SFrame header",
    "too_many_meetings": "the user opened too many meetings lately (then closed, 4429)",
    "too_many_channels": "the user holds too many channels open (then closed, 4429)",
}

#: WebSocket close codes the service uses.
CLOSE_CODES: Final[dict[int, str]] = {
    4400: "bad meeting id or request",
    4401: "no valid token (header, subprotocol or first message)",
    4403: "refused: the page's origin is not allowed (before the socket opens: HTTP 403)",
    4410: "the board is gone (board_lost): join the meeting again",
    4429: "too_many_meetings or too_many_channels (a handshake over connect_rate gets 429)",
    1011: "the broker failed (relay_failed, relay_unavailable) or lost the board (board_lost)",
    1013: "the IdP's keys are unavailable: try again later",
}


def _message(name: str, model: type, components: dict[str, Any], summary: str) -> dict[str, Any]:
    return {"name": name, "summary": summary, "payload": schema(model, components)}


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document."""
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {
        "post": _message("post", PostMessage, schemas, "Post a board message"),
        "auth": _message("auth", AuthMessage, schemas, "The token, as the first message"),
        "board": _message("board", BoardEnvelope, schemas, "A board message"),
        "error": _message("error", ErrorMessage, schemas, "A refusal, or why the channel closes"),
        "frame": {
            "name": "frame",
            "summary": "An SFrame (RFC 9605) media frame, binary, at most 256 KiB; relayed to "
            "the meeting's other participants, never echoed, dropped (not replayed) while "
            "the broker is away",
            "contentType": "application/octet-stream",
            "payload": {"type": "string", "format": "binary"},
        },
    }
    for kind, model in BODIES.items():
        body_schema = schema(model, schemas)
        messages[f"body-{kind}"] = {
            "name": kind,
            "summary": f"The body of a {kind!r} board message (BoardMessage.body)",
            "payload": body_schema,
        }
    schemas["ErrorCode"] = {
        "enum": sorted(ERROR_CODES),
        "description": "; ".join(f"{k}: {v}" for k, v in sorted(ERROR_CODES.items())),
    }
    refs = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Sealroom meeting channel",
            "version": __version__,
            "description": "One WebSocket per meeting. Authenticate with a JWT for the audience "
            f"sealroom-conference: Authorization: Bearer, or the subprotocols {SUBPROTOCOL} and "
            f"{BEARER_PROTOCOL_PREFIX}<JWT>, or {SUBPROTOCOL} alone and an auth message first. "
            "Close codes: " + "; ".join(f"{c} {w}" for c, w in sorted(CLOSE_CODES.items())),
        },
        "channels": {
            "meeting": {
                "address": "/v1/meetings/{id}/channel",
                "parameters": {"id": {"description": "the meeting id, [A-Za-z0-9_-]{1,64}"}},
                "messages": refs,
            }
        },
        "operations": {
            "sendPost": {
                "action": "send",
                "channel": {"$ref": "#/channels/meeting"},
                "messages": [
                    {"$ref": "#/channels/meeting/messages/post"},
                    {"$ref": "#/channels/meeting/messages/auth"},
                    {"$ref": "#/channels/meeting/messages/frame"},
                ],
            },
            "receive": {
                "action": "receive",
                "channel": {"$ref": "#/channels/meeting"},
                "messages": [
                    {"$ref": "#/channels/meeting/messages/board"},
                    {"$ref": "#/channels/meeting/messages/error"},
                    {"$ref": "#/channels/meeting/messages/frame"},
                ],
            },
        },
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }
