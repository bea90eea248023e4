"""The pairing layer: BLS12-381 scalars, G1, G2 and GT in Sealroom's own types.

This is the only module that imports the backend (pymcl, a binding of herumi's mcl).
It closes the backend's gaps:

* **Validation.** Every ``from_bytes`` checks the exact length and the canonical encoding,
  and rejects the identity. G1 and G2 points must be on the curve and in the prime-order
  subgroup (mcl checks both on deserialization; our tests prove it does). mcl does not
  check GT at all, so :meth:`GT.from_bytes` runs its own exact membership test.
* **Blinding.** mcl's scalar multiplication and GT exponentiation are variable-time, so
  every operation by a secret scalar ``s`` is computed as ``(X·b)·(s/b)`` with a fresh
  random blind ``b``. Public-scalar operations say so in their name.
* **Hashing.** mcl's ``hash`` uses a legacy map without a domain separation tag. We never
  use it: :func:`hash_to_scalar` is HKDF with a caller-given label, and a hash to G2 is
  that scalar times the fixed generator (as recrypt does).
* **Randomness.** Scalars come from ``os.urandom`` (the OS CSPRNG), never from mcl's RNG.

The backend holds the GIL: parallel work needs processes, not threads.

Encodings (all little-endian, as mcl writes them): a scalar is 32 bytes and below r; a G1
point is 48 bytes (x, with the top bit flagging the odd y); a G2 point is 96 bytes (x as
two Fp values, flag likewise); a GT element is 576 bytes (twelve Fp values, coefficients
of the tower Fp2 = Fp[i]/(i²+1), Fp6 = Fp2[v]/(v³-(1+i)), Fp12 = Fp6[w]/(w²-v)).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Any, ClassVar, Final, Generic, Self, TypeVar

import pymcl
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealroom.errors import CryptoInvariantError, MalformedInputError

__all__ = [
    "G1",
    "G1_BYTES",
    "G2",
    "G2_BYTES",
    "GT",
    "GT_BYTES",
    "SCALAR_BYTES",
    "P",
    "R",
    "Scalar",
    "hash_to_scalar",
    "pair",
]

#: Order r of G1, G2 and GT.
R: Final[int] = int(pymcl.r)
#: The base field prime p.
P: Final[int] = int(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab",
    16,
)
#: |u| for the BLS parameter u = -0xd201000000010000 (p ≡ u mod r).
_U_ABS: Final[int] = 0xD201000000010000

_Point = TypeVar("_Point", pymcl.G1, pymcl.G2)

SCALAR_BYTES: Final[int] = 32
G1_BYTES: Final[int] = 48
G2_BYTES: Final[int] = 96
GT_BYTES: Final[int] = 576
_FP_BYTES: Final[int] = 48

# The OS CSPRNG. A module attribute so that tests can watch every draw.
_urandom: Callable[[int], bytes] = os.urandom


def _random_fr_nonzero() -> pymcl.Fr:
    """A uniform nonzero scalar from 64 OS-random bytes, reduced mod r (bias < 2^-256)."""
    while True:
        v = int.from_bytes(_urandom(64), "little") % R
        if v:
            return pymcl.Fr.deserialize(v.to_bytes(SCALAR_BYTES, "little"))


def _fr_from_int(v: int) -> pymcl.Fr:
    return pymcl.Fr.deserialize((v % R).to_bytes(SCALAR_BYTES, "little"))


class Scalar:
    """An element of Z/rZ. Treated as secret: redacted ``repr``, unhashable."""

    __slots__ = ("_fr",)

    def __init__(self, fr: pymcl.Fr) -> None:
        self._fr = fr

    @classmethod
    def random(cls) -> Scalar:
        """A fresh uniform nonzero scalar from the OS CSPRNG."""
        return cls(_random_fr_nonzero())

    @classmethod
    def from_int(cls, value: int) -> Scalar:
        """The scalar ``value mod r``."""
        return cls(_fr_from_int(value))

    @classmethod
    def from_bytes(cls, data: bytes) -> Scalar:
        """Decode exactly 32 little-endian bytes holding a value below r."""
        if len(data) != SCALAR_BYTES:
            raise MalformedInputError(f"scalar: expected {SCALAR_BYTES} bytes, got {len(data)}")
        if int.from_bytes(data, "little") >= R:
            raise MalformedInputError("scalar: value is not below the group order")
        return cls(pymcl.Fr.deserialize(bytes(data)))

    def expose_bytes(self) -> bytes:
        """The 32-byte encoding. Named so that exporting a secret scalar is explicit."""
        return bytes(self._fr.serialize())

    def is_zero(self) -> bool:
        return bool(self._fr.is_zero())

    def __add__(self, other: Scalar) -> Scalar:
        return Scalar(self._fr + other._fr)

    def __sub__(self, other: Scalar) -> Scalar:
        return Scalar(self._fr - other._fr)

    def __neg__(self) -> Scalar:
        return Scalar(-self._fr)

    def __mul__(self, other: Scalar) -> Scalar:
        return Scalar(self._fr * other._fr)

    def inverse(self) -> Scalar:
        if self._fr.is_zero():
            raise CryptoInvariantError("inverse of zero scalar")
        return Scalar(~self._fr)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scalar):
            return NotImplemented
        return hmac.compare_digest(self._fr.serialize(), other._fr.serialize())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "<Scalar [redacted]>"


def hash_to_scalar(label: bytes, data: bytes) -> Scalar:
    """HKDF-SHA256 of ``data`` under ``label``, 64 bytes reduced mod r (bias < 2^-256)."""
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=label).derive(data)
    return Scalar(_fr_from_int(int.from_bytes(okm, "little")))


def _blind() -> pymcl.Fr:
    return _random_fr_nonzero()


# The backend calls that take a scalar. Tests wrap these to check that a secret scalar is
# never handed to the backend as it is.
def _backend_mul(x: _Point, k: pymcl.Fr) -> _Point:
    return x * k


def _backend_pow(x: pymcl.GT, k: pymcl.Fr) -> pymcl.GT:
    return x**k


def _blinded_mul(x: _Point, k: pymcl.Fr) -> _Point:
    b = _blind()
    return _backend_mul(_backend_mul(x, b), k / b)


class _CurvePoint(Generic[_Point]):
    """What G1 and G2 share; each subclass names its backend type and encoded size."""

    __slots__ = ("_p",)
    _backend: ClassVar[Any]
    _size: ClassVar[int]
    _name: ClassVar[str]

    def __init__(self, point: _Point) -> None:
        self._p: _Point = point

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate: exact length, canonical, on the curve, in the prime-order
        subgroup, not the identity."""
        name, size = cls._name, cls._size
        if len(data) != size:
            raise MalformedInputError(f"{name} point: expected {size} bytes, got {len(data)}")
        data = bytes(data)
        try:
            point = cls._backend.deserialize(data)
        except ValueError:
            raise MalformedInputError(
                f"{name} point: not a point of the prime-order subgroup"
            ) from None
        if point.is_zero():
            raise MalformedInputError(f"{name} point: the identity is not allowed")
        if point.serialize() != data:  # mcl refuses these too; kept in case the backend changes
            raise MalformedInputError(f"{name} point: non-canonical encoding")
        return cls(point)

    def to_bytes(self) -> bytes:
        return bytes(self._p.serialize())

    def mul_secret(self, k: Scalar) -> Self:
        """``k·self`` for a secret ``k``, with a fresh multiplicative blind."""
        return type(self)(_blinded_mul(self._p, k._fr))

    def mul_public(self, k: Scalar) -> Self:
        """``k·self`` for a public ``k`` (variable-time)."""
        return type(self)(_backend_mul(self._p, k._fr))

    def is_identity(self) -> bool:
        return bool(self._p.is_zero())

    def __add__(self, other: Self) -> Self:
        return type(self)(self._p + other._p)

    def __sub__(self, other: Self) -> Self:
        return type(self)(self._p - other._p)

    def __neg__(self) -> Self:
        return type(self)(-self._p)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, _CurvePoint):
            return NotImplemented
        return bool(self._p == other._p)

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"{self._name}({self.to_bytes().hex()[:16]}…)"


