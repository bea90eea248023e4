"""Where each PRE operation's time goes, in units of one pymcl pairing (issue 15).

Wraps the crypto core's building blocks (pairings, decoders with their validation,
Ed25519, group multiplications and exponentiations, hashing, encoding) with timers that
count each call's own time (this thread's CPU time, as bench/pre.py), without the wrapped
calls it makes, then runs every operation of
bench/pre_cases.py ``--rounds`` times, each round between two raw pymcl pairings. A cell is
the median over the rounds of the time the operation spent in that block, over the mean of
the two pairings timed around it, with the number of calls per operation after the x.
"other" is what no block accounts for: parsing glue and Python itself. Medians of parts need
not add up exactly to the median total. The wrappers cost about a microsecond per
call, so the instrumented total is a little above the uninstrumented one (bench/pre.py),
which the last line repeats.

    .venv/bin/python bench/pre_profile.py [--rounds N] [--only NAME ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pre_cases import CLOCKS, PairingClock, build_cases
from sealroom.crypto import pairing, pre, signing
from sealroom.crypto.pairing import G1, G2, GT

PAIRING = "pairings (Miller loop + final exp.)"
CURVE_DECODE = "G1/G2 decode + subgroup check"
GT_DECODE = "GT decode + membership test"
VERIFY = "Ed25519 verify"
SIGN = "Ed25519 sign"
GT_POW = "GT exponentiation (incl. random GT)"
G1_MUL = "G1 multiplication"
G2_MUL = "G2 multiplication"
PREPARE = "G2 line precomputation"
HASHING = "hashing (HKDF h(K), auth hash)"
ENCODING = "encoding to bytes"
GT_MUL = "GT products and quotients"
OTHER = "other (parsing glue, Python)"

# (owner, attribute, block). Attributes that an older version of the core lacks are skipped.
PROBES: list[tuple[Any, str, str]] = [
    (pairing, "pair", PAIRING),
    (pre, "pair", PAIRING),
    (G1, "from_bytes", CURVE_DECODE),
    (G2, "from_bytes", CURVE_DECODE),
    (GT, "from_bytes", GT_DECODE),
    (signing.VerifyingKey, "verify", VERIFY),
    (signing.SigningKey, "sign", SIGN),
    (GT, "pow_secret", GT_POW),
    (GT, "pow_public", GT_POW),
    (GT, "random", GT_POW),
    (G1, "mul_secret", G1_MUL),
    (G1, "mul_public", G1_MUL),
    (G2, "mul_secret", G2_MUL),
    (G2, "mul_public", G2_MUL),
    (G2, "prepare", PREPARE),
    (pairing, "hash_to_scalar", HASHING),
    (pre, "hash_to_scalar", HASHING),
    (pre, "_auth_hash", HASHING),
    (G1, "to_bytes", ENCODING),
    (G2, "to_bytes", ENCODING),
    (GT, "to_bytes", ENCODING),
    (pre.PublicKey, "to_bytes", ENCODING),
    (pre.EncryptedValue, "to_bytes", ENCODING),
    (pre.EncryptedValue, "_body", ENCODING),
    (pre.TransformKey, "to_bytes", ENCODING),
    (pre.TransformKey, "_signed_part", ENCODING),
    (GT, "__mul__", GT_MUL),
    (GT, "__truediv__", GT_MUL),
]
BLOCKS = [*dict.fromkeys(block for _, _, block in PROBES), OTHER]


class Meter:
    """Exclusive time and call counts per block, for the wrapped calls."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[float] = []  # time spent in wrapped callees of each open frame

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def wrap(self, fn: Callable[..., Any], block: str) -> Callable[..., Any]:
        stack, seconds, calls, now = self._stack, self.seconds, self.calls, self.now

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = now()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = now() - start
                inner = stack.pop()
                seconds[block] += elapsed - inner
                calls[block] += 1
                if stack:
                    stack[-1] += elapsed

        return timed


@contextlib.contextmanager
def instrumented(meter: Meter) -> Iterator[None]:
    """Install the probes for the duration of the block."""
    undo: list[Callable[[], None]] = []
    try:
        for owner, name, block in PROBES:
            try:
                raw = inspect.getattr_static(owner, name)
            except AttributeError:
                continue
            if isinstance(raw, classmethod):
                new: Any = classmethod(meter.wrap(raw.__func__, block))
            elif isinstance(raw, staticmethod):
                new = staticmethod(meter.wrap(raw.__func__, block))
            else:
                new = meter.wrap(raw, block)
            own = name in vars(owner)
            setattr(owner, name, new)
            undo.append(
                functools.partial(setattr, owner, name, raw)
                if own
                else functools.partial(delattr, owner, name)
            )
        yield
    finally:
        for step in reversed(undo):
            step()


