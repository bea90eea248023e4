"""Real media for the demo: VP8 video of a test pattern and Opus audio, through PyAV.

A :class:`Track` encodes frames and remembers a digest of what a fresh decoder makes of
each packet; a receiver decodes the same packet with a fresh decoder and must get the same
digest. Every video frame is a key frame, so each packet decodes on its own and a frame
lost in transit (or refused) does not spoil the next one. A :class:`StreamDecoder` follows
a sender whose stream has key frames only now and then (a browser's), one decoder per
sender. Packets travel in the SDK's media payload format (:mod:`sealroom.media.payload`).

A video frame's digest is the SHA-256 of its luma (Y) plane, row by row without padding,
as the first 16 hex digits: VP8 decoding is exact, so the web client computes the same
digest of the same frame (``web/src/media/analysis.js``).
"""

from __future__ import annotations

import fractions
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from sealroom.media.payload import Packet, is_key_frame

__all__ = ["StreamDecoder", "Track", "TrackDecoder", "decode", "luma_digest", "tone_of"]

WIDTH, HEIGHT, FPS = 160, 120, 15
SAMPLE_RATE, AUDIO_MS = 48000, 20


def tone_of(seed: int) -> float:
    """The frequency (Hz) of the tone a :class:`Track` with this seed plays."""
    return 220.0 + 40.0 * seed


def luma_digest(frame: Any) -> str:
    """The first 16 hex digits of SHA-256 over a decoded video frame's Y plane."""
    rows = frame.to_ndarray(format="yuv420p")[: frame.height]
    return hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()[:16]


def _digest(frame: Any) -> str:
    if isinstance(frame, av.VideoFrame):
        return luma_digest(frame)
    plane = frame.to_ndarray()
    return hashlib.sha256(np.ascontiguousarray(plane).tobytes()).hexdigest()[:16]


@dataclass
class Track:
    """One participant's camera and microphone."""

    seed: int
    sent: dict[tuple[str, int], str] = field(default_factory=dict)
    _count: dict[str, int] = field(default_factory=dict)
    width: int = WIDTH
    height: int = HEIGHT
    #: Remember the digest of each packet sent (a fresh decode per packet: costs CPU).
    remember: bool = True

    def __post_init__(self) -> None:
        self._venc = av.CodecContext.create("libvpx", "w")
        self._venc.width, self._venc.height = self.width, self.height
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
        img = np.full((self.height, self.width, 3), 30, np.uint8)
        x = (self._vi * 7 + self.seed * 31) % self.width
        img[:, x : x + 12] = (self.seed * 53 % 256, 200, 255 - self.seed * 40 % 256)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = self._vi
        self._vi += 1
        return self._emit("video", self._venc.encode(frame))

    def audio(self) -> list[Packet]:
        """Encode the next 20 ms of a tone."""
        n = SAMPLE_RATE * AUDIO_MS // 1000
        t = (np.arange(n) + self._ai * n) / SAMPLE_RATE
        tone = (8000 * np.sin(2 * math.pi * tone_of(self.seed) * t)).astype(np.int16)
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
            packet = Packet("video" if kind == "video" else "audio", index, data)
            if self.remember:
                self.sent[(kind, index)] = decode(packet)
            out.append(packet)
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


class StreamDecoder:
    """One sender's video as a stream: one VP8 decoder, from a key frame on. After a gap
    (a lost or refused frame) it waits for the next key frame, as a player would, so each
    digest it gives is of the frame the sender itself decoded."""

    def __init__(self) -> None:
        self._ctx: Any = None
        self._next: int | None = None

    def decode(self, packet: Packet) -> str | None:
        """The digest of this video frame, or None while waiting for a key frame."""
        if packet.kind != "video":
            return None
        key = is_key_frame(packet.data)
        if not key and packet.index != self._next:
            self._next = None  # a gap: the frames that follow would be damaged
            return None
        if key:
            self._ctx = av.CodecContext.create("vp8", "r")
            self._ctx.thread_count = 1  # one frame out for each frame in, at once
        self._next = packet.index + 1
        av_packet = av.Packet(packet.data)
        av_packet.pts = packet.index
        frames = [f for f in self._ctx.decode(av_packet) if f.pts == packet.index]
        return luma_digest(frames[0]) if frames else None
