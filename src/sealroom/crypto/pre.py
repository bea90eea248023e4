"""Transform cryptography: multi-hop, unidirectional proxy re-encryption on BLS12-381.

The scheme is Wang-Cao with Cai-Liu's multi-hop extension, as IronCore's recrypt builds it
(Wall and Walsh, SCC '18), with the hygiene of docs/crypto.md. Notation (docs/crypto.md has
the full derivation): P1, P2 generate G1, G2; e is the pairing; h(K) hashes a GT element to
a scalar under its own label, so "hash to G2" is h(K)·P2.

* key pair: a random, A = a·P1.
* encrypt m ∈ GT to A: k random, R = k·P1, C = m·e(A, P2)^k, auth = H(R, m).
* transform key a → B: temp key K ∈ GT and x random; X = x·P1, E = K·e(B, P2)^x,
  H = (h(K) - a)·P2. The key service augments it: H ← H - s·P2.
* transform (one hop with key (X, E, H) to B): fresh K', x'; T = H + h(K')·P2;
  the newest block's GT values (or C at level 0) are multiplied by e(·, T), and a new block
  (X, E, x'·P1, K'·e(B, P2)^x') is appended.
* decrypt with b at level n: unwrap the newest block with b, get s = h(K) + h(K'), and walk
  back, each block unwrapped with s·P2; finally m = C / e(s·R, P2).

Every ciphertext carries an *origin* signature by its encryptor over (R, auth). Each
transform re-signs the whole value with the transformer's key. Decryption checks both
against signers the caller pins, then the auth hash; any failure raises the one opaque
:class:`~sealroom.errors.DecryptionError`.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealroom.crypto import labels
from sealroom.crypto.pairing import (
    G1,
    G1_BYTES,
    G2,
    G2_BYTES,
    GT,
    GT_BYTES,
    SCALAR_BYTES,
    Scalar,
    hash_to_scalar,
    pair,
)
from sealroom.crypto.secret import Secret
from sealroom.crypto.signing import (
    SIGNATURE_BYTES,
    VERIFYING_KEY_BYTES,
    SigningKey,
    VerifyingKey,
    verify_pinned,
)
from sealroom.crypto.wire import (
    TAG_ENCRYPTED_VALUE,
    TAG_PRIVATE_KEY,
    TAG_PUBLIC_KEY,
    TAG_TRANSFORM_KEY,
    Reader,
    header,
)
from sealroom.errors import (
    CryptoInvariantError,
    DecryptionError,
    MalformedInputError,
    SealroomError,
    SignatureError,
)

__all__ = [
    "AUTH_HASH_BYTES",
    "MAX_LEVEL",
    "AugmentationSecret",
    "EncryptedValue",
    "Plaintext",
    "PrivateKey",
    "PublicKey",
    "SymmetricKey",
    "TransformBlock",
    "TransformKey",
    "VerifiedTransformKey",
    "augment_private_key",
    "augment_public_key",
    "augment_transform_key",
    "decrypt",
    "derive_private_key",
    "derive_symmetric_key",
    "encrypt",
    "generate_key_pair",
    "generate_plaintext",
    "generate_transform_key",
    "transform",
]

#: Most hops a value may carry (group→user→device is two).
MAX_LEVEL: Final[int] = 8
AUTH_HASH_BYTES: Final[int] = 32
_BLOCK_BYTES: Final[int] = 2 * G1_BYTES + 2 * GT_BYTES
_G1_PAIRING_CACHE_SIZE: Final[int] = 4096
#: Transform keys whose unwrapped temp key a private key keeps (PrivateKey above).
_UNWRAPPED_PER_KEY: Final[int] = 16
_UNWRAPPED_LOCK: Final = threading.Lock()


# --- keys ----------------------------------------------------------------------------------


class PublicKey:
    """A PRE public key A = a·P1 (possibly augmented: A + S)."""

    __slots__ = ("_pairing", "point")

    def __init__(self, point: G1) -> None:
        if point.is_identity():
            raise MalformedInputError("public key: the identity is not allowed")
        self.point = point
        self._pairing: GT | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        r = Reader(data, "public key")
        r.expect_header(TAG_PUBLIC_KEY)
        point = G1.from_bytes(r.take(G1_BYTES))
        r.finish()
        return cls(point)

    def to_bytes(self) -> bytes:
        return header(TAG_PUBLIC_KEY) + self.point.to_bytes()

    def pairing_with_p2(self) -> GT:
        """e(A, P2), cached on this object and in a bounded per-process cache."""
        if self._pairing is None:
            key = self.point.to_bytes()
            cached = _PAIRING_CACHE.get(key)
            if cached is None:
                cached = pair(self.point, G2.generator())
                _PAIRING_CACHE[key] = cached
                if len(_PAIRING_CACHE) > _G1_PAIRING_CACHE_SIZE:
                    _PAIRING_CACHE.popitem(last=False)
            self._pairing = cached
        return self._pairing

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.point == other.point

    def __hash__(self) -> int:
        return hash(self.point)

    def __repr__(self) -> str:
        return f"PublicKey({self.point.to_bytes().hex()[:16]}…)"


_PAIRING_CACHE: OrderedDict[bytes, GT] = OrderedDict()


class _SecretScalar(Secret):
    """A nonzero secret scalar k with k·P1 and k·P2 computed once (blinded) and cached."""

    __slots__ = ("_g2", "_public", "scalar")
    _what = "secret scalar"

    def __init__(self, scalar: Scalar, encoding: bytes) -> None:
        if scalar.is_zero():
            raise MalformedInputError(f"{self._what}: zero is not allowed")
        super().__init__(encoding)
        self.scalar = scalar
        self._public: PublicKey | None = None
        self._g2: G2 | None = None

    def _times_p1(self) -> PublicKey:
        if self._public is None:
            self._public = PublicKey(G1.generator().mul_secret(self.scalar))
        return self._public

    def times_p2(self) -> G2:
        """k·P2: every decryption (and every augmentation) uses it."""
        if self._g2 is None:
            self._g2 = G2.generator().mul_secret(self.scalar)
        return self._g2


class PrivateKey(_SecretScalar):
    """A PRE private key a ∈ Z/rZ, nonzero. Serialized only by ``expose_secret_bytes``."""

    __slots__ = ("_unwrapped",)
    _what = "private key"

    def __init__(self, scalar: Scalar) -> None:
        super().__init__(scalar, header(TAG_PRIVATE_KEY) + scalar.expose_bytes())
        self._unwrapped: OrderedDict[bytes, Scalar] = OrderedDict()

    def _unwrap_transform_key_part(self, public_key: G1, encrypted_temp_key: GT) -> Scalar:
        """h(E / e(X, b·P2)) for the (X, E) that the last transform key put in the newest block.

        Every value transformed with that key carries the same (X, E), so the result is kept,
        on this key only, for the last few transform keys (it is a function of X, E and this
        key alone).
        """
        tag = public_key.to_bytes() + encrypted_temp_key.to_bytes()
        with _UNWRAPPED_LOCK:
            known = self._unwrapped.get(tag)
            if known is not None:
                self._unwrapped.move_to_end(tag)
                return known
        known = _h(encrypted_temp_key / pair(public_key, self.times_p2().prepare()))
        with _UNWRAPPED_LOCK:
            self._unwrapped[tag] = known
            if len(self._unwrapped) > _UNWRAPPED_PER_KEY:
                self._unwrapped.popitem(last=False)
        return known

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> PrivateKey:
        r = Reader(data, "private key")
        r.expect_header(TAG_PRIVATE_KEY)
        scalar = Scalar.from_bytes(r.take(SCALAR_BYTES))
        r.finish()
        return cls(scalar)

    def public_key(self) -> PublicKey:
        """a·P1."""
        return self._times_p1()


def generate_key_pair() -> tuple[PrivateKey, PublicKey]:
    """A fresh key pair (users, groups and devices each have one)."""
    private = PrivateKey(Scalar.random())
    return private, private.public_key()


class AugmentationSecret(_SecretScalar):
    """The key service's secret s. Users' public keys are A + s·P1."""

    __slots__ = ()
    _what = "augmentation secret"

    def __init__(self, scalar: Scalar) -> None:
        super().__init__(scalar, scalar.expose_bytes())

    @classmethod
    def generate(cls) -> AugmentationSecret:
        return cls(Scalar.random())

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> AugmentationSecret:
        return cls(Scalar.from_bytes(data))

    def public_part(self) -> PublicKey:
        """S = s·P1, which the service publishes so clients can form A + S."""
        return self._times_p1()


def augment_public_key(public: PublicKey, service_part: PublicKey) -> PublicKey:
    """A + S: the public key others encrypt to."""
    return PublicKey(public.point + service_part.point)


def augment_private_key(private: PrivateKey, secret: AugmentationSecret) -> PrivateKey:
    """a + s mod r: the private key matching A + S."""
    return PrivateKey(private.scalar + secret.scalar)


# --- plaintexts and derived keys ------------------------------------------------------------


class Plaintext(Secret):
    """A PRE plaintext: a random GT element from which DEKs are derived."""

    __slots__ = ("element",)

    def __init__(self, element: GT) -> None:
        super().__init__(element.to_bytes())
        self.element = element

    @classmethod
    def from_secret_bytes(cls, data: bytes) -> Plaintext:
        return cls(GT.from_bytes(data))


class SymmetricKey(Secret):
    """A 256-bit AES-GCM key derived from a plaintext."""

    __slots__ = ()


def generate_plaintext() -> Plaintext:
    """A fresh uniform GT element."""
    return Plaintext(GT.random())


def derive_symmetric_key(plaintext: Plaintext) -> SymmetricKey:
    """HKDF-SHA256 of the plaintext under the DEK label."""
    okm = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=labels.DEK).derive(
        plaintext.expose_secret_bytes()
    )
    return SymmetricKey(okm)


def derive_private_key(plaintext: Plaintext) -> PrivateKey:
    """A private key from a plaintext, under its own label (never equal to a DEK)."""
    return PrivateKey(hash_to_scalar(labels.DERIVED_PRIVATE_KEY, plaintext.expose_secret_bytes()))


def _h(element: GT) -> Scalar:
    return hash_to_scalar(labels.HASH_TO_G2, element.to_bytes())


def _auth_hash(ephemeral: G1, plaintext: GT) -> bytes:
    d = hashlib.sha256(labels.AUTH_HASH)
    d.update(ephemeral.to_bytes())
    d.update(plaintext.to_bytes())
    return d.digest()


# --- ciphertexts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransformBlock:
    """What one hop appends: the transform key's (X, E) and the hop's randomizer."""

    #: X = x·P1 from the transform key.
    public_key: G1
    #: E, the transform key's temp key encrypted to its delegatee (later re-randomized).
    encrypted_temp_key: GT
    #: x'·P1 for the hop's fresh randomizer.
    random_transform_public_key: G1
    #: The hop's random temp key K' encrypted to the delegatee.
    encrypted_random_transform_temp_key: GT

    def to_bytes(self) -> bytes:
        return (
            self.public_key.to_bytes()
            + self.encrypted_temp_key.to_bytes()
            + self.random_transform_public_key.to_bytes()
            + self.encrypted_random_transform_temp_key.to_bytes()
        )

    @classmethod
    def read(cls, r: Reader) -> TransformBlock:
        return cls(
            G1.from_bytes(r.take(G1_BYTES)),
            GT.from_bytes(r.take(GT_BYTES)),
            G1.from_bytes(r.take(G1_BYTES)),
            GT.from_bytes(r.take(GT_BYTES)),
        )


@dataclass(frozen=True, slots=True)
class EncryptedValue:
    """A PRE ciphertext (an EDEK) at level ``len(blocks)``.

    Wire format v1: version, tag 0x11, level (u8), R (48), C (576), auth hash (32), origin
    signer (32), origin signature (64), then ``level`` blocks of 1,248 bytes, then, if
    level ≥ 1, the transformer's key (32) and its signature (64) over everything before it.
    """

    #: R = k·P1.
    ephemeral_public_key: G1
    #: C, the plaintext masked (and re-masked by each hop).
    encrypted_message: GT
    #: H(R, m): binds the plaintext.
    auth_hash: bytes
    #: The encryptor's Ed25519 key and its signature over (R, auth hash).
    origin_signer: bytes
    origin_signature: bytes
    #: One block per hop, oldest first.
    blocks: tuple[TransformBlock, ...] = ()
    #: The last transformer's Ed25519 key and its signature over the whole value (level ≥ 1).
    transform_signer: bytes = b""
    transform_signature: bytes = b""

    @property
    def level(self) -> int:
        return len(self.blocks)

    def _body(self) -> bytes:
        return b"".join(
            [
                header(TAG_ENCRYPTED_VALUE),
                bytes((self.level,)),
                self.ephemeral_public_key.to_bytes(),
                self.encrypted_message.to_bytes(),
                self.auth_hash,
                self.origin_signer,
                self.origin_signature,
                *(b.to_bytes() for b in self.blocks),
            ]
        )

    def to_bytes(self) -> bytes:
        if self.level == 0:
            return self._body()
        return self._body() + self.transform_signer + self.transform_signature

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedValue:
        r = Reader(data, "encrypted value")
        r.expect_header(TAG_ENCRYPTED_VALUE)
        level = r.u8()
        if level > MAX_LEVEL:
            raise MalformedInputError(f"encrypted value: level {level} exceeds {MAX_LEVEL}")
        expected = 3 + G1_BYTES + GT_BYTES + AUTH_HASH_BYTES + VERIFYING_KEY_BYTES
        expected += SIGNATURE_BYTES + level * _BLOCK_BYTES
        if level:
            expected += VERIFYING_KEY_BYTES + SIGNATURE_BYTES
        if len(data) != expected:
            raise MalformedInputError(
                f"encrypted value: expected {expected} bytes for level {level}, got {len(data)}"
            )
        ephemeral = G1.from_bytes(r.take(G1_BYTES))
        message = GT.from_bytes(r.take(GT_BYTES))
        auth = r.take(AUTH_HASH_BYTES)
        origin_signer = r.take(VERIFYING_KEY_BYTES)
        origin_signature = r.take(SIGNATURE_BYTES)
        blocks = tuple(TransformBlock.read(r) for _ in range(level))
        t_signer, t_sig = b"", b""
        if level:
            t_signer = r.take(VERIFYING_KEY_BYTES)
            t_sig = r.take(SIGNATURE_BYTES)
        r.finish()
        return cls(
            ephemeral, message, auth, origin_signer, origin_signature, blocks, t_signer, t_sig
        )


def _origin_message(ephemeral: G1, auth: bytes) -> bytes:
    return header(TAG_ENCRYPTED_VALUE) + ephemeral.to_bytes() + auth


def encrypt(plaintext: Plaintext, to: PublicKey, signer: SigningKey) -> EncryptedValue:
    """Encrypt ``plaintext`` to ``to`` and sign it as its origin."""
    k = Scalar.random()
    ephemeral = G1.generator().mul_secret(k)
    message = plaintext.element * to.pairing_with_p2().pow_secret(k)
    auth = _auth_hash(ephemeral, plaintext.element)
    signature = signer.sign(labels.SIG_ORIGIN, _origin_message(ephemeral, auth))
    return EncryptedValue(ephemeral, message, auth, signer.verifying_key.to_bytes(), signature)


# --- transform keys ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransformKey:
    """A signed delegation from one key pair to another. Verify it before use.

    Wire format v1: version, tag 0x21, X (48), from public key (48), to public key (48),
    E (576), H (96), signer (32), signature (64) over everything before it; 914 bytes.
    """

    #: X = x·P1.
    ephemeral_public_key: G1
    #: The delegator's public key (A, or A + S once augmented).
    from_public_key: PublicKey
    #: The delegatee's public key B.
    to_public_key: PublicKey
    #: E = K·e(B, P2)^x.
    encrypted_temp_key: GT
    #: H = (h(K) - a)·P2, or (h(K) - a - s)·P2 once augmented.
    hashed_temp_key: G2
    signer: bytes
    signature: bytes

    def _signed_part(self) -> bytes:
        return b"".join(
            [
                header(TAG_TRANSFORM_KEY),
                self.ephemeral_public_key.to_bytes(),
                self.from_public_key.point.to_bytes(),
                self.to_public_key.point.to_bytes(),
                self.encrypted_temp_key.to_bytes(),
                self.hashed_temp_key.to_bytes(),
                self.signer,
            ]
        )

    def to_bytes(self) -> bytes:
        return self._signed_part() + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> TransformKey:
        r = Reader(data, "transform key")
        r.expect_header(TAG_TRANSFORM_KEY)
        key = cls(
            G1.from_bytes(r.take(G1_BYTES)),
            PublicKey(G1.from_bytes(r.take(G1_BYTES))),
            PublicKey(G1.from_bytes(r.take(G1_BYTES))),
            GT.from_bytes(r.take(GT_BYTES)),
            G2.from_bytes(r.take(G2_BYTES)),
            r.take(VERIFYING_KEY_BYTES),
            r.take(SIGNATURE_BYTES),
        )
        r.finish()
        return key

    def verify(self, expected_signer: VerifyingKey) -> VerifiedTransformKey:
        """Check the signature against the pinned signer; the only way to get a usable key."""
        verify_pinned(
            expected_signer,
            self.signer,
            labels.SIG_TRANSFORM_KEY,
            self._signed_part(),
            self.signature,
        )
        return VerifiedTransformKey(self, _TOKEN)


_TOKEN: Final = object()


class VerifiedTransformKey:
    """A transform key whose signature was checked against a pinned signer."""

    __slots__ = ("key",)

    def __init__(self, key: TransformKey, token: object) -> None:
        if token is not _TOKEN:
            raise TypeError("VerifiedTransformKey is made only by TransformKey.verify()")
        self.key = key


def _sign_transform_key(
    *,
    ephemeral: G1,
    from_public: PublicKey,
    to_public: PublicKey,
    encrypted_temp_key: GT,
    hashed_temp_key: G2,
    signer: SigningKey,
) -> VerifiedTransformKey:
    unsigned = TransformKey(
        ephemeral,
        from_public,
        to_public,
        encrypted_temp_key,
        hashed_temp_key,
        signer.verifying_key.to_bytes(),
        b"",
    )
    signature = signer.sign(labels.SIG_TRANSFORM_KEY, unsigned._signed_part())
    key = TransformKey(
        ephemeral,
        from_public,
        to_public,
        encrypted_temp_key,
        hashed_temp_key,
        unsigned.signer,
        signature,
    )
    return VerifiedTransformKey(key, _TOKEN)


def generate_transform_key(
    from_private: PrivateKey, to_public: PublicKey, signer: SigningKey
) -> VerifiedTransformKey:
    """Delegate ``from_private``'s decryption rights to ``to_public`` (needs no other secret)."""
    temp_key = GT.random()
    x = Scalar.random()
    ephemeral = G1.generator().mul_secret(x)
    encrypted_temp_key = temp_key * to_public.pairing_with_p2().pow_secret(x)
    hashed = G2.generator().mul_secret(_h(temp_key) - from_private.scalar)
    return _sign_transform_key(
        ephemeral=ephemeral,
        from_public=from_private.public_key(),
        to_public=to_public,
        encrypted_temp_key=encrypted_temp_key,
        hashed_temp_key=hashed,
        signer=signer,
    )