def profile(
    fn: Callable[[], object], rounds: int, clock: PairingClock, meter: Meter
) -> dict[str, Any]:
    """Mean pairings and calls per block for one operation, and the totals."""
    fn()
    now = clock.now
    plain = []
    for _ in range(rounds):
        before = clock.time()
        start = now()
        fn()
        op = now() - start
        plain.append(op / ((before + clock.time()) / 2))
    per_round: dict[str, list[float]] = defaultdict(list)
    calls: dict[str, int] = defaultdict(int)
    totals, pairings = [], []
    with instrumented(meter):
        fn()
        for _ in range(rounds):
            meter.reset()
            before = clock.time()
            start = now()
            fn()
            total = now() - start
            unit = (before + clock.time()) / 2
            totals.append(total / unit)
            pairings.append(unit)
            for block in BLOCKS[:-1]:
                per_round[block].append(meter.seconds.get(block, 0.0) / unit)
            per_round[OTHER].append((total - sum(meter.seconds.values())) / unit)
            for block, n in meter.calls.items():
                calls[block] += n
    return {
        "blocks": {
            b: {"pairings": statistics.median(per_round[b]), "calls": calls[b] / rounds}
            for b in BLOCKS
            if calls[b] or b == OTHER
        },
        "instrumented_pairings": statistics.median(totals),
        "plain_pairings": statistics.median(plain),
        "pairing_us": statistics.median(pairings) * 1e6,
    }


def render(results: dict[str, dict[str, Any]], rounds: int) -> list[str]:
    names = list(results)
    abbreviations = {"transform-key generation": "tk gen", "decrypt level ": "dec L"}
    abbreviations[", new key"] = " new"
    abbreviations["transform hop "] = "hop "
    short = {}
    for n in names:
        short[n] = n
        for long, brief in abbreviations.items():
            short[n] = short[n].replace(long, brief)
    width = 13
    lines = [
        f"PRE profile: median of {rounds} rounds; each cell is pairings per operation "
        "x calls per operation",
        f"{'block':<38}" + "".join(f"{short[n]:>{width}}" for n in names),
    ]
    for block in BLOCKS:
        cells = []
        for n in names:
            cell = results[n]["blocks"].get(block)
            if cell is None:
                cells.append(f"{'':>{width}}")
            elif block == OTHER:
                cells.append(f"{cell['pairings']:>{width}.3f}")
            else:
                text = f"{cell['pairings']:.3f} x{cell['calls']:g}"
                cells.append(f"{text:>{width}}")
        if any(c.strip() for c in cells):
            lines.append(f"{block:<38}" + "".join(cells))
    lines.append(
        f"{'total, instrumented':<38}"
        + "".join(f"{results[n]['instrumented_pairings']:>{width}.3f}" for n in names)
    )
    lines.append(
        f"{'total, uninstrumented (median)':<38}"
        + "".join(f"{results[n]['plain_pairings']:>{width}.3f}" for n in names)
    )
    pairing_us = statistics.median(r["pairing_us"] for r in results.values())
    lines.append(f"raw pymcl pairing: {pairing_us:.0f} µs")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="rounds per operation")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="operations to profile")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="as bench/pre.py")
    args = parser.parse_args(argv)

    wanted = [
        "encrypt",
        "transform-key generation",
        "transform hop 1",
        "transform hop 2",
        "both hops",
        "decrypt level 0",
        "decrypt level 1",
        "decrypt level 2",
        "decrypt level 1, new key",
        "decrypt level 2, new key",
    ]
    cases = build_cases()
    if args.only:
        unknown = set(args.only) - set(cases)
        if unknown:
            parser.error(f"unknown operations: {sorted(unknown)}; known: {sorted(cases)}")
        wanted = args.only
    clock = PairingClock(args.clock)
    meter = Meter(clock.now)
    results: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(wanted, 1):
        print(f"\r[{i}/{len(wanted)}] {name:<28}", end="", file=sys.stderr, flush=True)
        results[name] = profile(cases[name], args.rounds, clock, meter)
    print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    print("\n".join(render(results, args.rounds)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rounds": args.rounds, "operations": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
