"""The media payload: what a participant puts inside each SFrame frame.

Shared by the Python SDK and the web client (``web/src/media/payload.js``), so a browser
and a Python participant play each other's media. One payload carries one encoded unit:

====== ======= ============================================================================
offset bytes   field
====== ======= ============================================================================
0      1       version, 1
1      1       kind: ``0x76`` (``v``) a VP8 video frame; ``0x61`` (``a``) an Opus packet
               (48 kHz)
2      4       index, big-endian: counts this sender's units of this kind from 0
6      1..     the codec's bytes: one VP8 frame, or one Opus packet
====== ======= ============================================================================

The payload travels inside SFrame, which authenticates it, so nobody but a participant can
make one; a receiver still parses it strictly (:class:`~sealroom.errors.MalformedInputError`
for an unknown version or kind, or no codec bytes). The index lets a receiver see gaps and
order, and gives WebCodecs a timestamp. Whether a VP8 frame is a key frame is in the VP8
frame itself (:func:`is_key_frame`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, Literal

from sealroom.errors import MalformedInputError

__all__ = [
    "AUDIO",
    "HEADER_BYTES",
    "MAX_INDEX",
    "VERSION",
    "VIDEO",
    "Packet",
    "is_key_frame",
    "pack",
    "unpack",
]

VERSION: Final[int] = 1
VIDEO: Final[Literal["video"]] = "video"
AUDIO: Final[Literal["audio"]] = "audio"
HEADER_BYTES: Final[int] = 6
MAX_INDEX: Final[int] = (1 << 32) - 1
_KIND_BYTES: Final[dict[str, int]] = {VIDEO: 0x76, AUDIO: 0x61}
_KINDS: Final[dict[int, Literal["video", "audio"]]] = {0x76: VIDEO, 0x61: AUDIO}
_HEADER: Final = struct.Struct(">BBI")


@dataclass(frozen=True)
class Packet:
    """One encoded unit of a sender's video or audio."""

    kind: Literal["video", "audio"]
    #: Counts this sender's units of this kind from 0.
    index: int
    #: One VP8 frame or one Opus packet.
    data: bytes


def pack(p: Packet) -> bytes:
    """The payload bytes of ``p`` (version 1)."""
    if p.kind not in _KIND_BYTES:
        raise ValueError(f"unknown media kind {p.kind!r}")
    if not 0 <= p.index <= MAX_INDEX:
        raise ValueError("the index must fit 32 bits")
    if not p.data:
        raise ValueError("a payload carries at least one codec byte")
    return _HEADER.pack(VERSION, _KIND_BYTES[p.kind], p.index) + p.data


def unpack(payload: bytes) -> Packet:
    """Parse a payload; MalformedInputError unless it is a version-1 payload."""
    if len(payload) <= HEADER_BYTES:
        raise MalformedInputError(
            f"media payload: expected more than {HEADER_BYTES} bytes, got {len(payload)}"
        )
    version, kind, index = _HEADER.unpack_from(payload)
    if version != VERSION:
        raise MalformedInputError(f"media payload: unsupported version {version}")
    if kind not in _KINDS:
        raise MalformedInputError(f"media payload: unknown kind 0x{kind:02x}")
    return Packet(_KINDS[kind], index, bytes(payload[HEADER_BYTES:]))


def is_key_frame(vp8: bytes) -> bool:
    """Whether a VP8 frame is a key frame (RFC 6386 §9.1: bit 0 of the frame tag is 0,
    followed by the start code 9d 01 2a)."""
    return len(vp8) >= 10 and vp8[0] & 1 == 0 and vp8[3:6] == b"\x9d\x01\x2a"
