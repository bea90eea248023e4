"""What one fresh key after a leave costs, for N = 10 to 50,000 (issue 10).

Three ways to get a fresh session key to N - 1 remaining members, each timed here with the
real primitives, in the same run:

* **pairwise**: the host wraps the key to every member on its own (X25519 with each
  member's key, HKDF, AES-256-GCM), as E2EE meetings without a group key do. The baseline.
* **seed** (Sealroom today): the host seals the key once to the meeting group (one PRE
  encryption, whatever N); the key service transforms it group -> user -> device for every
  member (two hops each), and every device decrypts a level-2 value.
* **tree**: a logical key hierarchy (LKH) over the members, kept by the host: a leave
  replaces the keys on the leaver's path and wraps each new one under its children's keys
  (at most 2 log2 N AES-256-GCM wraps on the board); every member unwraps at most log2 N
  of them. The key service does nothing. The tree here is a faithful implementation for
  measuring (real HKDF and AES-GCM, and the run checks that every remaining member gets the
  new root and the leaver gets nothing); it is not wired into the meeting protocol.

Host CPU and service CPU are measured: every operation is timed over several rounds at each
N (the pairwise and tree work directly; the seed's transforms per device on a sample of
devices, times N - 1, since each device's transform is independent of the others). Bytes
are what the host posts. "Cores for 5 s" is the service CPU per rekey over 5 seconds.
The service figures count the transforms' cryptography only: HTTP, TLS and the database add
to them (bench/keyservice.py measures the whole service: about 3-8x the cryptography).

    .venv/bin/python bench/rekey.py [--sizes 10,100,1000,10000,50000] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealroom.crypto.envelope import seal
from sealroom.crypto.pre import (
    AugmentationSecret,
    EncryptedValue,
    augment_public_key,
    augment_transform_key,
    decrypt,
    encrypt,
    generate_key_pair,
    generate_plaintext,
    generate_transform_key,
    transform,
)
from sealroom.crypto.signing import SigningKey

MEETING = b"bench-meeting"
_PAIRWISE_LABEL = b"sealroom/bench/v1/rekey/pairwise"
_NODE_LABEL = b"sealroom/bench/v1/rekey/tree-node"
_ROOT_LABEL = b"sealroom/bench/v1/rekey/tree-root"
#: A wrap on the board: parent node (4 bytes), child node (4), nonce (12), key (32), tag (16).
WRAP_BYTES = 4 + 4 + 12 + 32 + 16
#: A member in a pairwise rekey: its index (4), nonce (12), key (32), tag (16).
PAIRWISE_BYTES = 4 + 12 + 32 + 16


def log(*parts: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def cpu_time(fn: Callable[[], object], rounds: int) -> float:
    """Median seconds of this thread's CPU time for ``fn`` (other processes do not count)."""
    fn()
    times = []
    for _ in range(rounds):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return statistics.median(times)


def _kdf(key: bytes, label: bytes, *parts: bytes) -> bytes:
    info = label + b"".join(len(p).to_bytes(2, "big") + p for p in parts)
    return HKDF(hashes.SHA256(), 32, None, info).derive(key)


# --- pairwise wrapping -----------------------------------------------------------------------


def pairwise_rekey(members: list[X25519PublicKey], sk: bytes) -> list[bytes]:
    """The host wraps ``sk`` to each member: one ephemeral key, then ECDH, HKDF and
    AES-GCM per member."""
    eph = X25519PrivateKey.generate()
    out = []
    for i, pub in enumerate(members):
        wrap_key = _kdf(eph.exchange(pub), _PAIRWISE_LABEL, MEETING, i.to_bytes(4, "big"))
        nonce = os.urandom(12)
        out.append(nonce + AESGCM(wrap_key).encrypt(nonce, sk, MEETING))
    return out


# --- the key tree ----------------------------------------------------------------------------