def augment_transform_key(
    key: VerifiedTransformKey, secret: AugmentationSecret, service_signer: SigningKey
) -> VerifiedTransformKey:
    """The service's step: H ← H - s·P2, from key ← A + S, re-signed by the service."""
    k = key.key
    return _sign_transform_key(
        ephemeral=k.ephemeral_public_key,
        from_public=augment_public_key(k.from_public_key, secret.public_part()),
        to_public=k.to_public_key,
        encrypted_temp_key=k.encrypted_temp_key,
        hashed_temp_key=k.hashed_temp_key - secret.times_p2(),
        signer=service_signer,
    )


# --- transform -----------------------------------------------------------------------------


def _transform_signed_part(value: EncryptedValue, signer: bytes) -> bytes:
    return value._body() + signer


def transform(
    value: EncryptedValue,
    keys: Sequence[VerifiedTransformKey],
    signer: SigningKey,
    *,
    previous_transformer: VerifyingKey | None = None,
) -> EncryptedValue:
    """Apply one or more hops (e.g. group→user→device) and sign the result.

    A value that is already transformed is accepted only with its ``previous_transformer``
    pinned. Consecutive keys must chain (each key's delegatee is the next one's delegator).
    The proxy learns nothing about the plaintext.
    """
    if not keys:
        raise ValueError("transform needs at least one key")
    if value.level + len(keys) > MAX_LEVEL:
        raise MalformedInputError(f"transform would exceed {MAX_LEVEL} levels")
    if value.level:
        if previous_transformer is None:
            raise SignatureError("a transformed value needs its previous transformer pinned")
        verify_pinned(
            previous_transformer,
            value.transform_signer,
            labels.SIG_TRANSFORMED,
            _transform_signed_part(value, value.transform_signer),
            value.transform_signature,
        )
    for a, b in pairwise(keys):
        if a.key.to_public_key != b.key.from_public_key:
            raise ValueError("transform keys do not chain")

    message = value.encrypted_message
    blocks = list(value.blocks)
    for vkey in keys:
        key = vkey.key
        rand_temp_key = GT.random()
        x = Scalar.random()
        rand_public = G1.generator().mul_secret(x)
        rand_encrypted = rand_temp_key * key.to_public_key.pairing_with_p2().pow_secret(x)
        mask = key.hashed_temp_key + G2.generator().mul_secret(_h(rand_temp_key))
        if not blocks:
            message = message * pair(value.ephemeral_public_key, mask)
        else:
            last = blocks[-1]
            blocks[-1] = TransformBlock(
                last.public_key,
                last.encrypted_temp_key * pair(last.public_key, mask),
                last.random_transform_public_key,
                last.encrypted_random_transform_temp_key
                * pair(last.random_transform_public_key, mask),
            )
        blocks.append(
            TransformBlock(
                key.ephemeral_public_key, key.encrypted_temp_key, rand_public, rand_encrypted
            )
        )

    unsigned = EncryptedValue(
        value.ephemeral_public_key,
        message,
        value.auth_hash,
        value.origin_signer,
        value.origin_signature,
        tuple(blocks),
    )
    t_signer = signer.verifying_key.to_bytes()
    signature = signer.sign(labels.SIG_TRANSFORMED, _transform_signed_part(unsigned, t_signer))
    return EncryptedValue(
        unsigned.ephemeral_public_key,
        unsigned.encrypted_message,
        unsigned.auth_hash,
        unsigned.origin_signer,
        unsigned.origin_signature,
        unsigned.blocks,
        t_signer,
        signature,
    )


