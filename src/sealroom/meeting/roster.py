"""The roster chain: who holds each epoch's key, in posts whose size does not grow with N.

Each session-key post names its epoch, the previous head and the new head
``H(label ‖ prev ‖ epoch ‖ each member)`` over the sorted roster, but only the *change*
since the previous post (``added``, ``removed``). A member folds the changes into the roster
it has followed from the meeting's first post, and checks the head. A change too large for
one post travels in ``roster`` posts just before it (``parts``); a member that lost track
(a lost post, a fork) asks with ``roster-request`` and the manager posts the whole roster
of the current epoch as ``roster`` snapshot parts, which the member checks against that
epoch's head. Sender indices for SFrame are positions in the sorted roster.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "CHUNK_BYTES",
    "INLINE_BYTES",
    "KEPT_EPOCHS",
    "LABEL",
    "MAX_PARTS",
    "RosterChain",
    "apply_delta",
    "chunks",
    "delta",
    "parse_ids",
    "roster_head",
]

LABEL: Final[bytes] = b"sealroom/v1/meeting/roster"
#: A change up to this many bytes of user ids rides in the session-key post itself...
INLINE_BYTES: Final[int] = 16_000
#: ...a larger one, or a snapshot, in ``roster`` posts of at most this many bytes of ids.
CHUNK_BYTES: Final[int] = 48_000
#: At most this many parts per epoch (50,000 members of 128-character ids fit).
MAX_PARTS: Final[int] = 256
#: Rosters kept for recent epochs (a key installed late still finds its roster).
KEPT_EPOCHS: Final[int] = 8
_ID: Final = re.compile(r"[A-Za-z0-9._:@-]{1,128}")


def roster_head(prev: bytes, epoch: int, members: Sequence[str]) -> bytes:
    """The chain's next head over the sorted roster (as every device computes it)."""
    d = hashlib.sha256(LABEL + prev + epoch.to_bytes(8, "big"))
    for m in members:
        d.update(len(m).to_bytes(2, "big") + m.encode())
    return d.digest()


def delta(old: Iterable[str], new: Iterable[str]) -> tuple[list[str], list[str]]:
    """(added, removed) from ``old`` to ``new``, each sorted."""
    before, after = set(old), set(new)
    return sorted(after - before), sorted(before - after)


def apply_delta(old: Iterable[str], added: Iterable[str], removed: Iterable[str]) -> list[str]:
    return sorted((set(old) - set(removed)) | set(added))


def chunks(ids: Sequence[str], budget: int = CHUNK_BYTES) -> list[list[str]]:
    """``ids`` cut into runs whose JSON stays under ``budget`` bytes."""
    out: list[list[str]] = []
    run: list[str] = []
    size = 0
    for user in ids:
        cost = len(user) + 3
        if run and size + cost > budget:
            out.append(run)
            run, size = [], 0
        run.append(user)
        size += cost
    if run:
        out.append(run)
    return out


def _ids_bytes(ids: Sequence[str]) -> int:
    return len(json.dumps(list(ids)))


def parse_ids(value: Any, what: str) -> list[str]:
    """A list of user ids from a post, checked; ValueError otherwise."""
    if not isinstance(value, list) or len(value) > 65_535:
        raise ValueError(f"{what}: expected a list of user ids")
    if not all(isinstance(u, str) and _ID.fullmatch(u) for u in value):
        raise ValueError(f"{what}: bad user id")
    return value


