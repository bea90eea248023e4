"""The pairing layer: BLS12-381 scalars, G1, G2 and GT in Sealroom's own types.

This is the only module that touches the backend: herumi's mcl as pymcl ships it. Importing
pymcl loads and initializes the library; we then call mcl's public C API (``bn.h``) on it
through ctypes, which also gives us what pymcl's classes do not expose (precomputed
Miller-loop lines for a G2 point that is paired often, multi-scalar multiplication, the Fp2
arithmetic of GT's coefficients). It closes the backend's gaps:

* **Validation.** Every ``from_bytes`` checks the exact length and the canonical encoding,
  and rejects the identity. G1 and G2 points must be on the curve and in the prime-order
  subgroup (mcl checks both on deserialization once told to, which this module does at
  import; our tests prove it). mcl does not check GT at all, so :meth:`GT.from_bytes` runs
  its own exact membership test.
* **Blinding.** mcl's scalar multiplication and GT exponentiation are variable-time, and so
  are our tables for the generators, so every operation by a secret scalar ``s`` is split
  with a fresh random ``b`` into ``b`` and ``s - b``: two table passes for a generator, one
  two-scalar multiplication (``b·X + (s-b)·X``) for any other base. No backend call sees
  ``s``. Public-scalar operations say so in their name.
* **Speed.** Multiples of the three generators come from fixed-base tables built on first
  use; decoded values keep their encoding, so re-encoding them is free.
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

import ctypes
import hmac
import os
import threading
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

SCALAR_BYTES: Final[int] = 32
G1_BYTES: Final[int] = 48
G2_BYTES: Final[int] = 96
GT_BYTES: Final[int] = 576
_FP_BYTES: Final[int] = 48

# The OS CSPRNG. A module attribute so that tests can watch every draw.
_urandom: Callable[[int], bytes] = os.urandom


# --- the backend: mcl's C API (bn.h), from the library pymcl ships ---------------------------
#
# Importing pymcl loads herumi's mcl and initializes it for BLS12-381. We call mcl's public C
# API on that same library through ctypes (PyDLL: the GIL stays held during each call), with
# mcl's own structs as fixed-size arrays of 64-bit words. The sizes are checked below.

_lib: Final[ctypes.PyDLL] = ctypes.PyDLL(pymcl._pymcl.__file__)
_MCL_BLS12_381: Final[int] = 5
_FP_WORDS: Final[int] = 6


def _no_pickle(self: object) -> str | tuple[Any, ...]:
    raise TypeError("backend values are not picklable")


class _Fr(ctypes.Array[ctypes.c_uint64]):
    _type_ = ctypes.c_uint64
    _length_ = 4
    __reduce__ = _no_pickle


class _G1(ctypes.Array[ctypes.c_uint64]):
    _type_ = ctypes.c_uint64
    _length_ = 3 * _FP_WORDS
    __reduce__ = _no_pickle


class _G2(ctypes.Array[ctypes.c_uint64]):
    _type_ = ctypes.c_uint64
    _length_ = 6 * _FP_WORDS
    __reduce__ = _no_pickle


class _GT(ctypes.Array[ctypes.c_uint64]):
    _type_ = ctypes.c_uint64
    _length_ = 12 * _FP_WORDS
    __reduce__ = _no_pickle


if (
    _lib.mclBn_getCurveType() != _MCL_BLS12_381
    or _lib.mclBn_getOpUnitSize() != _FP_WORDS
    or _lib.mclBn_getFrByteSize() != SCALAR_BYTES
    or _lib.mclBn_getFpByteSize() != _FP_BYTES
    or _lib.mclBn_getUint64NumToPrecompute() <= 0
):  # pragma: no cover - only if pymcl ships a differently built mcl
    raise ImportError("pymcl's mcl is not built for BLS12-381 with 384-bit fields")


class _Precomputed(ctypes.Array[ctypes.c_uint64]):
    _type_ = ctypes.c_uint64
    _length_ = _lib.mclBn_getUint64NumToPrecompute()
    __reduce__ = _no_pickle


# Typed pointers: ctypes passes each struct by reference and refuses a struct of another
# kind (a G1 where a G2 belongs would make mcl read past its end).
_FR, _G1P, _G2P, _GTP = (ctypes.POINTER(t) for t in (_Fr, _G1, _G2, _GT))
_SIZE, _BUF = ctypes.c_size_t, ctypes.c_char_p


def _fn(name: str, restype: Any, *argtypes: Any) -> Any:
    f = getattr(_lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


# mcl checks G1/G2 subgroup membership on deserialization only when told to; say so (and
# _backend_self_check() proves it at import).
_fn("mclBn_verifyOrderG1", None, ctypes.c_int)(1)
_fn("mclBn_verifyOrderG2", None, ctypes.c_int)(1)

_fr_serialize = _fn("mclBnFr_serialize", _SIZE, _BUF, _SIZE, _FR)
_fr_deserialize = _fn("mclBnFr_deserialize", _SIZE, _FR, _BUF, _SIZE)
_fr_add = _fn("mclBnFr_add", None, _FR, _FR, _FR)
_fr_sub = _fn("mclBnFr_sub", None, _FR, _FR, _FR)
_fr_mul = _fn("mclBnFr_mul", None, _FR, _FR, _FR)
_fr_div = _fn("mclBnFr_div", None, _FR, _FR, _FR)
_fr_neg = _fn("mclBnFr_neg", None, _FR, _FR)
_fr_inv = _fn("mclBnFr_inv", None, _FR, _FR)
_fr_is_zero = _fn("mclBnFr_isZero", ctypes.c_int, _FR)
_fr_set_le_mod = _fn("mclBnFr_setLittleEndianMod", ctypes.c_int, _FR, _BUF, _SIZE)

_gt_serialize = _fn("mclBnGT_serialize", _SIZE, _BUF, _SIZE, _GTP)
_gt_deserialize = _fn("mclBnGT_deserialize", _SIZE, _GTP, _BUF, _SIZE)
_gt_mul = _fn("mclBnGT_mul", None, _GTP, _GTP, _GTP)
_gt_div = _fn("mclBnGT_div", None, _GTP, _GTP, _GTP)
_gt_pow = _fn("mclBnGT_pow", None, _GTP, _GTP, _FR)  # GLV: exact only inside GT
_gt_pow_generic = _fn("mclBnGT_powGeneric", None, _GTP, _GTP, _FR)  # exact on all of Fp12
_gt_pow_vec = _fn("mclBnGT_powVec", None, _GTP, ctypes.c_void_p, ctypes.c_void_p, _SIZE)
_gt_conjugate = _fn("mclBnGT_inv", None, _GTP, _GTP)  # mcl's unitaryInv: conj(f) = f^(p^6)
_gt_is_one = _fn("mclBnGT_isOne", ctypes.c_int, _GTP)
_gt_is_equal = _fn("mclBnGT_isEqual", ctypes.c_int, _GTP, _GTP)
_gt_set_int = _fn("mclBnGT_setInt32", None, _GTP, ctypes.c_int)
# Fp and Fp2 calls on coefficients inside a GT struct (passed as raw addresses).
_fp_neg = _fn("mclBnFp_neg", None, ctypes.c_void_p, ctypes.c_void_p)
_fp2_neg = _fn("mclBnFp2_neg", None, ctypes.c_void_p, ctypes.c_void_p)
_fp2_mul_raw = _fn("mclBnFp2_mul", None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_fp2_deserialize = _fn("mclBnFp2_deserialize", _SIZE, ctypes.c_void_p, _BUF, _SIZE)

_LINES = ctypes.POINTER(_Precomputed)
_pairing = _fn("mclBn_pairing", None, _GTP, _G1P, _G2P)
_precompute_g2 = _fn("mclBn_precomputeG2", None, _LINES, _G2P)
_precomputed_miller_loop = _fn("mclBn_precomputedMillerLoop", None, _GTP, _G1P, _LINES)
_final_exp = _fn("mclBn_finalExp", None, _GTP, _GTP)


def _serialize(fn: Any, x: Any, size: int) -> bytes:
    buf = ctypes.create_string_buffer(size)
    if fn(buf, size, x) != size:  # pragma: no cover - mcl always writes the full size
        raise CryptoInvariantError("backend serialization failed")
    return buf.raw


def _fr_from_int(v: int) -> _Fr:
    out = _Fr()
    if not _fr_deserialize(out, (v % R).to_bytes(SCALAR_BYTES, "little"), SCALAR_BYTES):
        raise CryptoInvariantError("scalar out of range")  # pragma: no cover - reduced mod r
    return out


def _fr_bytes(x: _Fr) -> bytes:
    return _serialize(_fr_serialize, x, SCALAR_BYTES)


_Out = TypeVar("_Out", bound=ctypes.Array[ctypes.c_uint64])


def _result(kind: type[_Out], fn: Any, *args: Any) -> _Out:
    """``fn(out, *args)`` into a fresh ``kind``: how mcl's C API returns a value."""
    out = kind()
    fn(out, *args)
    return out


