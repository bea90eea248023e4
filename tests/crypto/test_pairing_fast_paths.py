"""The pairing layer's fast paths compute exactly what the plain ones do, and stay blinded.

Fixed-base tables for the generators, multi-scalar blinding for other bases, the GT
membership test's backend Frobenius and pow, and the encodings points keep.
"""

from __future__ import annotations

import ctypes
import math
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealroom.crypto import pairing as pr
from sealroom.crypto.pairing import G1, G2, GT, Scalar, hash_to_scalar, pair
from sealroom.errors import MalformedInputError

from . import curve_helpers as ch

EDGE_SCALARS = [0, 1, 2, 255, 256, 257, 1 << 8, (1 << 248) + 1, pr.R - 1, pr.R - 256]


def _scalars() -> list[pr._Fr]:
    return [pr._fr_from_int(v) for v in EDGE_SCALARS] + [Scalar.random()._fr for _ in range(8)]


def _copy(x: pr._Out) -> pr._Out:
    """The same value at another address: not a registered fixed base."""
    return type(x).from_buffer_copy(x)


# --- fixed-base tables ---


@pytest.mark.parametrize(("ops", "gen"), [(pr._G1_OPS, G1.generator), (pr._G2_OPS, G2.generator)])
def test_fixed_base_multiplication_equals_plain(ops: pr._Ops[pr._G1], gen: object) -> None:
    base = gen()._p  # type: ignore[operator]
    assert ctypes.addressof(base) in pr._FIXED
    plain_base = _copy(base)
    assert ctypes.addressof(plain_base) not in pr._FIXED
    for k in _scalars():
        fixed = pr._backend_mul(ops, base, k)
        plain = ops.binary(ops.mul, plain_base, k)
        assert ops.eq(fixed, plain)
        assert pr._serialize(ops.ser, fixed, ops.size) == pr._serialize(ops.ser, plain, ops.size)


def test_fixed_base_power_equals_plain() -> None:
    base = GT.generator()._e
    assert ctypes.addressof(base) in pr._FIXED
    plain_base = _copy(base)
    for k in _scalars():
        fixed = pr._backend_pow(base, k)
        assert pr._gt_bytes(fixed) == pr._gt_bytes(pr._result(pr._GT, pr._gt_pow, plain_base, k))


def test_only_the_three_generators_have_tables() -> None:
    assert set(pr._FIXED) == {
        ctypes.addressof(G1.generator()._p),
        ctypes.addressof(G2.generator()._p),
        ctypes.addressof(GT.generator()._e),
    }
    other = G1.from_bytes(G1.generator().to_bytes())  # equal value, not the registered one
    assert ctypes.addressof(other._p) not in pr._FIXED
    k = Scalar.random()
    assert other.mul_secret(k) == G1.generator().mul_secret(k)


def test_secret_multiples_of_generators_are_split_into_two_random_halves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []
    real = pr._backend_mul

    def mul(ops: object, x: object, k: pr._Fr) -> object:
        seen.append(int.from_bytes(pr._fr_bytes(k), "little"))
        return real(ops, x, k)  # type: ignore[arg-type]

    monkeypatch.setattr(pr, "_backend_mul", mul)
    k = Scalar.random()
    secret = int.from_bytes(k.expose_bytes(), "little")
    halves = []
    for _ in range(3):
        seen.clear()
        G2.generator().mul_secret(k)
        assert len(seen) == 2
        assert secret not in seen
        assert sum(seen) % pr.R == secret  # additive split: b and k - b
        halves += seen
    assert len(set(halves)) == 6


# --- variable bases: one multi-scalar call on two random halves ---