@dataclass
class RosterChain:
    """The board's roster chain as this device has followed it. ``members`` is None when
    the device lost track (a missed or forged post): it then asks for a snapshot."""

    epoch: int = -1
    head: bytes = bytes(32)
    members: list[str] | None = field(default_factory=list)
    _rosters: dict[int, tuple[list[str], bytes]] = field(default_factory=dict)
    _heads: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # epoch -> prev, head
    _parts: dict[tuple[int, bool], dict[int, dict[str, Any]]] = field(default_factory=dict)

    def plan(self, epoch: int, new: Sequence[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What the manager posts for ``epoch`` with roster ``new``: the session-key post's
        roster fields, and the ``roster`` posts (change parts) that go just before it."""
        removed: list[str] = []
        if self.members is None:
            added, reset = sorted(new), True
        else:
            (added, removed), reset = delta(self.members, new), False
        fields: dict[str, Any] = {
            "prev": self.head,
            "head": roster_head(self.head, epoch, sorted(new)),
            "reset": reset,
        }
        if _ids_bytes(added) + _ids_bytes(removed) <= INLINE_BYTES:
            return fields | {"added": added, "removed": removed, "parts": 0}, []
        pieces = [{"added": c} for c in chunks(added)] + [{"removed": c} for c in chunks(removed)]
        parts = [
            {"epoch": epoch, "part": i, "parts": len(pieces), **p} for i, p in enumerate(pieces)
        ]
        return fields | {"added": [], "removed": [], "parts": len(parts)}, parts

    def add_part(self, body: dict[str, Any]) -> None:
        """Keep one ``roster`` post (a change part or a snapshot part) until it is used."""
        epoch, part, parts = int(body["epoch"]), int(body["part"]), int(body["parts"])
        if not (0 <= part < parts <= MAX_PARTS) or epoch < self.epoch - KEPT_EPOCHS:
            raise ValueError("roster part out of range")
        for name in ("added", "removed", "members"):
            if name in body:
                parse_ids(body[name], name)
        held = self._parts.setdefault((epoch, "members" in body), {})
        if len(self._parts) > 2 * KEPT_EPOCHS:  # forget parts of epochs long gone
            for old in sorted(self._parts)[: len(self._parts) - 2 * KEPT_EPOCHS]:
                self._parts.pop(old, None)
        held[part] = body

    def follow(
        self,
        epoch: int,
        *,
        prev: bytes,
        head: bytes,
        added: list[str],
        removed: list[str],
        parts: int,
        reset: bool,
    ) -> bool:
        """A new session-key post: fold its change in and check the head. True if the
        roster of ``epoch`` is known."""
        if parts:
            assembled = self._assemble((epoch, False), parts, ("added", "removed"))
            if assembled is None:
                added, removed = [], list[str]()
                known = False
            else:
                added, removed = assembled["added"], assembled["removed"]
                known = True
        else:
            known = True
        base = [] if reset else self.members
        self._heads[epoch] = (prev, head)
        if known and base is not None and (reset or prev == self.head):
            roster = apply_delta(base, added, removed)
            if roster_head(prev, epoch, roster) == head:
                self._set(epoch, head, roster)
                return True
        self._set(epoch, head, None)
        return False

    def snapshot(self, epoch: int) -> bool:
        """Use a complete snapshot of ``epoch`` if it matches that epoch's head."""
        held = self._parts.get((epoch, True), {})
        if not held:
            return False
        parts = int(next(iter(held.values()))["parts"])
        assembled = self._assemble((epoch, True), parts, ("members",))
        heads = self._heads.get(epoch)
        if assembled is None or heads is None:
            return False
        roster = sorted(set(assembled["members"]))
        if roster_head(heads[0], epoch, roster) != heads[1]:
            self._parts.pop((epoch, True), None)  # a bad part: wait for a new snapshot
            return False
        self._rosters[epoch] = (roster, heads[1])
        if epoch == self.epoch:
            self.members = roster
        return True

    def roster_at(self, epoch: int) -> tuple[list[str], bytes] | None:
        """The roster and head of a recent epoch, if this device knows them."""
        return self._rosters.get(epoch)

    def head_at(self, epoch: int) -> bytes | None:
        heads = self._heads.get(epoch)
        return None if heads is None else heads[1]

    def _set(self, epoch: int, head: bytes, roster: list[str] | None) -> None:
        self.epoch, self.head, self.members = epoch, head, roster
        if roster is not None:
            self._rosters[epoch] = (roster, head)
        for old in [e for e in self._rosters if e < epoch - KEPT_EPOCHS]:
            del self._rosters[old]
        for old in [e for e in self._heads if e < epoch - KEPT_EPOCHS]:
            del self._heads[old]

    def _assemble(
        self, key: tuple[int, bool], parts: int, names: tuple[str, ...]
    ) -> dict[str, list[str]] | None:
        held = self._parts.get(key, {})
        if parts > MAX_PARTS or set(held) != set(range(parts)):
            return None
        if any(int(p["parts"]) != parts for p in held.values()):
            return None
        out: dict[str, list[str]] = {n: [] for n in names}
        for i in range(parts):
            for n in names:
                out[n] += held[i].get(n, [])
        return out