class G1(_CurvePoint[pymcl.G1]):
    """A point of G1 (the prime-order subgroup of E(Fp))."""

    __slots__ = ()
    _backend = pymcl.G1
    _size = G1_BYTES
    _name = "G1"

    @classmethod
    def generator(cls) -> G1:
        return _G1_GEN


class G2(_CurvePoint[pymcl.G2]):
    """A point of G2 (the prime-order subgroup of the twist over Fp2)."""

    __slots__ = ()
    _backend = pymcl.G2
    _size = G2_BYTES
    _name = "G2"

    @classmethod
    def generator(cls) -> G2:
        return _G2_GEN


# --- GT membership -----------------------------------------------------------------------
#
# f ∈ GT  ⇔  f^r = 1. We test it as: f·conj(f) = 1 (f is unitary, its order divides p^6+1)
# and f^p · f^|u| = 1 (that is f^(p-u) = 1). Since gcd(p^6+1, p-u) = r (checked in the tests),
# both together hold exactly when f^r = 1. f^p is a Frobenius map computed on the
# coefficients; conj(f) = f^(p^6) negates the w-part; f^|u| = (f^(|u|/2))^2 uses mcl's pow,
# which is exact for that exponent on every element (mcl only applies its GLV split, valid
# only inside GT, to larger exponents). _pow_exact_self_check() proves this at import; if it
# ever failed we would fall back to a plain square-and-multiply.