def _fr_op(fn: Any, x: _Fr, y: _Fr) -> _Fr:
    return _result(_Fr, fn, x, y)


def _fr_from_wide(data: bytes) -> _Fr:
    """The 64 little-endian bytes ``data`` reduced mod r, by the backend."""
    out = _Fr()
    if len(data) != 2 * SCALAR_BYTES or _fr_set_le_mod(out, data, len(data)) != 0:
        raise CryptoInvariantError("wide scalar not reduced")  # pragma: no cover
    return out


def _random_fr_nonzero() -> _Fr:
    """A uniform nonzero scalar from 64 OS-random bytes, reduced mod r (bias < 2^-256)."""
    while True:
        out = _fr_from_wide(_urandom(64))
        if not _fr_is_zero(out):
            return out


class Scalar:
    """An element of Z/rZ. Treated as secret: redacted ``repr``, unhashable."""

    __slots__ = ("_fr",)

    def __init__(self, fr: _Fr) -> None:
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
        return cls(_fr_from_int(int.from_bytes(data, "little")))

    def expose_bytes(self) -> bytes:
        """The 32-byte encoding. Named so that exporting a secret scalar is explicit."""
        return _fr_bytes(self._fr)

    def is_zero(self) -> bool:
        return bool(_fr_is_zero(self._fr))

    def __add__(self, other: Scalar) -> Scalar:
        return Scalar(_fr_op(_fr_add, self._fr, other._fr))

    def __sub__(self, other: Scalar) -> Scalar:
        return Scalar(_fr_op(_fr_sub, self._fr, other._fr))

    def __neg__(self) -> Scalar:
        return Scalar(_result(_Fr, _fr_neg, self._fr))

    def __mul__(self, other: Scalar) -> Scalar:
        return Scalar(_fr_op(_fr_mul, self._fr, other._fr))

    def inverse(self) -> Scalar:
        if self.is_zero():
            raise CryptoInvariantError("inverse of zero scalar")
        return Scalar(_result(_Fr, _fr_inv, self._fr))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scalar):
            return NotImplemented
        return hmac.compare_digest(self.expose_bytes(), other.expose_bytes())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "<Scalar [redacted]>"