class KeyTree:
    """A logical key hierarchy over ``n`` members (heap order: node 1 is the root, node i
    has children 2i and 2i + 1, the leaves are nodes 2^depth ... 2^(depth+1) - 1)."""

    def __init__(self, n: int) -> None:
        self.depth = max(1, math.ceil(math.log2(n)))
        self.first_leaf = 1 << self.depth
        self.keys: dict[int, bytes] = {}
        for leaf in range(self.first_leaf, self.first_leaf + n):
            node = leaf
            while node >= 1 and node not in self.keys:
                self.keys[node] = os.urandom(32)
                node //= 2

    def leaf(self, member: int) -> int:
        return self.first_leaf + member

    def path(self, member: int) -> dict[int, bytes]:
        """The keys a member holds: its leaf's and every ancestor's."""
        node, out = self.leaf(member), {}
        while node >= 1:
            out[node] = self.keys[node]
            node //= 2
        return out

    def remove(self, member: int, epoch: int) -> list[tuple[int, int, bytes]]:
        """Take ``member`` out: every key on its path is replaced, and each new key is
        wrapped under the key of each child that still has members below it."""
        node = self.leaf(member)
        del self.keys[node]
        wraps: list[tuple[int, int, bytes]] = []
        while node > 1:
            parent = node // 2
            self.keys[parent] = os.urandom(32)
            for child in (2 * parent, 2 * parent + 1):
                key = self.keys.get(child)
                if key is not None:
                    wraps.append(
                        (parent, child, _wrap(key, parent, child, epoch, self.keys[parent]))
                    )
            node = parent
        return wraps

    def root_key(self, epoch: int) -> bytes:
        return _kdf(self.keys[1], _ROOT_LABEL, MEETING, epoch.to_bytes(8, "big"))


def _aad(parent: int, child: int, epoch: int) -> bytes:
    return MEETING + parent.to_bytes(4, "big") + child.to_bytes(4, "big") + epoch.to_bytes(8, "big")


def _wrap(under: bytes, parent: int, child: int, epoch: int, key: bytes) -> bytes:
    wrap_key = _kdf(under, _NODE_LABEL, MEETING, child.to_bytes(4, "big"))
    nonce = os.urandom(12)
    return nonce + AESGCM(wrap_key).encrypt(nonce, key, _aad(parent, child, epoch))


def member_update(
    held: dict[int, bytes], wraps: list[tuple[int, int, bytes]], epoch: int
) -> bytes | None:
    """A member's side: unwrap, bottom up, each new key on the path under a key it holds;
    the new root key, or None if it holds none of the keys the wraps are under."""
    keys = dict(held)
    opened = False
    for parent, child, blob in wraps:  # in the order posted: bottom up
        under = keys.get(child)
        if under is None:
            continue
        wrap_key = _kdf(under, _NODE_LABEL, MEETING, child.to_bytes(4, "big"))
        try:
            keys[parent] = AESGCM(wrap_key).decrypt(
                blob[:12], blob[12:], _aad(parent, child, epoch)
            )
        except InvalidTag:
            return None
        opened = True
    if not opened or 1 not in keys:
        return None
    return _kdf(keys[1], _ROOT_LABEL, MEETING, epoch.to_bytes(8, "big"))


# --- the seed's path -------------------------------------------------------------------------


class SeedPath:
    """The meeting group's key pair, one user and one device, as the key service holds them."""

    def __init__(self) -> None:
        self.admin, self.service = SigningKey.generate(), SigningKey.generate()
        secret = AugmentationSecret.generate()
        group_priv, self.group_pub = generate_key_pair()
        user_priv, user_raw = generate_key_pair()
        user_pub = augment_public_key(user_raw, secret.public_part())
        self.device_priv, device_pub = generate_key_pair()
        self.g2u = generate_transform_key(group_priv, user_pub, self.admin)
        self.u2d = augment_transform_key(
            generate_transform_key(user_priv, device_pub, self.admin), secret, self.service
        )
        self.lvl0 = encrypt(generate_plaintext(), self.group_pub, self.admin).to_bytes()
        self.lvl2 = transform(
            EncryptedValue.from_bytes(self.lvl0), [self.g2u, self.u2d], self.service
        ).to_bytes()

    def host_seal(self) -> int:
        """The host's rekey: SK sealed once to the group; the bytes it posts."""
        sk = os.urandom(32) + (7).to_bytes(8, "big")
        return len(seal(sk, MEETING + b"/session-key/7", [self.group_pub], self.admin).to_bytes())

    def service_per_device(self) -> None:
        transform(EncryptedValue.from_bytes(self.lvl0), [self.g2u, self.u2d], self.service)

    def device_decrypt(self) -> None:
        decrypt(
            EncryptedValue.from_bytes(self.lvl2),
            self.device_priv,
            origin_signer=self.admin.verifying_key,
            transformer=self.service.verifying_key,
        )


# --- the run ---------------------------------------------------------------------------------


