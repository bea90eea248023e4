"""The pairing layer: encodings, validation of every hostile input, blinding, hashing."""

from __future__ import annotations

import ctypes
import math
import pickle

import pytest

from sealroom.crypto import pairing as pr
from sealroom.crypto.pairing import G1, G2, GT, Scalar, hash_to_scalar, pair
from sealroom.errors import MalformedInputError

from . import curve_helpers as ch


def test_group_facts_behind_the_gt_check() -> None:
    u = -pr._U_ABS
    assert u**4 - u**2 + 1 == pr.R
    assert u % pr.R == pr.P % pr.R
    # The GT test checks unitary (order | p^6+1) and f^(p-u) = 1: together, order | r.
    assert math.gcd(pr.P**6 + 1, pr.P - u) == pr.R
    # Without the unitary check an extra factor would slip through.
    assert math.gcd(pr.P**12 - 1, pr.P - u) == pr.R * ch.EXTRA
    assert (pr.P**6 + 1) % ch.EXTRA != 0


def test_mcl_pow_is_exact_for_the_exponent_we_use() -> None:
    assert pr._MCL_POW_EXACT
    bad = pr._from_coeffs(pr._coeffs(ch.gt_unitary_not_in_gt(3)))
    exact = pr._gt_bytes(pr._pow_generic(bad, pr._HALF_U))
    assert pr._gt_bytes(pr._backend_pow(bad, pr._fr_from_int(pr._HALF_U))) == exact


def test_frobenius_matches_power_p_on_gt() -> None:
    e = GT.random()
    raw = e.to_bytes()
    frob = pr._from_coeffs(pr._frobenius(pr._coeffs(raw)))
    assert pr._gt_bytes(frob) == e.pow_public(Scalar.from_int(pr.P % pr.R)).to_bytes()


def test_standard_generators() -> None:
    # draft-irtf-cfrg-pairing-friendly-curves-11 §4.2.1, BLS12_381 G1 generator x.
    x = int(
        "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac58"
        "6c55e83ff97a1aeffb3af00adb22c6bb",
        16,
    )
    assert G1.generator().to_bytes() in (ch.g1_encoding(x, False), ch.g1_encoding(x, True))
    order = int("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001", 16)
    assert order == pr.R


# --- scalars ---


def test_scalar_roundtrip_and_length() -> None:
    s = Scalar.random()
    assert Scalar.from_bytes(s.expose_bytes()) == s
    with pytest.raises(MalformedInputError, match="expected 32 bytes, got 31"):
        Scalar.from_bytes(s.expose_bytes()[:31])
    with pytest.raises(MalformedInputError):
        Scalar.from_bytes(s.expose_bytes() + b"\x00")


def test_scalar_rejects_values_not_below_r() -> None:
    with pytest.raises(MalformedInputError, match="below the group order"):
        Scalar.from_bytes(pr.R.to_bytes(32, "little"))
    with pytest.raises(MalformedInputError):
        Scalar.from_bytes(b"\xff" * 32)


def test_scalar_is_secret_shaped() -> None:
    s = Scalar.random()
    assert "redacted" in repr(s)
    with pytest.raises(TypeError):
        hash(s)


# --- G1 and G2 ---


@pytest.mark.parametrize("cls", [G1, G2])
def test_point_roundtrip(cls: type[G1] | type[G2]) -> None:
    p = cls.generator().mul_secret(Scalar.random())
    assert cls.from_bytes(p.to_bytes()) == p


@pytest.mark.parametrize(("cls", "size"), [(G1, 48), (G2, 96)])
def test_point_wrong_length(cls: type[G1] | type[G2], size: int) -> None:
    good = cls.generator().to_bytes()
    for bad in (good[:-1], good + b"\x00", b""):
        with pytest.raises(MalformedInputError, match=f"expected {size} bytes"):
            cls.from_bytes(bad)


@pytest.mark.parametrize("cls", [G1, G2])
def test_point_identity_rejected(cls: type[G1] | type[G2]) -> None:
    identity = (cls.generator() - cls.generator()).to_bytes()
    with pytest.raises(MalformedInputError, match="identity"):
        cls.from_bytes(identity)


