"""Real media for the demo: VP8 video of a test pattern and Opus audio, through PyAV.

A :class:`Track` encodes frames and remembers a digest of what a fresh decoder makes of
each packet; a receiver decodes the same packet with a fresh decoder and must get the same
digest. Every video frame is a key frame, so each packet decodes on its own and a frame
lost in transit (or refused) does not spoil the next one.
"""

from __future__ import annotations

import fractions
import hashlib
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

__all__ = ["Packet", "Track", "TrackDecoder", "decode", "pack", "unpack"]

WIDTH, HEIGHT, FPS = 160, 120, 15
SAMPLE_RATE, AUDIO_MS = 48000, 20


@dataclass(frozen=True)
class Packet:
    kind: str  # "video" or "audio"
    index: int
    data: bytes


def pack(p: Packet) -> bytes:
    return struct.pack(">cI", p.kind[0].encode(), p.index) + p.data


def unpack(payload: bytes) -> Packet:
    kind, index = struct.unpack(">cI", payload[:5])
    return Packet("video" if kind == b"v" else "audio", index, payload[5:])


def _digest(frame: Any) -> str:
    if isinstance(frame, av.VideoFrame):
        plane = frame.to_ndarray(format="gray")
    else:
        plane = frame.to_ndarray()
    return hashlib.sha256(np.ascontiguousarray(plane).tobytes()).hexdigest()[:16]


@dataclass
class Track:
    """One participant's camera and microphone."""

    seed: int
    sent: dict[tuple[str, int], str] = field(default_factory=dict)
    _count: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._venc = av.CodecContext.create("libvpx", "w")
        self._venc.width, self._venc.height = WIDTH, HEIGHT
        self._venc.pix_fmt = "yuv420p"
        self._venc.time_base = fractions.Fraction(1, FPS)
        self._venc.gop_size = 1
        self._venc.options = {"deadline": "realtime", "lag-in-frames": "0", "g": "1"}
        self._aenc = av.CodecContext.create("libopus", "w")
        self._aenc.sample_rate = SAMPLE_RATE
        self._aenc.layout = "mono"
        self._aenc.format = "s16"
        self._vi = self._ai = 0

    def video(self) -> list[Packet]:
        """Encode the next test-pattern frame: a moving bar in this participant's shade."""
        img = np.full((HEIGHT, WIDTH, 3), 30, np.uint8)
        x = (self._vi * 7 + self.seed * 31) % WIDTH
        img[:, x : x + 12] = (self.seed * 53 % 256, 200, 255 - self.seed * 40 % 256)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = self._vi
        self._vi += 1
        return self._emit("video", self._venc.encode(frame))

    def audio(self) -> list[Packet]:
        """Encode the next 20 ms of a tone."""
        n = SAMPLE_RATE * AUDIO_MS // 1000
        t = (np.arange(n) + self._ai * n) / SAMPLE_RATE
        tone = (8000 * np.sin(2 * math.pi * (220 + 40 * self.seed) * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._ai * n
        self._ai += 1
        return self._emit("audio", self._aenc.encode(frame))

    def _emit(self, kind: str, packets: list[Any]) -> list[Packet]:
        out = []
        for pkt in packets:
            index = self._count.get(kind, 0)
            self._count[kind] = index + 1
            data = bytes(pkt)
            self.sent[(kind, index)] = decode(Packet(kind, index, data))
            out.append(Packet(kind, index, data))
        return out


def decode(packet: Packet) -> str:
    """Decode one packet with a fresh decoder; the digest of the decoded frame."""
    ctx: Any
    if packet.kind == "video":
        ctx = av.CodecContext.create("vp8", "r")
    else:
        ctx = av.CodecContext.create("libopus", "r")
        ctx.sample_rate = SAMPLE_RATE
        ctx.layout = "mono"
    frames = ctx.decode(av.Packet(packet.data))
    return _digest(frames[0]) if frames else ""


class TrackDecoder:
    """A receiver's view of one sender: the digest of each decoded frame."""

    def decode(self, packet: Packet) -> str:
        return decode(packet)
