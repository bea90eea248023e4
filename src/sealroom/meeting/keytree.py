"""The large-meeting key tree: fresh keys after leaves without the key service (issue 10).

A logical key hierarchy (LKH) that the manager keeps over the meeting's participants: a
binary tree of fixed depth :data:`DEPTH` in heap order (node 1 is the root, node ``i`` has
children ``2i`` and ``2i + 1``, leaves are nodes ``2**DEPTH`` onwards), one leaf per
participant. A participant holds the keys of its leaf and of every ancestor (its *path*),
which the manager seals to its device's PRE key when it joins (:func:`seal_path`, a
``tree-path`` post). Every epoch, every node key moves one way
(``k_e = HKDF(k_(e-1), label ‖ meeting ‖ node ‖ e)``): a joiner gets the keys of its
joining epoch and cannot go back to the wraps of earlier ones.

A fresh key after leaves replaces the key of every node on a leaver's path with a random one
and wraps each new key under the key of each of its children that still has participants
below it (AES-256-GCM under an HKDF of the child's key, bound to the meeting, the epoch and
both nodes): at most ``2 * DEPTH`` wraps per leaver, posted as ``tree`` parts. A remaining
participant unwraps, bottom up, the new keys of its own ancestors and derives the session
key from the new root; a leaver holds none of the keys the wraps are under. The key service
does nothing; members without a path open the same key through it, as in small meetings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealroom.errors import DecryptionError, MalformedInputError

__all__ = [
    "DEPTH",
    "FIRST_LEAF",
    "MAX_WRAPS_PER_PART",
    "PATH_BYTES",
    "VERSION",
    "WRAP_BYTES",
    "KeyTree",
    "TreePath",
    "advance",
    "decode_path",
    "encode_path",
    "tree_session_key",
]

#: Leaves: 2**16 = 65,536 participants, above the 50,000 the guide promises.
DEPTH: Final[int] = 16
FIRST_LEAF: Final[int] = 1 << DEPTH
VERSION: Final[int] = 1
#: A wrap: parent (4 bytes), child (4), nonce (12), the new key (32) and its tag (16).
WRAP_BYTES: Final[int] = 4 + 4 + 12 + 32 + 16
#: Wraps in one ``tree`` post (about 35 KB, 47 KB in base64: under the board's 64 KiB).
MAX_WRAPS_PER_PART: Final[int] = 512
#: A path as sealed to a joiner: version, epoch, leaf, the session key, DEPTH + 1 keys.
PATH_BYTES: Final[int] = 1 + 8 + 4 + 32 + (DEPTH + 1) * 32
_ADVANCE: Final[bytes] = b"sealroom/v1/meeting/tree/advance"
_WRAP: Final[bytes] = b"sealroom/v1/meeting/tree/wrap"
_SESSION: Final[bytes] = b"sealroom/v1/meeting/tree/session-key"


def _kdf(key: bytes, label: bytes, meeting: str, *numbers: tuple[int, int]) -> bytes:
    info = label + meeting.encode() + b"\x00" + b"".join(v.to_bytes(n, "big") for v, n in numbers)
    return HKDF(hashes.SHA256(), 32, None, info).derive(key)


def advance(key: bytes, meeting: str, node: int, epoch: int) -> bytes:
    """A node's key of ``epoch`` from its key of ``epoch - 1`` (one way)."""
    return _kdf(key, _ADVANCE, meeting, (node, 4), (epoch, 8))


def tree_session_key(root: bytes, meeting: str, epoch: int) -> bytes:
    """The session key of a fresh epoch in tree mode, from the root's new key."""
    return _kdf(root, _SESSION, meeting, (epoch, 8))


def _aad(meeting: str, epoch: int, parent: int, child: int) -> bytes:
    return (
        bytes([VERSION])
        + meeting.encode()
        + b"\x00"
        + epoch.to_bytes(8, "big")
        + parent.to_bytes(4, "big")
        + child.to_bytes(4, "big")
    )


def _wrap_key(under: bytes, meeting: str, epoch: int, child: int) -> AESGCM:
    return AESGCM(_kdf(under, _WRAP, meeting, (child, 4), (epoch, 8)))


def _ancestors(leaf: int) -> list[int]:
    """The leaf and every node above it, bottom up."""
    out = []
    while leaf >= 1:
        out.append(leaf)
        leaf //= 2
    return out