def test_g1_not_on_curve_rejected() -> None:
    with pytest.raises(MalformedInputError):
        G1.from_bytes(ch.g1_not_on_curve())


def test_g2_not_on_curve_rejected() -> None:
    with pytest.raises(MalformedInputError):
        G2.from_bytes(ch.g2_not_on_curve())


def test_g1_outside_subgroup_rejected() -> None:
    for enc in ch.g1_on_curve_not_in_subgroup():
        with pytest.raises(MalformedInputError, match="subgroup"):
            G1.from_bytes(enc)


def test_g2_outside_subgroup_rejected() -> None:
    for enc in ch.g2_on_curve_not_in_subgroup():
        with pytest.raises(MalformedInputError, match="subgroup"):
            G2.from_bytes(enc)


def test_g1_x_not_below_p_rejected() -> None:
    with pytest.raises(MalformedInputError):
        G1.from_bytes(ch.g1_encoding(pr.P + 2, False))


def test_point_unused_flag_bits_rejected() -> None:
    good = bytearray(G1.generator().to_bytes())
    good[47] ^= 0x40  # a bit mcl's encoding never sets for a valid x
    with pytest.raises(MalformedInputError):
        G1.from_bytes(bytes(good))


def test_blinded_and_public_multiplication_agree() -> None:
    k = Scalar.random()
    assert G1.generator().mul_secret(k) == G1.generator().mul_public(k)
    assert G2.generator().mul_secret(k) == G2.generator().mul_public(k)
    assert GT.generator().pow_secret(k) == GT.generator().pow_public(k)


def test_every_secret_operation_draws_a_fresh_blind(monkeypatch: pytest.MonkeyPatch) -> None:
    draws: list[bytes] = []
    real = pr._urandom

    def watch(n: int) -> bytes:
        out = real(n)
        draws.append(out)
        return out

    monkeypatch.setattr(pr, "_urandom", watch)
    k = Scalar.from_int(12345)
    G1.generator().mul_secret(k)
    G2.generator().mul_secret(k)
    GT.generator().pow_secret(k)
    assert len(draws) == 3
    assert len(set(draws)) == 3