# --- decrypt -------------------------------------------------------------------------------


def decrypt(
    value: EncryptedValue,
    private_key: PrivateKey,
    *,
    origin_signer: VerifyingKey,
    transformer: VerifyingKey | None = None,
) -> Plaintext:
    """Decrypt at any level. Raises only :class:`DecryptionError`, whatever went wrong."""
    try:
        return _decrypt(value, private_key, origin_signer, transformer)
    except (SealroomError, ValueError, ArithmeticError):
        raise DecryptionError() from None


def _decrypt(
    value: EncryptedValue,
    private_key: PrivateKey,
    origin_signer: VerifyingKey,
    transformer: VerifyingKey | None,
) -> Plaintext:
    verify_pinned(
        origin_signer,
        value.origin_signer,
        labels.SIG_ORIGIN,
        _origin_message(value.ephemeral_public_key, value.auth_hash),
        value.origin_signature,
    )
    if value.level == 0:
        message = value.encrypted_message / pair(
            value.ephemeral_public_key, private_key.times_p2().prepare()
        )
    else:
        if transformer is None:
            raise SignatureError("no transformer pinned")
        verify_pinned(
            transformer,
            value.transform_signer,
            labels.SIG_TRANSFORMED,
            _transform_signed_part(value, value.transform_signer),
            value.transform_signature,
        )
        s: Scalar | None = None
        for block in reversed(value.blocks):
            if s is None:  # the newest block: unwrap with b·P2
                unwrap_with = private_key.times_p2().prepare()
                hashed_temp = private_key._unwrap_transform_key_part(
                    block.public_key, block.encrypted_temp_key
                )
                rand = block.encrypted_random_transform_temp_key / pair(
                    block.random_transform_public_key, unwrap_with
                )
            else:  # an older block: e(X, s·P2) = e(s·X, P2), and P2 is prepared
                p2 = G2.generator()
                temp = block.encrypted_temp_key / pair(block.public_key.mul_secret(s), p2)
                hashed_temp = _h(temp)
                rand = block.encrypted_random_transform_temp_key / pair(
                    block.random_transform_public_key.mul_secret(s), p2
                )
            s = hashed_temp + _h(rand)
        if s is None:  # pragma: no cover - level >= 1 guarantees a block
            raise CryptoInvariantError("no block")
        message = value.encrypted_message / pair(
            value.ephemeral_public_key.mul_secret(s), G2.generator()
        )
    if not hmac.compare_digest(_auth_hash(value.ephemeral_public_key, message), value.auth_hash):
        raise DecryptionError()
    return Plaintext(message)