@dataclass
class _Node:
    epoch: int
    key: bytes = field(repr=False)


class KeyTree:
    """The manager's tree. Keys are kept at the epoch they were last needed and moved
    forward on demand."""

    def __init__(self, meeting: str) -> None:
        self.meeting = meeting
        self._nodes: dict[int, _Node] = {}
        self._below: dict[int, int] = {}  # node -> participants in its subtree
        self._leaf: dict[str, int] = {}
        self._free: list[int] = []  # leaves given back, reused first
        self._dirty: set[int] = set()  # replaced since the last posted key
        self._next_leaf = FIRST_LEAF

    def __contains__(self, user: object) -> bool:
        return user in self._leaf

    def __len__(self) -> int:
        return len(self._leaf)

    def users(self) -> set[str]:
        return set(self._leaf)

    def _key(self, node: int, epoch: int) -> bytes:
        n = self._nodes[node]
        if n.epoch > epoch:
            raise ValueError("a node key is not kept for earlier epochs")
        while n.epoch < epoch:
            n.epoch += 1
            n.key = advance(n.key, self.meeting, node, n.epoch)
        return n.key

    def add(self, user: str, epoch: int) -> tuple[int, list[bytes]]:
        """Give ``user`` a leaf (its own again if it has one): the leaf and the keys of its
        path at ``epoch``, leaf first."""
        leaf = self._leaf.get(user)
        if leaf is None:
            if self._free:
                leaf = min(self._free)
                self._free.remove(leaf)
            elif self._next_leaf < 2 * FIRST_LEAF:
                leaf, self._next_leaf = self._next_leaf, self._next_leaf + 1
            else:
                raise ValueError("the key tree is full")
            self._leaf[user] = leaf
            for node in _ancestors(leaf):
                if node not in self._nodes or node == leaf:
                    self._nodes[node] = _Node(epoch, os.urandom(32))
                self._below[node] = self._below.get(node, 0) + 1
        return leaf, [self._key(node, epoch) for node in _ancestors(leaf)]

    def remove(self, users: set[str], epoch: int) -> list[bytes]:
        """Take ``users`` out and replace every key they held, with the keys replaced since
        the last :meth:`posted` (a key that was never posted is replaced again): the
        wraps, bottom up, split into parts for ``tree`` posts."""
        for user in users:
            leaf = self._leaf.pop(user, None)
            if leaf is None:
                continue
            self._free.append(leaf)
            for node in _ancestors(leaf):
                self._below[node] -= 1
                if self._below[node] == 0:
                    del self._below[node]
                    self._nodes.pop(node, None)
                    self._dirty.discard(node)
                elif node != leaf:
                    self._dirty.add(node)
        wraps: list[bytes] = []
        for parent in sorted(self._dirty, reverse=True):  # deeper nodes have larger numbers
            new = os.urandom(32)
            for child in (2 * parent, 2 * parent + 1):
                if child not in self._nodes:
                    continue
                under = self._key(child, epoch)
                nonce = os.urandom(12)
                sealed = _wrap_key(under, self.meeting, epoch, child).encrypt(
                    nonce, new, _aad(self.meeting, epoch, parent, child)
                )
                wraps.append(parent.to_bytes(4, "big") + child.to_bytes(4, "big") + nonce + sealed)
            self._nodes[parent] = _Node(epoch, new)
        header = bytes([VERSION]) + epoch.to_bytes(8, "big")
        return [
            header + b"".join(wraps[i : i + MAX_WRAPS_PER_PART])
            for i in range(0, len(wraps), MAX_WRAPS_PER_PART)
        ]

    def posted(self) -> None:
        """The wraps of the last :meth:`remove` went out: their keys are the tree's now."""
        self._dirty.clear()

    def session_key(self, epoch: int) -> bytes | None:
        """The session key of a fresh ``epoch`` (after :meth:`remove`), or None when nobody
        is in the tree."""
        if 1 not in self._nodes:
            return None
        return tree_session_key(self._key(1, epoch), self.meeting, epoch)


