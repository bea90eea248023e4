"""Builders of hostile inputs: points off the curve, outside the subgroup, bad GT elements."""

from __future__ import annotations

from sealroom.crypto import pairing as pr

P = pr.P
FLAG = 0x80  # mcl's compressed encoding keeps the y flag in the top bit of the last byte


def is_qr(a: int) -> bool:
    return a % P == 0 or pow(a, (P - 1) // 2, P) == 1


def fp2_is_square(a0: int, a1: int) -> bool:
    # a is a square in Fp2 = Fp[i]/(i^2+1) iff its norm a0^2 + a1^2 is a square in Fp.
    return is_qr(a0 * a0 + a1 * a1)


def fp2_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def g1_encoding(x: int, flag: bool) -> bytes:
    raw = bytearray(x.to_bytes(48, "little"))
    if flag:
        raw[47] |= FLAG
    return bytes(raw)


def g2_encoding(x0: int, x1: int, flag: bool) -> bytes:
    raw = bytearray(x0.to_bytes(48, "little") + x1.to_bytes(48, "little"))
    if flag:
        raw[95] |= FLAG
    return bytes(raw)


def g1_on_curve_not_in_subgroup() -> list[bytes]:
    """Encodings of points on y^2 = x^3 + 4 that are not in G1 (cofactor ~2^125)."""
    out = []
    x = 1
    while len(out) < 2:
        x += 1
        if is_qr(x**3 + 4):
            out += [g1_encoding(x, False), g1_encoding(x, True)]
    return out


def g1_not_on_curve() -> bytes:
    x = 1
    while True:
        x += 1
        if not is_qr(x**3 + 4):
            return g1_encoding(x, False)


def g2_on_curve_not_in_subgroup() -> list[bytes]:
    """Encodings of points on the twist y^2 = x^3 + 4(1+i) outside G2."""
    out = []
    x0 = 1
    while len(out) < 2:
        x0 += 1
        x = (x0, 1)
        x3 = fp2_mul(fp2_mul(x, x), x)
        rhs = ((x3[0] + 4) % P, (x3[1] + 4) % P)
        if fp2_is_square(*rhs):
            out += [g2_encoding(x0, 1, False), g2_encoding(x0, 1, True)]
    return out


def g2_not_on_curve() -> bytes:
    x0 = 1
    while True:
        x0 += 1
        x = (x0, 1)
        x3 = fp2_mul(fp2_mul(x, x), x)
        if not fp2_is_square((x3[0] + 4) % P, (x3[1] + 4) % P):
            return g2_encoding(x0, 1, False)


def gt_from_coeffs(c: list[int]) -> pr._GT:
    return pr._from_coeffs(c)


def gt_random_fp12(seed: int) -> list[int]:
    return [(seed * 1_000_003 + 7 * i * i + 13 * i + 5) % P for i in range(12)]


def gt_unitary_not_in_gt(seed: int) -> bytes:
    """f^(p^6 - 1) = conj(f)/f: unitary, but (overwhelmingly) not of order r."""
    c = gt_random_fp12(seed)
    f = gt_from_coeffs(c)
    unitary = pr._gt_op(pr._gt_div, gt_from_coeffs(pr._conjugate(c)), f)
    return pr._gt_bytes(unitary)


def gt_minus_one() -> bytes:
    """-1: unitary, of order 2."""
    c = [P - 1] + [0] * 11
    return b"".join(v.to_bytes(48, "little") for v in c)


# p - u and p^12 - 1 share the factor r and one more, EXTRA; EXTRA does not divide p^6 + 1.
EXTRA = 15132376222941642753


def gt_passes_frobenius_test_but_not_unitary(seed: int) -> bytes:
    """An element of order dividing EXTRA: f^(p-u) = 1, yet f is not unitary."""
    f = gt_from_coeffs(gt_random_fp12(seed))
    e = (P**12 - 1) // EXTRA
    return pr._gt_bytes(pr._pow_generic(f, e))
