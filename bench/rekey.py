"""What one fresh key after a leave costs, for N = 10 to 50,000 (issue 10).

Three ways to get a fresh session key to N - 1 remaining members, each timed here with the
real primitives, in the same run:

* **pairwise**: the host wraps the key to every member on its own (X25519 with each
  member's key, HKDF, AES-256-GCM), as E2EE meetings without a group key do. The baseline.
* **seed** (Sealroom today): the host seals the key once to the meeting group (one PRE
  encryption, whatever N); the key service transforms it group -> user -> device for every
  member (two hops each), and every device decrypts a level-2 value.
* **tree** (large-meeting mode, ``sealroom.meeting.keytree``, the code meetings run): a
  logical key hierarchy over the members, kept by the host: a leave replaces the keys on
  the leaver's path and wraps each new one under its children's keys (AES-256-GCM, at most
  two per level of the depth-16 tree); every member unwraps the new keys of its own
  ancestors. The key service does nothing. The run checks that a remaining member derives
  the new key and the leaver does not.

A join costs the tree one more thing: the host seals the joiner's path to its device's PRE
key (one PRE encryption to a key it has not used before), measured here too, against the
seed's cost per join at the key service (one two-hop transform).

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
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from sealroom.errors import DecryptionError
from sealroom.meeting.keytree import KeyTree, TreePath, encode_path

MEETING = b"bench-meeting"
_PAIRWISE_LABEL = b"sealroom/bench/v1/rekey/pairwise"
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


def _tree_with(n: int) -> tuple[KeyTree, dict[str, TreePath]]:
    tree, paths = KeyTree("bench-meeting"), {}
    for i in range(n):
        leaf, keys = tree.add(f"u{i}", 1)
        paths[f"u{i}"] = TreePath("bench-meeting", leaf, 1, keys)
    return tree, paths


def measure_size(n: int, seed: SeedPath, seed_costs: dict[str, float]) -> dict[str, Any]:
    rounds = 5 if n <= 1000 else (3 if n <= 10_000 else 1)
    members = [X25519PrivateKey.generate().public_key() for _ in range(n - 1)]
    sk = os.urandom(32)
    pairwise_s = cpu_time(lambda: pairwise_rekey(members, sk), rounds)

    tree, paths = _tree_with(n)
    tree_s, member_s, sizes, epoch = [], [], [], 1
    for r in range(max(rounds, 3)):
        epoch += 1
        leaver = f"u{(r * 7919) % n}"
        stayer = next(u for u in paths if u != leaver)
        start = time.thread_time()
        parts = tree.remove({leaver}, epoch)
        tree.posted()
        new_sk = tree.session_key(epoch)
        tree_s.append(time.thread_time() - start)
        sizes.append(sum(len(p) for p in parts))
        kept = paths.pop(leaver)
        start = time.thread_time()
        got = paths[stayer].apply(parts, epoch)
        member_s.append(time.thread_time() - start)
        if got != new_sk:
            raise AssertionError(f"N={n}: a remaining member did not get the new key")
        try:
            if kept.copy().apply(parts, epoch) == new_sk:
                raise AssertionError(f"N={n}: the leaver derived the new key")
        except DecryptionError:
            pass
        leaf, keys = tree.add(leaver, epoch)  # back in, so that N stays N
        paths[leaver] = TreePath("bench-meeting", leaf, epoch, keys)
        for u in paths:  # the others moved on with the fresh key (not timed)
            if u not in (stayer, leaver):
                paths[u].apply(parts, epoch)
    return {
        "n": n,
        "pairwise_host_ms": pairwise_s * 1e3,
        "pairwise_bytes": 32 + (n - 1) * PAIRWISE_BYTES,
        "seed_host_ms": seed_costs["host"] * 1e3,
        "seed_bytes": seed_costs["bytes"],
        "seed_service_s": seed_costs["service"] * (n - 1),
        "seed_device_ms": seed_costs["device"] * 1e3,
        "tree_host_ms": statistics.median(tree_s) * 1e3,
        "tree_bytes": statistics.median(sizes),
        "tree_service_s": 0.0,
        "tree_member_ms": statistics.median(member_s) * 1e3,
    }


def join_costs(seed: SeedPath) -> dict[str, float]:
    """Per joiner: the host sealing a path to a device key it has not used before (tree)
    and its size, against one two-hop transform at the key service (seed)."""
    tree, _ = _tree_with(100)

    def seal_one() -> int:
        _, device = generate_key_pair()
        leaf, keys = tree.add(f"j{os.urandom(4).hex()}", 1)
        data = encode_path(1, leaf, bytes(32), keys)
        return len(seal(data, b"bench-meeting/tree-path/1/dev", [device], seed.admin).to_bytes())

    return {
        "tree_host_ms": cpu_time(seal_one, 30) * 1e3,
        "tree_bytes": float(seal_one()),
        "seed_service_ms": seed_costs_service(seed) * 1e3,
    }


def seed_costs_service(seed: SeedPath) -> float:
    return cpu_time(seed.service_per_device, 30)


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
        f"{'service s':>9} {'cores/5s':>8} | {'tree ms':>7} {'x pw':>7} "
        f"{'B':>6} {'member ms':>9}"
    )
    for r in rows:
        pw = r["pairwise_host_ms"]
        print(
            f"{r['n']:>7} | {pw:>11.2f} {r['pairwise_bytes'] / 1024:>7.1f} | "
            f"{r['seed_host_ms']:>7.2f} {r['seed_host_ms'] / pw:>7.3f} {r['seed_bytes']:>5.0f} "
            f"{r['seed_service_s']:>9.2f} {r['seed_service_s'] / 5:>8.2f} | "
            f"{r['tree_host_ms']:>7.3f} {r['tree_host_ms'] / pw:>7.4f} "
            f"{r['tree_bytes']:>6.0f} {r['tree_member_ms']:>9.3f}"
        )
    print(
        f"\nper device at the key service (seed): {seed_costs['service'] * 1e3:.2f} ms of "
        f"transform cryptography; per device decrypting level 2: {seed_costs['device'] * 1e3:.2f}"
        " ms. The tree's service CPU is zero: a leave costs the key service nothing."
    )
    joins = join_costs(seed)
    print(
        f"per join: tree, the host seals a path: {joins['tree_host_ms']:.2f} ms, "
        f"{joins['tree_bytes']:.0f} bytes on the board (to that device only, with ?device=); "
        f"seed, the key service transforms twice: {joins['seed_service_ms']:.2f} ms"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rekey.json").write_text(json.dumps({"rekey": rows, "join": joins}, indent=2))
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