class TreePath:
    """A participant's path: its leaf and the keys of it and its ancestors."""

    def __init__(self, meeting: str, leaf: int, epoch: int, keys: list[bytes]) -> None:
        if not FIRST_LEAF <= leaf < 2 * FIRST_LEAF or len(keys) != DEPTH + 1:
            raise MalformedInputError("a tree path names a leaf and DEPTH + 1 keys")
        self.meeting, self.leaf, self.epoch = meeting, leaf, epoch
        self._keys = dict(zip(_ancestors(leaf), keys, strict=True))

    def copy(self) -> TreePath:
        nodes = _ancestors(self.leaf)
        return TreePath(self.meeting, self.leaf, self.epoch, [self._keys[n] for n in nodes])

    def _advance(self, epoch: int) -> dict[int, bytes]:
        keys = dict(self._keys)
        for e in range(self.epoch + 1, epoch + 1):
            keys = {n: advance(k, self.meeting, n, e) for n, k in keys.items()}
        return keys

    def apply(self, parts: list[bytes], epoch: int) -> bytes:
        """The session key of the fresh ``epoch`` from its ``tree`` parts (none when nobody
        left the tree), and the path moved to it; :class:`DecryptionError` (the path
        unchanged) if a wrap under a key on the path does not open. The caller checks the
        key against the post's check value."""
        if epoch < self.epoch:
            raise DecryptionError()
        keys = self._advance(epoch)
        for part in parts:
            for parent, child, nonce, sealed in _parse_part(part, epoch):
                if child not in keys or parent not in keys:
                    continue
                try:
                    keys[parent] = _wrap_key(keys[child], self.meeting, epoch, child).decrypt(
                        nonce, sealed, _aad(self.meeting, epoch, parent, child)
                    )
                except InvalidTag:
                    raise DecryptionError() from None
        self._keys, self.epoch = keys, epoch
        return tree_session_key(keys[1], self.meeting, epoch)

    def advance_to(self, epoch: int) -> None:
        """Move the path to ``epoch`` (a ratchet: nothing replaced)."""
        if epoch > self.epoch:
            self._keys, self.epoch = self._advance(epoch), epoch


def _parse_part(part: bytes, epoch: int) -> list[tuple[int, int, bytes, bytes]]:
    if len(part) < 9 or (len(part) - 9) % WRAP_BYTES or part[0] != VERSION:
        raise MalformedInputError("a tree part is a version, an epoch and whole wraps")
    if int.from_bytes(part[1:9], "big") != epoch:
        raise MalformedInputError("a tree part of another epoch")
    count = (len(part) - 9) // WRAP_BYTES
    if count > MAX_WRAPS_PER_PART:
        raise MalformedInputError("too many wraps in a tree part")
    out = []
    for i in range(count):
        w = part[9 + i * WRAP_BYTES : 9 + (i + 1) * WRAP_BYTES]
        parent, child = int.from_bytes(w[:4], "big"), int.from_bytes(w[4:8], "big")
        if not (1 <= parent < FIRST_LEAF and child in (2 * parent, 2 * parent + 1)):
            raise MalformedInputError("a tree wrap names nodes that are not parent and child")
        out.append((parent, child, w[8:20], w[20:]))
    return out


def encode_path(epoch: int, leaf: int, session_key: bytes, keys: list[bytes]) -> bytes:
    """What the manager seals to a joiner's device: its path and the epoch's session key."""
    if len(session_key) != 32 or len(keys) != DEPTH + 1 or any(len(k) != 32 for k in keys):
        raise ValueError("a path is a 32-byte session key and DEPTH + 1 32-byte keys")
    return (
        bytes([VERSION])
        + epoch.to_bytes(8, "big")
        + leaf.to_bytes(4, "big")
        + session_key
        + b"".join(keys)
    )


def decode_path(meeting: str, data: bytes) -> tuple[int, bytes, TreePath]:
    """(epoch, session key, path) from what :func:`encode_path` made; exact length."""
    if len(data) != PATH_BYTES or data[0] != VERSION:
        raise MalformedInputError("a tree path is exactly PATH_BYTES of version 1")
    epoch = int.from_bytes(data[1:9], "big")
    leaf = int.from_bytes(data[9:13], "big")
    sk = data[13:45]
    keys = [data[45 + 32 * i : 77 + 32 * i] for i in range(DEPTH + 1)]
    return epoch, sk, TreePath(meeting, leaf, epoch, keys)