_SHA256: Final = hashes.SHA256()


def hash_to_scalar(label: bytes, data: bytes) -> Scalar:
    """HKDF-SHA256 of ``data`` under ``label``, 64 bytes reduced mod r (bias < 2^-256)."""
    okm = HKDF(algorithm=_SHA256, length=64, salt=None, info=label).derive(data)
    return Scalar(_fr_from_wide(okm))


def _blind() -> _Fr:
    return _random_fr_nonzero()


_Point = TypeVar("_Point", _G1, _G2)


class _Ops(Generic[_Point]):
    """The backend calls of one curve group (mcl's ``mclBnG1_*`` or ``mclBnG2_*``)."""

    def __init__(self, kind: type[_Point], prefix: str, size: int) -> None:
        self.kind: type[_Point] = kind
        self.size = size
        ptr = ctypes.POINTER(kind)
        self.ser = _fn(f"{prefix}_serialize", _SIZE, _BUF, _SIZE, ptr)
        self.de = _fn(f"{prefix}_deserialize", _SIZE, ptr, _BUF, _SIZE)
        self.add = _fn(f"{prefix}_add", None, ptr, ptr, ptr)
        self.sub = _fn(f"{prefix}_sub", None, ptr, ptr, ptr)
        self.neg = _fn(f"{prefix}_neg", None, ptr, ptr)
        self.mul = _fn(f"{prefix}_mul", None, ptr, ptr, _FR)
        vec = ctypes.c_void_p  # a ctypes array of points, or of scalars
        self.mul_vec = _fn(f"{prefix}_mulVec", None, ptr, vec, vec, _SIZE)
        self.normalize_vec = _fn(f"{prefix}_normalizeVec", None, vec, vec, _SIZE)
        self.is_zero = _fn(f"{prefix}_isZero", ctypes.c_int, ptr)
        self.eq = _fn(f"{prefix}_isEqual", ctypes.c_int, ptr, ptr)

    def binary(self, fn: Any, x: _Point, y: Any) -> _Point:
        return _result(self.kind, fn, x, y)

    def load(self, raw: bytes) -> _Point | None:
        """The point these bytes encode, validated by mcl (curve, subgroup), or None."""
        out = self.kind()
        return out if self.de(out, raw, self.size) == self.size else None