def test_secret_multiples_of_other_points_never_show_the_scalar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, ...]] = []
    real_mul, real_pow = pr._backend_mul_vec, pr._backend_pow_vec

    def mul_vec(ops: object, xs: tuple[object, ...], ks: tuple[pr._Fr, ...]) -> object:
        seen.append(tuple(int.from_bytes(pr._fr_bytes(k), "little") for k in ks))
        return real_mul(ops, xs, ks)  # type: ignore[arg-type]

    def pow_vec(xs: tuple[pr._GT, ...], ks: tuple[pr._Fr, ...]) -> pr._GT:
        seen.append(tuple(int.from_bytes(pr._fr_bytes(k), "little") for k in ks))
        return real_pow(xs, ks)

    monkeypatch.setattr(pr, "_backend_mul_vec", mul_vec)
    monkeypatch.setattr(pr, "_backend_pow_vec", pow_vec)
    k = Scalar.random()
    secret = int.from_bytes(k.expose_bytes(), "little")
    p = G1.generator().mul_public(Scalar.random())
    q = G2.generator().mul_public(Scalar.random())
    e = GT.random()
    results = [(p.mul_secret(k), p.mul_public(k)), (q.mul_secret(k), q.mul_public(k))]
    results.append((e.pow_secret(k), e.pow_public(k)))  # type: ignore[arg-type]
    for blinded, public in results:
        assert blinded == public
    results_again = [p.mul_secret(k), q.mul_secret(k), e.pow_secret(k)]
    assert [r for r, _ in results] == results_again
    assert len(seen) == 6
    for halves in seen:
        assert len(halves) == 2
        assert secret not in halves
        assert sum(halves) % pr.R == secret
    assert len({h for halves in seen for h in halves}) == 12  # a fresh blind every time


def test_blinded_variable_base_operations_on_edge_scalars() -> None:
    p = G1.generator().mul_public(Scalar.random())
    q = G2.generator().mul_public(Scalar.random())
    e = GT.random()
    for v in EDGE_SCALARS:
        k = Scalar.from_int(v)
        assert p.mul_secret(k) == p.mul_public(k)
        assert q.mul_secret(k) == q.mul_public(k)
        assert e.pow_secret(k) == e.pow_public(k)
    assert p.mul_secret(Scalar.from_int(0)).is_identity()
    assert e.pow_secret(Scalar.from_int(0)).is_one()


def test_bilinearity_through_every_path() -> None:
    a, b = Scalar.random(), Scalar.random()
    pa = G1.generator().mul_secret(a)  # fixed base
    qb = G2.generator().mul_secret(b)
    pab = pa.mul_secret(b)  # variable base
    expected = GT.generator().pow_secret(a * b)  # fixed base in GT
    assert pair(pa, qb) == expected
    assert pair(pab, G2.generator()) == expected
    assert pair(G1.generator(), qb).pow_secret(a) == expected  # variable base in GT


# --- GT membership ---