def measure_size(n: int, seed: SeedPath, seed_costs: dict[str, float]) -> dict[str, Any]:
    rounds = 5 if n <= 1000 else (3 if n <= 10_000 else 1)
    members = [X25519PrivateKey.generate().public_key() for _ in range(n - 1)]
    sk = os.urandom(32)
    pairwise_s = cpu_time(lambda: pairwise_rekey(members, sk), rounds)

    tree_s, wraps_counted = [], 0
    member_s = []
    for r in range(max(rounds, 3)):
        tree = KeyTree(n)
        leaver = (r * 7919) % n
        stayer = (leaver + 1 + r) % n
        held_stayer, held_leaver = tree.path(stayer), tree.path(leaver)
        start = time.thread_time()
        wraps = tree.remove(leaver, epoch=5)
        root = tree.root_key(5)
        tree_s.append(time.thread_time() - start)
        wraps_counted = len(wraps)
        start = time.thread_time()
        got = member_update(held_stayer, wraps, 5)
        member_s.append(time.thread_time() - start)
        if got != root:
            raise AssertionError(f"N={n}: a remaining member did not get the new root")
        if member_update(held_leaver, wraps, 5) is not None:
            raise AssertionError(f"N={n}: the leaver opened a wrap")
    tree_host = statistics.median(tree_s)
    return {
        "n": n,
        "pairwise_host_ms": pairwise_s * 1e3,
        "pairwise_bytes": 32 + (n - 1) * PAIRWISE_BYTES,
        "seed_host_ms": seed_costs["host"] * 1e3,
        "seed_bytes": seed_costs["bytes"],
        "seed_service_s": seed_costs["service"] * (n - 1),
        "seed_device_ms": seed_costs["device"] * 1e3,
        "tree_host_ms": tree_host * 1e3,
        "tree_wraps": wraps_counted,
        "tree_bytes": wraps_counted * WRAP_BYTES,
        "tree_service_s": 0.0,
        "tree_member_ms": statistics.median(member_s) * 1e3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,10000,50000")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    log("the seed's path: sealing, two-hop transforms and level-2 decrypts")
    seed = SeedPath()
    seed_costs = {
        "host": cpu_time(seed.host_seal, 30),
        "bytes": float(seed.host_seal()),
        "service": cpu_time(seed.service_per_device, 30),
        "device": cpu_time(seed.device_decrypt, 30),
    }
    rows = []
    for n in sizes:
        log(f"N={n}: pairwise wrapping and the tree")
        rows.append(measure_size(n, seed, seed_costs))
    print(
        "\nfresh key after a leave, per rekey (CPU time of this process; ratios to pairwise in "
        "the same run)"
    )
    print(
        f"{'N':>7} | {'pairwise ms':>11} {'KB':>7} | {'seed ms':>7} {'x pw':>7} {'B':>5} "
        f"{'service s':>9} {'cores/5s':>8} | {'tree ms':>7} {'x pw':>7} {'wraps':>5} "
        f"{'B':>5} {'member ms':>9}"
    )
    for r in rows:
        pw = r["pairwise_host_ms"]
        print(
            f"{r['n']:>7} | {pw:>11.2f} {r['pairwise_bytes'] / 1024:>7.1f} | "
            f"{r['seed_host_ms']:>7.2f} {r['seed_host_ms'] / pw:>7.3f} {r['seed_bytes']:>5.0f} "
            f"{r['seed_service_s']:>9.2f} {r['seed_service_s'] / 5:>8.2f} | "
            f"{r['tree_host_ms']:>7.3f} {r['tree_host_ms'] / pw:>7.4f} {r['tree_wraps']:>5} "
            f"{r['tree_bytes']:>5} {r['tree_member_ms']:>9.3f}"
        )
    print(
        f"\nper device at the key service (seed): {seed_costs['service'] * 1e3:.2f} ms of "
        f"transform cryptography; per device decrypting level 2: {seed_costs['device'] * 1e3:.2f}"
        " ms. The tree's service CPU is zero: a leave costs the key service nothing."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rekey.json").write_text(json.dumps(rows, indent=2))
    picture = plot(rows, args.out / "rekey.png")
    log(f"picture: {picture}")
    return 0


def plot(rows: list[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.loglog(n, [r["pairwise_host_ms"] for r in rows], "o-", label="pairwise X25519 (host)")
    ax1.loglog(n, [r["seed_host_ms"] for r in rows], "s-", label="seed: one PRE seal (host)")
    ax1.loglog(n, [r["tree_host_ms"] for r in rows], "^-", label="tree: LKH path (host)")
    ax1.loglog(
        n, [r["seed_service_s"] * 1e3 for r in rows], "x--", label="seed: transforms (service)"
    )
    ax1.set_xlabel("participants N")
    ax1.set_ylabel("CPU ms per rekey after a leave")
    ax1.legend(fontsize=8)
    ax1.grid(True, which="both", alpha=0.3)
    ax2.loglog(n, [r["pairwise_bytes"] for r in rows], "o-", label="pairwise")
    ax2.loglog(n, [r["seed_bytes"] for r in rows], "s-", label="seed")
    ax2.loglog(n, [max(r["tree_bytes"], 1) for r in rows], "^-", label="tree")
    ax2.set_xlabel("participants N")
    ax2.set_ylabel("bytes the host posts per rekey")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
