"""SFrame behaviour beyond the vectors: header policy, keys, counters, replay, epochs."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealroom.media.keys import (
    CounterExhaustedError,
    FrameRejectedError,
    Receiver,
    ReplayWindow,
    Sender,
    kid_for,
    sender_base_key,
    split_kid,
)
from sealroom.media.sframe import SFrameContext, SFrameError, decode_header, encode_header

SK = bytes(range(32))


@given(kid=st.integers(0, 2**64 - 1), ctr=st.integers(0, 2**64 - 1))
def test_header_roundtrip(kid: int, ctr: int) -> None:
    h = encode_header(kid, ctr)
    assert decode_header(h) == (kid, ctr, len(h))


@pytest.mark.parametrize(
    "header",
    [
        bytes([0x80, 0x05]),  # KID 5 written in extended form
        bytes([0x08, 0x07]),  # CTR 7 written in extended form
        bytes([0x90, 0x00, 0x09]),  # KID 9 with a leading zero byte
        bytes([0x09, 0x00, 0x10]),  # CTR 16 with a leading zero byte
    ],
)
def test_non_minimal_headers_are_rejected(header: bytes) -> None:
    with pytest.raises(SFrameError, match="non-minimal"):
        decode_header(header + b"rest")


def test_truncated_header_and_bad_values() -> None:
    with pytest.raises(SFrameError):
        decode_header(bytes([0xF0]))  # promises 8 KID bytes
    with pytest.raises(SFrameError):
        decode_header(b"")
    with pytest.raises(SFrameError):
        encode_header(-1, 0)
    with pytest.raises(SFrameError):
        encode_header(0, 2**64)


@pytest.mark.parametrize("suite", [1, 2, 3, 4, 5])
def test_every_suite_roundtrips_and_rejects_tampering(suite: int) -> None:
    ctx = SFrameContext(suite)
    ctx.add_encrypt_key(9, b"k" * 16)
    ctx.add_decrypt_key(9, b"k" * 16)
    frame = ctx.encrypt(1000, 9, b"meta", b"payload")
    assert ctx.decrypt(b"meta", frame) == b"payload"
    for i in range(len(frame)):
        bad = bytearray(frame)
        bad[i] ^= 0x40
        with pytest.raises(SFrameError):
            ctx.decrypt(b"meta", bytes(bad))


def test_unknown_suite_and_missing_keys() -> None:
    with pytest.raises(ValueError, match="cipher suite"):
        SFrameContext(9)
    ctx = SFrameContext(4)
    with pytest.raises(SFrameError):
        ctx.encrypt(0, 1, b"", b"x")
    ctx.add_encrypt_key(1, b"k")
    with pytest.raises(SFrameError):
        ctx.decrypt(b"", ctx.encrypt(0, 1, b"", b"x"))


def test_no_two_senders_or_epochs_share_a_key_or_kid() -> None:
    keys, kids = set(), set()
    for epoch in range(4):
        for sender in range(50):
            keys.add(sender_base_key(SK, epoch, sender))
            kids.add(kid_for(epoch, sender))
    assert len(keys) == len(kids) == 200
    assert split_kid(kid_for(7, 300)) == (7, 300)


def test_sender_counts_and_stops_at_its_limit() -> None:
    s = Sender(SK, 1, 2, max_frames=3)
    frames = [s.encrypt(b"", b"f") for _ in range(3)]
    assert [decode_header(f)[1] for f in frames] == [0, 1, 2]
    with pytest.raises(CounterExhaustedError):
        s.encrypt(b"", b"f")


def test_receiver_decrypts_and_names_the_sender() -> None:
    r = Receiver()
    r.install(1, SK, now=0.0)
    alice, bob = Sender(SK, 1, 0), Sender(SK, 1, 1)
    assert r.decrypt(b"m", alice.encrypt(b"m", b"hi"), now=0.1) == (1, 0, b"hi")
    assert r.decrypt(b"m", bob.encrypt(b"m", b"yo"), now=0.1) == (1, 1, b"yo")


def test_replayed_and_too_old_counters_are_rejected() -> None:
    r = Receiver(window=4)
    r.install(1, SK, now=0.0)
    s = Sender(SK, 1, 3)
    frames = [s.encrypt(b"", bytes([i])) for i in range(8)]
    r.decrypt(b"", frames[1], now=0)
    with pytest.raises(FrameRejectedError) as exc:
        r.decrypt(b"", frames[1], now=0)  # replay
    assert (exc.value.kid, exc.value.sender, exc.value.epoch) == (kid_for(1, 3), 3, 1)
    r.decrypt(b"", frames[0], now=0)  # late but inside the window: fine once
    r.decrypt(b"", frames[7], now=0)
    r.decrypt(b"", frames[5], now=0)  # reordered inside the window
    with pytest.raises(FrameRejectedError):
        r.decrypt(b"", frames[2], now=0)  # fell out of the window


def test_tampered_frame_reports_sender_not_reason() -> None:
    r = Receiver()
    r.install(2, SK, now=0)
    frame = bytearray(Sender(SK, 2, 5).encrypt(b"", b"x"))
    frame[-1] ^= 1
    with pytest.raises(FrameRejectedError) as exc:
        r.decrypt(b"", bytes(frame), now=0)
    assert exc.value.sender == 5
    assert "authentication" not in str(exc.value)
    # A rejected counter is not burnt: the genuine frame still decrypts.
    frame[-1] ^= 1
    assert r.decrypt(b"", bytes(frame), now=0)[2] == b"x"


def test_previous_epoch_has_a_grace_period() -> None:
    sk2 = os.urandom(32)
    r = Receiver(grace_seconds=2.0)
    r.install(1, SK, now=0.0)
    old = Sender(SK, 1, 0)
    r.install(2, sk2, now=10.0)
    assert r.decrypt(b"", old.encrypt(b"", b"late"), now=11.0)[2] == b"late"
    with pytest.raises(FrameRejectedError):
        r.decrypt(b"", old.encrypt(b"", b"too late"), now=12.5)
    assert r.epochs == [2]
    assert r.decrypt(b"", Sender(sk2, 2, 0).encrypt(b"", b"new"), now=12.5)[2] == b"new"


def test_unknown_epoch_is_rejected() -> None:
    r = Receiver()
    r.install(1, SK, now=0)
    with pytest.raises(FrameRejectedError) as exc:
        r.decrypt(b"", Sender(os.urandom(32), 2, 0).encrypt(b"", b"x"), now=0)
    assert exc.value.epoch == 2


def test_a_receiver_without_the_new_key_reads_nothing_after_a_rekey() -> None:
    removed = Receiver()
    removed.install(1, SK, now=0)
    new_sk = os.urandom(32)
    frame = Sender(new_sk, 2, 0).encrypt(b"", b"after the rekey")
    with pytest.raises(FrameRejectedError):
        removed.decrypt(b"", frame, now=1)
    # Even forcing the new epoch number onto the old key does not help.
    removed.install(2, SK, now=1)
    with pytest.raises(FrameRejectedError):
        removed.decrypt(b"", frame, now=1)


def test_retire_drops_keys_at_once() -> None:
    r = Receiver()
    r.install(1, SK, now=0)
    s = Sender(SK, 1, 0)
    r.decrypt(b"", s.encrypt(b"", b"x"), now=0)
    r.retire(1)
    with pytest.raises(FrameRejectedError):
        r.decrypt(b"", s.encrypt(b"", b"x"), now=0)


@given(st.lists(st.integers(0, 300), max_size=200))
def test_replay_window_accepts_each_counter_at_most_once(ctrs: list[int]) -> None:
    w = ReplayWindow(64)
    accepted = []
    for c in ctrs:
        if w.check(c):
            w.accept(c)
            accepted.append(c)
    assert len(accepted) == len(set(accepted))


@given(st.lists(st.integers(0, 40), max_size=120))
def test_receiver_window_agrees_with_replay_window(order: list[int]) -> None:
    # Receiver.decrypt inlines the window for speed; it must accept exactly what the
    # reference ReplayWindow accepts, for any order of delivery with duplicates.
    sender = Sender(SK, 1, 2)
    frames = [sender.encrypt(b"m", bytes([i])) for i in range(41)]
    r, ref = Receiver(window=8), ReplayWindow(8)
    r.install(1, SK, now=0.0)
    for c in order:
        expected = ref.check(c)
        if expected:
            ref.accept(c)
        try:
            got = r.decrypt(b"m", frames[c], now=0.0)[2] == bytes([c])
        except FrameRejectedError:
            got = False
        assert got == expected


def test_a_huge_counter_jump_costs_nothing_and_is_remembered() -> None:
    import time as _time

    w = ReplayWindow(128)
    start = _time.perf_counter()
    w.accept(2**63)
    assert _time.perf_counter() - start < 0.01
    assert not w.check(2**63)
    assert not w.check(5)  # far below the window now


def test_frames_from_sender_indices_beyond_the_roster_derive_no_key() -> None:
    r = Receiver()
    r.install(1, SK, now=0, senders=3)
    assert r.decrypt(b"", Sender(SK, 1, 2).encrypt(b"", b"ok"), now=0)[2] == b"ok"
    with pytest.raises(FrameRejectedError):
        r.decrypt(b"", Sender(SK, 1, 3).encrypt(b"", b"stranger"), now=0)
    assert len(r._kids) == 1