def test_the_backend_never_sees_a_secret_scalar(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    real_mul, real_pow = pr._backend_mul, pr._backend_pow

    def mul(ops: object, x: object, k: pr._Fr) -> object:
        seen.append(pr._fr_bytes(k))
        return real_mul(ops, x, k)  # type: ignore[arg-type]

    def pow_(x: pr._GT, k: pr._Fr) -> pr._GT:
        seen.append(pr._fr_bytes(k))
        return real_pow(x, k)

    monkeypatch.setattr(pr, "_backend_mul", mul)
    monkeypatch.setattr(pr, "_backend_pow", pow_)
    k = Scalar.random()
    for _ in range(2):
        G1.generator().mul_secret(k)
        G2.generator().mul_secret(k)
        GT.generator().pow_secret(k)
    assert len(seen) == 12  # two backend calls per secret operation
    assert k.expose_bytes() not in seen
    assert len(set(seen)) == 12  # fresh blinds each time
    G1.generator().mul_public(k)
    assert seen[-1] == k.expose_bytes()  # the public path passes the scalar as it is


# --- GT ---


def test_gt_roundtrip_and_bilinearity() -> None:
    a, b = Scalar.random(), Scalar.random()
    lhs = pair(G1.generator().mul_public(a), G2.generator().mul_public(b))
    rhs = GT.generator().pow_public(a * b)
    assert lhs == rhs
    assert GT.from_bytes(lhs.to_bytes()) == lhs


def test_gt_wrong_length() -> None:
    good = GT.random().to_bytes()
    for bad in (good[:-1], good + b"\x00"):
        with pytest.raises(MalformedInputError, match="expected 576 bytes"):
            GT.from_bytes(bad)


def test_gt_coefficient_out_of_range() -> None:
    with pytest.raises(MalformedInputError):
        GT.from_bytes(b"\xff" * 576)


def test_gt_zero_rejected() -> None:
    with pytest.raises(MalformedInputError):
        GT.from_bytes(bytes(576))


def test_gt_random_fp12_rejected() -> None:
    raw = b"".join(v.to_bytes(48, "little") for v in ch.gt_random_fp12(11))
    with pytest.raises(MalformedInputError, match="subgroup"):
        GT.from_bytes(raw)


def test_gt_small_order_rejected() -> None:
    with pytest.raises(MalformedInputError, match="subgroup"):
        GT.from_bytes(ch.gt_minus_one())


def test_gt_unitary_outside_gt_rejected() -> None:
    # Passes the unitary check: only the Frobenius test can catch it.
    for seed in (1, 2, 3):
        with pytest.raises(MalformedInputError, match="subgroup"):
            GT.from_bytes(ch.gt_unitary_not_in_gt(seed))


def test_gt_non_unitary_passing_frobenius_test_rejected() -> None:
    # Passes f^(p-u) = 1: only the unitary check can catch it.
    raw = ch.gt_passes_frobenius_test_but_not_unitary(5)
    f = pr._from_coeffs(pr._coeffs(raw))
    h = pr._pow_half_u(f)
    frob = pr._from_coeffs(pr._frobenius(pr._coeffs(raw)))
    assert pr._gt_is_one(pr._gt_op(pr._gt_mul, frob, pr._gt_op(pr._gt_mul, h, h)))
    conj = pr._from_coeffs(pr._conjugate(pr._coeffs(raw)))
    assert not pr._gt_is_one(pr._gt_op(pr._gt_mul, f, conj))
    with pytest.raises(MalformedInputError, match="subgroup"):
        GT.from_bytes(raw)


def test_gt_is_secret_shaped() -> None:
    e = GT.random()
    assert "redacted" in repr(e)
    with pytest.raises(TypeError):
        hash(e)


# --- hashing ---


def test_hash_to_scalar_is_domain_separated() -> None:
    a = hash_to_scalar(b"label-a", b"data")
    assert a == hash_to_scalar(b"label-a", b"data")
    assert a != hash_to_scalar(b"label-b", b"data")
    assert a != hash_to_scalar(b"label-a", b"datb")


def test_a_prepared_g2_pairs_exactly_like_a_plain_one() -> None:
    p = G1.generator().mul_public(Scalar.random())
    q = G2.generator().mul_public(Scalar.random())
    plain = pair(p, q)
    prepared = G2.from_bytes(q.to_bytes())
    assert prepared.prepare() is prepared.prepare()  # computed once, kept
    assert pair(p, prepared) == plain
    k = Scalar.random()  # the generator is prepared at import
    assert pair(G1.generator().mul_public(k), G2.generator()) == GT.generator().pow_public(k)


def test_the_import_checks_catch_a_backend_that_skips_subgroup_checks() -> None:
    pr._backend_self_check()
    pr._fn("mclBn_verifyOrderG1", None, ctypes.c_int)(0)
    try:
        with pytest.raises(ImportError):
            pr._backend_self_check()
    finally:
        pr._fn("mclBn_verifyOrderG1", None, ctypes.c_int)(1)
    pr._backend_self_check()


def test_the_import_checks_catch_a_struct_too_small_for_what_mcl_writes() -> None:
    # As if mcl kept scalars in 6 words (an Fp) while we give it 4: the padding catches it.
    fp_add = pr._fn("mclBnFp_add", None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    one = (ctypes.c_uint64 * 6)()
    fp_set = pr._fn("mclBnFp_setInt32", None, ctypes.c_void_p, ctypes.c_int)
    fp_set(one, 1)
    assert not pr._writes_within(pr._Fr, lambda out: fp_add(out, one, one))
    two = pr._fr_from_int(2)
    assert pr._writes_within(pr._Fr, lambda out: pr._fr_add(out, two, two))


def test_backend_values_refuse_pickling_and_mixed_kinds() -> None:
    for value in (Scalar.random(), GT.random()):
        with pytest.raises(TypeError):
            pickle.dumps(value)
    with pytest.raises(ctypes.ArgumentError):
        G2.generator() + G1.generator()  # type: ignore[operator]