_G1_OPS: Final = _Ops(_G1, "mclBnG1", G1_BYTES)
_G2_OPS: Final = _Ops(_G2, "mclBnG2", G2_BYTES)


# --- fixed-base tables for the generators -----------------------------------------------
#
# A multiplication by a generator G reads a table instead of doubling. With the scalar's 32
# little-endian bytes k_i, k·G = Σ_i T[i][k_i], where T[i][d] = (d·256^i)·G: at most 31
# additions (products, in GT) and no doubling. A table has 32 rows of 255 entries and is
# built on first use: 1.2 MB for G1, 2.4 MB for G2 (points kept normalized, z = 1, so each
# addition is a cheaper mixed one), 4.7 MB for GT.

_ROWS: Final[int] = SCALAR_BYTES


class _FixedBase(Generic[_Out]):
    """Multiples of one fixed element from a table (``op`` is its group's addition)."""

    def __init__(
        self, kind: type[_Out], base: _Out, op: Any, identity: Callable[[], _Out], normalize: Any
    ) -> None:
        self._kind, self._base, self._op = kind, base, op
        self._identity, self._normalize = identity, normalize
        self._rows: list[list[_Out]] | None = None
        self._lock = threading.Lock()

    def _table(self) -> list[list[_Out]]:
        with self._lock:
            if self._rows is None:
                kind, op = self._kind, self._op
                table = (kind * (_ROWS * 256))()  # entry 0 of each row stays unused
                step = kind.from_buffer_copy(self._base)
                for i in range(_ROWS):
                    row = 256 * i
                    table[row + 1] = step
                    for d in range(2, 256):
                        op(table[row + d], table[row + d - 1], step)
                    op(step, table[row + 255], step)  # 256·step: the next row's unit
                if self._normalize is not None:
                    self._normalize(table, table, len(table))
                self._rows = [[table[256 * i + d] for d in range(256)] for i in range(_ROWS)]
            return self._rows

    def times(self, k: _Fr) -> _Out:
        """k·base (variable-time in k: callers blind secret scalars)."""
        rows = self._rows if self._rows is not None else self._table()
        op, acc = self._op, None
        for row, d in zip(rows, _fr_bytes(k), strict=True):
            if d:
                if acc is None:
                    acc = self._kind.from_buffer_copy(row[d])
                else:
                    op(acc, acc, row[d])
        return acc if acc is not None else self._identity()


# Tables by the address of the generator's backend value (registered once the generators
# exist; they live as long as the module, so their addresses are never reused).
_FIXED: dict[int, _FixedBase[Any]] = {}


# The backend calls that take a scalar. Tests wrap these to check that a secret scalar is
# never handed to the backend as it is.
def _backend_mul(ops: _Ops[_Point], x: _Point, k: _Fr) -> _Point:
    fixed = _FIXED.get(ctypes.addressof(x))
    if fixed is not None:
        out: _Point = fixed.times(k)
        return out
    return ops.binary(ops.mul, x, k)


def _backend_pow(x: _GT, k: _Fr) -> _GT:
    fixed = _FIXED.get(ctypes.addressof(x))
    if fixed is not None:
        out: _GT = fixed.times(k)
        return out
    return _result(_GT, _gt_pow, x, k)


def _backend_mul_vec(ops: _Ops[_Point], xs: tuple[_Point, ...], ks: tuple[_Fr, ...]) -> _Point:
    """Σ ks[i]·xs[i] in one multi-scalar multiplication (shared doublings)."""
    n = len(xs)
    out = ops.kind()
    ops.mul_vec(out, (ops.kind * n)(*xs), (_Fr * n)(*ks), n)
    return out