def _fp2_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _fp2_pow(a: tuple[int, int], e: int) -> tuple[int, int]:
    result = (1, 0)
    while e:
        if e & 1:
            result = _fp2_mul(result, a)
        a = _fp2_mul(a, a)
        e >>= 1
    return result


# gamma_k = xi^(k(p-1)/6), xi = 1 + i: the Frobenius twist of the basis element w^k.
_GAMMA: Final[tuple[tuple[int, int], ...]] = tuple(
    _fp2_pow((1, 1), k * (P - 1) // 6) for k in range(6)
)
_HALF_U: Final[int] = _U_ABS // 2


def _coeffs(raw: bytes) -> list[int]:
    return [int.from_bytes(raw[i : i + _FP_BYTES], "little") for i in range(0, GT_BYTES, _FP_BYTES)]


def _to_bytes(c: list[int]) -> bytes:
    return b"".join(v.to_bytes(_FP_BYTES, "little") for v in c)


def _from_coeffs(c: list[int]) -> pymcl.GT:
    return pymcl.GT.deserialize(_to_bytes(c))


def _frobenius(c: list[int], *, conjugate_after: bool = False) -> list[int]:
    """f^p (or conj(f^p) = f^(-p) for unitary f) from the coefficients of f.

    Coefficient pair (i, i+1), i = 6s + 2t, multiplies the basis element v^t w^s = w^(2t+s);
    Frobenius conjugates it in Fp2 and multiplies it by gamma_(2t+s).
    """
    out = [0] * 12
    for s in (0, 1):
        negate = s == 1 and conjugate_after
        for t in (0, 1, 2):
            i = 6 * s + 2 * t
            x, y = c[i], -c[i + 1] % P
            k = 2 * t + s
            if k:
                g0, g1 = _GAMMA[k]
                x, y = (x * g0 - y * g1) % P, (x * g1 + y * g0) % P
            out[i], out[i + 1] = (-x % P, -y % P) if negate else (x, y)
    return out


def _conjugate(c: list[int]) -> list[int]:
    return c[:6] + [-v % P for v in c[6:]]


def _pow_generic(x: pymcl.GT, e: int) -> pymcl.GT:
    result = pymcl.GT()
    for bit in bin(e)[2:]:
        result = result * result
        if bit == "1":
            result = result * x
    return result


def _pow_exact_self_check() -> bool:
    """True if mcl's pow gives the exact power for |u|/2 on a unitary element outside GT."""
    seed = [(7 * i * i + 3 * i + 1) % P for i in range(12)]
    f0 = _from_coeffs(seed)
    unitary = _from_coeffs(_conjugate(seed)) / f0  # f0^(p^6-1): unitary, not in GT
    return bool(unitary ** _fr_from_int(_HALF_U) == _pow_generic(unitary, _HALF_U))


_MCL_POW_EXACT: Final[bool] = _pow_exact_self_check()


def _pow_half_u(f: pymcl.GT) -> pymcl.GT:
    if _MCL_POW_EXACT:
        return f ** _fr_from_int(_HALF_U)
    return _pow_generic(f, _HALF_U)  # pragma: no cover - only if mcl changes behaviour


def _in_gt(f: pymcl.GT, raw: bytes) -> bool:
    """Exact test of f^r = 1 (see the comment above)."""
    c = _coeffs(raw)
    if not (f * _from_coeffs(_conjugate(c))).is_one():
        return False  # not unitary (this also rejects zero)
    h = _pow_half_u(f)
    # f^p · f^|u| = 1  ⇔  f^|u| = f^(-p) = conj(f^p), since f is unitary.
    return bool((h * h).serialize() == _to_bytes(_frobenius(c, conjugate_after=True)))


class GT:
    """An element of GT, the order-r subgroup of Fp12* that pairings land in."""

    __slots__ = ("_e",)

    def __init__(self, element: pymcl.GT) -> None:
        self._e = element

    @classmethod
    def generator(cls) -> GT:
        """e(g1, g2)."""
        return _GT_GEN

    @classmethod
    def random(cls) -> GT:
        """A uniform element of GT: the generator to a fresh secret power."""
        return _GT_GEN.pow_secret(Scalar.random())

    @classmethod
    def from_bytes(cls, data: bytes) -> GT:
        """Decode and validate: exact length, canonical, and in the order-r subgroup."""
        if len(data) != GT_BYTES:
            raise MalformedInputError(f"GT element: expected {GT_BYTES} bytes, got {len(data)}")
        data = bytes(data)
        try:
            element = pymcl.GT.deserialize(data)
        except ValueError:
            raise MalformedInputError("GT element: coefficient out of range") from None
        if element.serialize() != data:
            raise MalformedInputError("GT element: non-canonical encoding")
        if not _in_gt(element, data):
            raise MalformedInputError("GT element: not in the prime-order subgroup")
        return cls(element)

    def to_bytes(self) -> bytes:
        return bytes(self._e.serialize())

    def pow_secret(self, k: Scalar) -> GT:
        """``self^k`` for a secret ``k``, with a fresh multiplicative blind."""
        b = _blind()
        return GT(_backend_pow(_backend_pow(self._e, b), k._fr / b))

    def pow_public(self, k: Scalar) -> GT:
        """``self^k`` for a public ``k`` (variable-time)."""
        return GT(_backend_pow(self._e, k._fr))

    def is_one(self) -> bool:
        return bool(self._e.is_one())

    def __mul__(self, other: GT) -> GT:
        return GT(self._e * other._e)

    def __truediv__(self, other: GT) -> GT:
        return GT(self._e / other._e)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GT):
            return NotImplemented
        return hmac.compare_digest(self._e.serialize(), other._e.serialize())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "<GT [redacted]>"


def pair(p: G1, q: G2) -> GT:
    """The optimal ate pairing e(p, q)."""
    return GT(pymcl.pairing(p._p, q._p))


_G1_GEN: Final[G1] = G1(pymcl.g1)
_G2_GEN: Final[G2] = G2(pymcl.g2)
_GT_GEN: Final[GT] = GT(pymcl.pairing(pymcl.g1, pymcl.g2))
