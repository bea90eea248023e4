"""The key tree on its own: every remaining member derives the fresh key, no leaver does
(whatever it kept), a joiner cannot go back, and the encodings are exact."""

from __future__ import annotations

import random

import pytest

from sealroom.errors import DecryptionError, MalformedInputError
from sealroom.meeting.keytree import (
    DEPTH,
    MAX_WRAPS_PER_PART,
    PATH_BYTES,
    KeyTree,
    TreePath,
    decode_path,
    encode_path,
)

MEETING = "m-tree"


def _join(tree: KeyTree, user: str, epoch: int) -> TreePath:
    leaf, keys = tree.add(user, epoch)
    return TreePath(MEETING, leaf, epoch, keys)


def _derives(path: TreePath, parts: list[bytes], epoch: int) -> bytes | None:
    try:
        return path.copy().apply(parts, epoch)
    except (DecryptionError, MalformedInputError):
        return None


@pytest.mark.parametrize("seed", range(20))
def test_members_derive_each_fresh_key_and_leavers_never_do(seed: int) -> None:
    rnd = random.Random(seed)
    tree = KeyTree(MEETING)
    paths: dict[str, TreePath] = {}
    kept: dict[str, list[TreePath]] = {}  # every path anyone ever held
    gone: set[str] = set()
    epoch = 0
    for step in range(40):
        epoch += 1
        if rnd.random() < 0.5 or len(paths) < 3:
            user = f"u{rnd.randrange(60)}"
            if user not in paths:
                paths[user] = _join(tree, user, epoch)
                gone.discard(user)
                kept.setdefault(user, []).append(paths[user].copy())
            continue
        leavers = set(rnd.sample(sorted(paths), k=min(len(paths) - 1, rnd.randint(1, 3))))
        parts = tree.remove(leavers, epoch)
        tree.posted()
        sk = tree.session_key(epoch)
        assert sk is not None
        for user in leavers:
            del paths[user]
        gone |= leavers
        for user, path in paths.items():
            assert path.apply(parts, epoch) == sk, (step, user)
            kept[user].append(path.copy())
        for user in gone:  # with every key it ever held, moved to this epoch
            for old in kept[user]:
                assert _derives(old, parts, epoch) != sk, (step, user)


def test_an_unposted_replacement_is_replaced_again_with_the_next() -> None:
    tree = KeyTree(MEETING)
    a, b, c = (_join(tree, u, 1) for u in ("a", "b", "c"))
    tree.remove({"c"}, 2)  # never posted (the key was superseded)...
    parts = tree.remove(set(), 2)  # ...so the next fresh key carries those wraps again
    tree.posted()
    sk = tree.session_key(2)
    assert a.apply(parts, 2) == b.apply(parts, 2) == sk
    assert _derives(c, parts, 2) != sk


def test_a_joiner_gets_keys_of_its_epoch_only() -> None:
    tree = KeyTree(MEETING)
    a = _join(tree, "a", 1)
    _join(tree, "x", 1)
    early = tree.remove({"x"}, 3)  # a fresh key at epoch 3, before b joins
    tree.posted()
    assert a.copy().apply(early, 3) == tree.session_key(3)
    b = _join(tree, "b", 5)
    with pytest.raises(DecryptionError):
        b.copy().apply(early, 3)  # it cannot go back to an earlier epoch
    # What it holds is the root of epoch 3 moved forward one way, never that root itself.
    a3 = a.copy()
    a3.apply(early, 3)
    assert b._keys[1] != a3._keys[1]
    a3.advance_to(5)
    assert b._keys[1] == a3._keys[1]


def test_tampered_or_malformed_parts_are_refused() -> None:
    tree = KeyTree(MEETING)
    a = _join(tree, "a", 1)
    for u in ("b", "c", "d"):
        _join(tree, u, 1)
    (part,) = tree.remove({"b"}, 2)
    flipped = bytearray(part)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionError):
        a.copy().apply([bytes(flipped)], 2)
    for bad in (part[:-1], b"\x02" + part[1:], part[:1] + (3).to_bytes(8, "big") + part[9:]):
        with pytest.raises(MalformedInputError):
            a.copy().apply([bad], 2)


def test_many_leavers_split_into_parts_that_fit_a_post() -> None:
    tree = KeyTree(MEETING)
    paths = {f"u{i}": _join(tree, f"u{i}", 1) for i in range(400)}
    leavers = {f"u{i}" for i in range(0, 400, 3)}
    parts = tree.remove(leavers, 2)
    assert len(parts) > 1
    assert all(len(p) <= 9 + MAX_WRAPS_PER_PART * 68 for p in parts)
    sk = tree.session_key(2)
    for user, path in paths.items():
        if user in leavers:
            assert _derives(path, parts, 2) != sk
        else:
            assert path.apply(parts, 2) == sk


def test_a_path_is_encoded_with_exact_lengths() -> None:
    tree = KeyTree(MEETING)
    leaf, keys = tree.add("a", 4)
    data = encode_path(4, leaf, bytes(32), keys)
    assert len(data) == PATH_BYTES
    epoch, sk, path = decode_path(MEETING, data)
    assert (epoch, sk, path.leaf) == (4, bytes(32), leaf)
    for bad in (data[:-1], data + b"\x00", b"\x02" + data[1:]):
        with pytest.raises(MalformedInputError):
            decode_path(MEETING, bad)
    with pytest.raises(MalformedInputError):
        TreePath(MEETING, 1, 0, [bytes(32)] * (DEPTH + 1))  # not a leaf