def _order_q_element(q: int, seed: int) -> bytes:
    """An element of order q (q divides p^12 - 1 and is prime), from the first seed that
    gives one."""
    while True:
        f = ch.gt_from_coeffs(ch.gt_random_fp12(seed))
        g = pr._pow_generic(f, (pr.P**12 - 1) // q)
        if not pr._gt_is_one(g):
            assert pr._gt_is_one(pr._pow_generic(g, q))
            return pr._gt_bytes(g)
        seed += 1000


SMALL_FACTORS = [2, 5, 37, 73, 89, 4513]


def test_the_quotient_of_the_unitary_group_by_gt_has_small_factors() -> None:
    # Why there is no batch test: U (order p^6 + 1) over GT has elements of these orders, so
    # a random-linear-combination check would miss a non-member with probability 1/2.
    cofactor = (pr.P**6 + 1) // pr.R
    for q in SMALL_FACTORS:
        assert cofactor % q == 0
    gt_cofactor = (pr.P**4 - pr.P**2 + 1) // pr.R
    assert gt_cofactor % 4513 == 0


@pytest.mark.parametrize("q", SMALL_FACTORS)
def test_gt_rejects_elements_of_small_order(q: int) -> None:
    raw = _order_q_element(q, seed=q)
    f = pr._from_coeffs(pr._coeffs(raw))
    assert pr._gt_is_one(pr._gt_op(pr._gt_mul, f, pr._result(pr._GT, pr._gt_conjugate, f)))
    with pytest.raises(MalformedInputError, match="subgroup"):
        GT.from_bytes(raw)


@pytest.mark.parametrize("q", SMALL_FACTORS)
def test_gt_rejects_a_member_times_an_element_of_small_order(q: int) -> None:
    member = GT.random()
    bad = pr._from_coeffs(pr._coeffs(_order_q_element(q, seed=100 + q)))
    product = pr._gt_op(pr._gt_mul, member._e, bad)
    with pytest.raises(MalformedInputError, match="subgroup"):
        GT.from_bytes(pr._gt_bytes(product))


def test_gt_membership_agrees_with_the_definition() -> None:
    candidates = [GT.random()._e, pair(G1.generator(), G2.generator())._e]
    candidates += [pr._from_coeffs(pr._coeffs(ch.gt_unitary_not_in_gt(s))) for s in (1, 9)]
    candidates.append(pr._from_coeffs(pr._coeffs(ch.gt_passes_frobenius_test_but_not_unitary(4))))
    candidates.append(pr._from_coeffs(pr._coeffs(ch.gt_minus_one())))
    candidates.append(ch.gt_from_coeffs(ch.gt_random_fp12(3)))
    verdicts = []
    for f in candidates:
        by_definition = bool(pr._gt_is_one(pr._pow_generic(f, pr.R)))
        assert pr._in_gt(f) == by_definition
        verdicts.append(by_definition)
    assert verdicts == [True, True, False, False, False, False, False]


def test_backend_frobenius_matches_the_python_reference() -> None:
    elements = [GT.random()._e, ch.gt_from_coeffs(ch.gt_random_fp12(21))]
    elements.append(pr._from_coeffs(pr._coeffs(ch.gt_unitary_not_in_gt(5))))
    for f in elements:
        reference = pr._frobenius(pr._coeffs(pr._gt_bytes(f)), conjugate_after=True)
        assert pr._gt_bytes(pr._frobenius_conjugate(f)) == pr._to_bytes(reference)
        assert pr._gt_bytes(f) == pr._gt_bytes(_copy(f))  # the input is left as it was


def test_generic_pow_is_exact_outside_gt() -> None:
    f = pr._from_coeffs(pr._coeffs(ch.gt_unitary_not_in_gt(8)))
    assert pr._gt_backend_is_exact()
    power = pr._result(pr._GT, pr._gt_pow_generic, f, pr._U_ABS_FR)
    assert pr._gt_bytes(power) == pr._gt_bytes(pr._pow_generic(f, pr._U_ABS))
    glv = pr._result(pr._GT, pr._gt_pow, f, pr._U_ABS_FR)
    assert pr._gt_bytes(glv) != pr._gt_bytes(power)  # why the test does not use the GLV pow


def test_exponent_facts_behind_the_test() -> None:
    u = -pr._U_ABS
    assert math.gcd(pr.P**6 + 1, pr.P - u) == pr.R


# --- encodings kept on values ---


@pytest.mark.parametrize("cls", [G1, G2])
def test_decoded_points_keep_their_encoding_and_computed_ones_serialize(
    cls: type[G1] | type[G2],
) -> None:
    p = cls.generator().mul_public(Scalar.random())
    raw = pr._serialize(p._ops.ser, p._p, p._ops.size)
    assert p.to_bytes() == raw
    decoded = cls.from_bytes(raw)
    assert decoded.to_bytes() is decoded.to_bytes()
    assert decoded.to_bytes() == raw
    total = decoded + decoded
    assert total.to_bytes() == pr._serialize(p._ops.ser, total._p, p._ops.size)
    assert total.to_bytes() != raw


def test_gt_keeps_its_encoding() -> None:
    e = GT.random()
    raw = pr._gt_bytes(e._e)
    assert e.to_bytes() == raw
    decoded = GT.from_bytes(raw)
    assert decoded.to_bytes() == raw
    assert (decoded * decoded).to_bytes() == pr._gt_bytes(pr._gt_op(pr._gt_mul, e._e, e._e))


# --- reduction of 64-byte strings mod r ---


def test_wide_reduction_equals_python_reduction() -> None:
    values = [0, 1, pr.R - 1, pr.R, pr.R + 1, 2 * pr.R, (1 << 512) - 1, pr.R << 256]
    values += [int.from_bytes(os.urandom(64), "little") for _ in range(200)]
    for v in values:
        got = pr._fr_bytes(pr._fr_from_wide(v.to_bytes(64, "little")))
        assert got == (v % pr.R).to_bytes(32, "little")


def test_hash_to_scalar_is_the_hkdf_output_reduced_mod_r() -> None:
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"label").derive(b"data")
    expected = int.from_bytes(okm, "little") % pr.R
    assert hash_to_scalar(b"label", b"data").expose_bytes() == expected.to_bytes(32, "little")


def test_division_in_gt_is_multiplication_by_the_conjugate() -> None:
    for _ in range(5):
        a, b = GT.random(), pair(G1.generator().mul_public(Scalar.random()), G2.generator())
        generic = pr._gt_op(pr._gt_div, a._e, b._e)  # mcl's division, with an Fp12 inversion
        assert (a / b).to_bytes() == pr._gt_bytes(generic)
        assert (a / b) * b == a
    assert (GT.generator() / GT.generator()).is_one()