def _backend_pow_vec(xs: tuple[_GT, ...], ks: tuple[_Fr, ...]) -> _GT:
    """Π xs[i]^ks[i] in one multi-exponentiation (shared squarings; GT elements only)."""
    n = len(xs)
    out = _GT()
    _gt_pow_vec(out, (_GT * n)(*xs), (_Fr * n)(*ks), n)
    return out


def _blinded_mul(ops: _Ops[_Point], x: _Point, k: _Fr) -> _Point:
    """k·x as (b·x) + ((k - b)·x) with a fresh random b: no backend call sees k."""
    b = _blind()
    rest = _fr_op(_fr_sub, k, b)
    if ctypes.addressof(x) in _FIXED:
        return ops.binary(ops.add, _backend_mul(ops, x, b), _backend_mul(ops, x, rest))
    return _backend_mul_vec(ops, (x, x), (b, rest))


class _CurvePoint(Generic[_Point]):
    """What G1 and G2 share; each subclass names its backend calls and its name."""

    __slots__ = ("_p", "_raw")
    _ops: ClassVar[_Ops[Any]]
    _name: ClassVar[str]

    def __init__(self, point: _Point, raw: bytes | None = None) -> None:
        self._p: _Point = point
        self._raw = raw  # the encoding, once known (decoded from it, or serialized once)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and validate: exact length, canonical, on the curve, in the prime-order
        subgroup, not the identity."""
        ops, name = cls._ops, cls._name
        if len(data) != ops.size:
            raise MalformedInputError(f"{name} point: expected {ops.size} bytes, got {len(data)}")
        data = bytes(data)
        point = ops.load(data)
        if point is None:
            raise MalformedInputError(f"{name} point: not a point of the prime-order subgroup")
        if ops.is_zero(point):
            raise MalformedInputError(f"{name} point: the identity is not allowed")
        if _serialize(ops.ser, point, ops.size) != data:  # mcl refuses these too
            raise MalformedInputError(f"{name} point: non-canonical encoding")
        return cls(point, data)

    def to_bytes(self) -> bytes:
        if self._raw is None:
            self._raw = _serialize(self._ops.ser, self._p, self._ops.size)
        return self._raw

    def mul_secret(self, k: Scalar) -> Self:
        """``k·self`` for a secret ``k``, as b·self + (k - b)·self with a fresh random b."""
        return type(self)(_blinded_mul(self._ops, self._p, k._fr))

    def mul_public(self, k: Scalar) -> Self:
        """``k·self`` for a public ``k`` (variable-time)."""
        return type(self)(_backend_mul(self._ops, self._p, k._fr))

    def is_identity(self) -> bool:
        return bool(self._ops.is_zero(self._p))

    def __add__(self, other: Self) -> Self:
        return type(self)(self._ops.binary(self._ops.add, self._p, other._p))

    def __sub__(self, other: Self) -> Self:
        return type(self)(self._ops.binary(self._ops.sub, self._p, other._p))

    def __neg__(self) -> Self:
        return type(self)(_result(self._ops.kind, self._ops.neg, self._p))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, _CurvePoint):
            return NotImplemented
        return bool(self._ops.eq(self._p, other._p))

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"{self._name}({self.to_bytes().hex()[:16]}…)"


class G1(_CurvePoint[_G1]):
    """A point of G1 (the prime-order subgroup of E(Fp))."""

    __slots__ = ()
    _ops = _G1_OPS
    _name = "G1"

    @classmethod
    def generator(cls) -> G1:
        return _G1_GEN


class G2(_CurvePoint[_G2]):
    """A point of G2 (the prime-order subgroup of the twist over Fp2)."""

    __slots__ = ("_lines",)
    _ops = _G2_OPS
    _name = "G2"

    def __init__(self, point: _G2, raw: bytes | None = None) -> None:
        super().__init__(point, raw)
        self._lines: _Precomputed | None = None

    @classmethod
    def generator(cls) -> G2:
        return _G2_GEN

    def prepare(self) -> Self:
        """Precompute this point's Miller-loop lines (about 20 KB), for a point that is
        paired again and again (a private key's sk·P2, the generator): each later
        :func:`pair` with it skips the line computations. Returns ``self``."""
        if self._lines is None:
            lines = _Precomputed()
            _precompute_g2(lines, self._p)
            self._lines = lines
        return self


# --- GT membership -----------------------------------------------------------------------
#
# f ∈ GT  ⇔  f^r = 1. We test it as: f·conj(f) = 1 (f is unitary, its order divides p^6+1)
# and f^|u| = conj(f^p) (for unitary f, conj(f^p) = f^(-p), so this is f^(p-u) = 1). Since
# gcd(p^6+1, p-u) = r (checked in the tests), both together hold exactly when f^r = 1.
# conj(f) = f^(p^6) negates the w-part (mcl's unitaryInv); f^p is the Frobenius map, computed
# on the coefficients with mcl's Fp2 arithmetic; f^|u| is mcl's generic pow, exact on every
# element of Fp12 (unlike its GLV pow, which is exact only inside GT). The costly part is
# the 63 squarings of f^|u|; a shorter exponent cannot do (docs/crypto.md §3), and no test
# covering several elements at once is sound here, because U/GT has elements of order 2.
# _backend_self_check() checks the Frobenius and the pow against plain Python at import.
#
# _frobenius and _pow_generic below are the plain-Python references that the import check
# and the tests compare the backend with; _pow_half_u (mcl's GLV pow, exact for exponents
# below |u|, which _MCL_POW_EXACT checks) is what the tests use on crafted elements.


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


def _gt_load(raw: bytes) -> _GT | None:
    """The element these 576 bytes encode, or None if a coefficient is not below p."""
    out = _GT()
    return out if _gt_deserialize(out, raw, GT_BYTES) == GT_BYTES else None


def _from_coeffs(c: list[int]) -> _GT:
    out = _gt_load(_to_bytes(c))
    if out is None:  # pragma: no cover - coefficients are reduced mod p
        raise CryptoInvariantError("GT coefficients out of range")
    return out


def _gt_bytes(x: _GT) -> bytes:
    return _serialize(_gt_serialize, x, GT_BYTES)


def _gt_op(fn: Any, x: _GT, y: _GT) -> _GT:
    return _result(_GT, fn, x, y)


def _gt_one() -> _GT:
    return _result(_GT, _gt_set_int, 1)


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


def _fp2_struct(v: tuple[int, int]) -> ctypes.Array[ctypes.c_uint64]:
    out = (ctypes.c_uint64 * (2 * _FP_WORDS))()
    raw = v[0].to_bytes(_FP_BYTES, "little") + v[1].to_bytes(_FP_BYTES, "little")
    if _fp2_deserialize(out, raw, 2 * _FP_BYTES) != 2 * _FP_BYTES:  # pragma: no cover
        raise CryptoInvariantError("gamma did not load")
    return out


_GAMMA_FP2: Final = tuple(_fp2_struct(g) for g in _GAMMA)
# (byte offset of the Fp2 coefficient in the struct, its gamma, whether conj negates it),
# in the order of _frobenius above: mcl keeps the twelve Fp values in serialization order.
_FROBENIUS_STEPS: Final = tuple(
    (_FP_BYTES * (6 * s + 2 * t), _GAMMA_FP2[2 * t + s] if 2 * t + s else None, s == 1)
    for s in (0, 1)
    for t in (0, 1, 2)
)


def _frobenius_conjugate(f: _GT) -> _GT:
    """conj(f^p), computed in the backend; equal to _frobenius(c, conjugate_after=True)."""
    out = _GT.from_buffer_copy(f)
    base = ctypes.addressof(out)
    for offset, gamma, negate in _FROBENIUS_STEPS:
        a = base + offset
        _fp_neg(a + _FP_BYTES, a + _FP_BYTES)  # conjugate the Fp2 coefficient
        if gamma is not None:
            _fp2_mul_raw(a, a, gamma)
        if negate:
            _fp2_neg(a, a)
    return out


def _conjugate(c: list[int]) -> list[int]:
    return c[:6] + [-v % P for v in c[6:]]


def _pow_generic(x: _GT, e: int) -> _GT:
    result = _gt_one()
    for bit in bin(e)[2:]:
        result = _gt_op(_gt_mul, result, result)
        if bit == "1":
            result = _gt_op(_gt_mul, result, x)
    return result


def _pow_exact_self_check() -> bool:
    """True if mcl's (GLV) pow gives the exact power for |u|/2 on a unitary element
    outside GT."""
    seed = [(7 * i * i + 3 * i + 1) % P for i in range(12)]
    f0 = _from_coeffs(seed)
    unitary = _gt_op(_gt_div, _from_coeffs(_conjugate(seed)), f0)  # f0^(p^6-1): not in GT
    return _gt_bytes(_backend_pow(unitary, _fr_from_int(_HALF_U))) == _gt_bytes(
        _pow_generic(unitary, _HALF_U)
    )


_MCL_POW_EXACT: Final[bool] = _pow_exact_self_check()
_HALF_U_FR: Final[_Fr] = _fr_from_int(_HALF_U)
_U_ABS_FR: Final[_Fr] = _fr_from_int(_U_ABS)


def _pow_half_u(f: _GT) -> _GT:
    """f^(|u|/2), exact on every element."""
    if _MCL_POW_EXACT:
        return _backend_pow(f, _HALF_U_FR)
    return _pow_generic(f, _HALF_U)  # pragma: no cover - only if mcl changes behaviour


def _in_gt(f: _GT) -> bool:
    """Exact test of f^r = 1 (see the comment above)."""
    if not _gt_is_one(_gt_op(_gt_mul, f, _result(_GT, _gt_conjugate, f))):
        return False  # not unitary (this also rejects zero)
    power = _result(_GT, _gt_pow_generic, f, _U_ABS_FR)
    return bool(_gt_is_equal(power, _frobenius_conjugate(f)))


class GT:
    """An element of GT, the order-r subgroup of Fp12* that pairings land in."""

    __slots__ = ("_e", "_raw")

    def __init__(self, element: _GT, raw: bytes | None = None) -> None:
        self._e = element
        self._raw = raw  # the encoding, once known

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
        element = _gt_load(data)
        if element is None:
            raise MalformedInputError("GT element: coefficient out of range")
        if _gt_bytes(element) != data:
            raise MalformedInputError("GT element: non-canonical encoding")
        if not _in_gt(element):
            raise MalformedInputError("GT element: not in the prime-order subgroup")
        return cls(element, data)

    def to_bytes(self) -> bytes:
        if self._raw is None:
            self._raw = _gt_bytes(self._e)
        return self._raw

    def pow_secret(self, k: Scalar) -> GT:
        """``self^k`` for a secret ``k``, as self^b · self^(k - b) with a fresh random b."""
        b = _blind()
        rest = _fr_op(_fr_sub, k._fr, b)
        if ctypes.addressof(self._e) in _FIXED:
            return GT(_gt_op(_gt_mul, _backend_pow(self._e, b), _backend_pow(self._e, rest)))
        return GT(_backend_pow_vec((self._e, self._e), (b, rest)))

    def pow_public(self, k: Scalar) -> GT:
        """``self^k`` for a public ``k`` (variable-time)."""
        return GT(_backend_pow(self._e, k._fr))

    def is_one(self) -> bool:
        return bool(_gt_is_one(self._e))

    def __mul__(self, other: GT) -> GT:
        return GT(_gt_op(_gt_mul, self._e, other._e))

    def __truediv__(self, other: GT) -> GT:
        # Every GT element is unitary, so its inverse is its conjugate: no Fp12 inversion.
        return GT(_gt_op(_gt_mul, self._e, _result(_GT, _gt_conjugate, other._e)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GT):
            return NotImplemented
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "<GT [redacted]>"


def pair(p: G1, q: G2) -> GT:
    """The optimal ate pairing e(p, q); faster when ``q`` was :meth:`G2.prepare`-d."""
    out = _GT()
    if q._lines is None:
        _pairing(out, p._p, q._p)
    else:
        miller = _GT()
        _precomputed_miller_loop(miller, p._p, q._lines)
        _final_exp(out, miller)
    return GT(out)


def _import_point(ops: _Ops[_Point], raw: bytes) -> _Point:
    out = ops.load(raw)
    if out is None:  # pragma: no cover - mcl's own generators
        raise CryptoInvariantError("backend generator did not load")
    return out


_G1_GEN: Final[G1] = G1(_import_point(_G1_OPS, bytes(pymcl.g1.serialize())))
_G2_GEN: Final[G2] = G2(_import_point(_G2_OPS, bytes(pymcl.g2.serialize()))).prepare()
_GT_GEN: Final[GT] = pair(_G1_GEN, _G2_GEN)
for _fixed in (
    _FixedBase(_G1, _G1_GEN._p, _G1_OPS.add, _G1, _G1_OPS.normalize_vec),
    _FixedBase(_G2, _G2_GEN._p, _G2_OPS.add, _G2, _G2_OPS.normalize_vec),
    _FixedBase(_GT, _GT_GEN._e, _gt_mul, _gt_one, None),
):
    _FIXED[ctypes.addressof(_fixed._base)] = _fixed
del _fixed


# --- checks of the backend at import ----------------------------------------------------


def _is_square(a: int) -> bool:
    """Whether a is a square in Fp (Euler's criterion)."""
    return a % P == 0 or pow(a, (P - 1) // 2, P) == 1


def _outside_subgroup_encodings() -> tuple[bytes, bytes]:
    """Compressed encodings of a G1 point and a G2 point that are on their curves but not in
    the prime-order subgroups (the cofactors are large, so the first such x serves)."""
    x = next(x for x in range(2, 1000) if _is_square(x**3 + 4))
    g1 = x.to_bytes(_FP_BYTES, "little")
    # On the twist y² = x³ + 4(1 + i) with x = x0 + i: square iff its norm is a square in Fp.
    for x0 in range(2, 1000):
        c0 = (x0**3 - 3 * x0 + 4) % P  # (x0 + i)³ = x0³ - 3x0 + (3x0² - 1)i
        c1 = (3 * x0 * x0 - 1 + 4) % P
        if _is_square(c0 * c0 + c1 * c1):
            return g1, x0.to_bytes(_FP_BYTES, "little") + (1).to_bytes(_FP_BYTES, "little")
    raise CryptoInvariantError("no test point found")  # pragma: no cover


def _writes_within(kind: type[ctypes.Array[ctypes.c_uint64]], op: Callable[[Any], object]) -> bool:
    """Whether ``op(out)`` writes only inside a ``kind`` (checked on a padded buffer)."""
    words, pad, mark = ctypes.sizeof(kind) // 8, 4, 0xA5A5A5A5A5A5A5A5
    buf = (ctypes.c_uint64 * (words + pad))(*([mark] * (words + pad)))
    op(ctypes.cast(buf, ctypes.POINTER(kind)))
    return all(w == mark for w in buf[words:])


def _gt_backend_is_exact() -> bool:
    """The backend's Frobenius and generic pow match plain Python on an element outside GT."""
    seed = [(11 * i * i + 5 * i + 2) % P for i in range(12)]
    f0 = _from_coeffs(seed)
    unitary = _gt_op(_gt_div, _from_coeffs(_conjugate(seed)), f0)  # f0^(p^6-1): not in GT
    for f in (f0, unitary):
        frobenius = _to_bytes(_frobenius(_coeffs(_gt_bytes(f)), conjugate_after=True))
        if _gt_bytes(_frobenius_conjugate(f)) != frobenius:
            return False
    power = _result(_GT, _gt_pow_generic, unitary, _U_ABS_FR)
    return _gt_bytes(power) == _gt_bytes(_pow_generic(unitary, _U_ABS))


def _backend_self_check() -> None:
    """mcl writes no more than our structs hold, refuses points outside the subgroups, and
    computes the GT membership test's Frobenius and pow exactly."""
    one = _fr_from_int(1)
    g1, g2, gt = _G1_GEN._p, _G2_GEN._p, _GT_GEN._e
    sized = (
        _writes_within(_Fr, lambda out: _fr_add(out, one, one))
        and _writes_within(_G1, lambda out: _G1_OPS.add(out, g1, g1))
        and _writes_within(_G2, lambda out: _G2_OPS.add(out, g2, g2))
        and _writes_within(_GT, lambda out: _gt_mul(out, gt, gt))
        and _writes_within(_Precomputed, lambda out: _precompute_g2(out, g2))
    )
    bad_g1, bad_g2 = _outside_subgroup_encodings()
    if (
        not sized
        or _G1_OPS.load(bad_g1) is not None
        or _G2_OPS.load(bad_g2) is not None
        or not _gt_backend_is_exact()
    ):
        raise ImportError("pymcl's mcl does not behave as this module requires")


_backend_self_check()
