// Transform cryptography on BLS12-381 (src/sealroom/crypto/pre.py): the client's side.
// Key generation, encryption, decryption at every level with both signatures pinned,
// transform-key generation (a user delegating to a new device), and the exact-length
// decoders. The proxy's own operations (transform, augmentation) stay on the key service.
//
// Notation as in docs/crypto.md: P1, P2 generate G1, G2; e is the pairing; h(K) hashes a
// GT element to a scalar under its own label, so "hash to G2" is h(K)·P2.

import { concat, equalBytes, hkdf, sha256, toHex } from '../bytes.js';
import { DecryptionError, MalformedInputError, SignatureError } from '../errors.js';
import * as labels from './labels.js';
import {
  G1,
  G1_BYTES,
  G2,
  G2_BYTES,
  GT,
  GT_BYTES,
  SCALAR_BYTES,
  Scalar,
  hashToScalar,
  pair,
} from './pairing.js';
import { Secret } from './secret.js';
import { SIGNATURE_BYTES, SigningKey, VERIFYING_KEY_BYTES, VerifyingKey, verifyPinned } from './signing.js';
import {
  Reader,
  TAG_ENCRYPTED_VALUE,
  TAG_PRIVATE_KEY,
  TAG_PUBLIC_KEY,
  TAG_TRANSFORM_KEY,
  header,
} from './wire.js';

/** Most hops a value may carry (group→user→device is two). */
export const MAX_LEVEL = 8;
export const AUTH_HASH_BYTES = 32;
const BLOCK_BYTES = 2 * G1_BYTES + 2 * GT_BYTES;
const PAIRING_CACHE_SIZE = 4096;
const pairingCache = new Map(); // hex of A -> e(A, P2), oldest first

// --- keys ---------------------------------------------------------------------------------

/** A PRE public key A = a·P1 (possibly augmented: A + S). */
export class PublicKey {
  #pairing = null;

  constructor(point) {
    if (!(point instanceof G1)) throw new TypeError('PublicKey wraps a G1 point');
    if (point.isIdentity()) throw new MalformedInputError('public key: the identity is not allowed');
    this.point = point;
  }

  static fromBytes(data) {
    const r = new Reader(data, 'public key');
    r.expectHeader(TAG_PUBLIC_KEY);
    const point = G1.fromBytes(r.take(G1_BYTES));
    r.finish();
    return new PublicKey(point);
  }

  toBytes() {
    return concat(header(TAG_PUBLIC_KEY), this.point.toBytes());
  }

  /** e(A, P2), cached on this object and in a bounded per-page cache. */
  pairingWithP2() {
    if (this.#pairing === null) {
      const key = toHex(this.point.toBytes());
      let cached = pairingCache.get(key);
      if (cached === undefined) {
        cached = pair(this.point, G2.generator());
        pairingCache.set(key, cached);
        if (pairingCache.size > PAIRING_CACHE_SIZE) pairingCache.delete(pairingCache.keys().next().value);
      }
      this.#pairing = cached;
    }
    return this.#pairing;
  }

  equals(other) {
    return other instanceof PublicKey && this.point.equals(other.point);
  }

  toString() {
    return `PublicKey(${toHex(this.point.toBytes()).slice(0, 16)}…)`;
  }
}

/** A PRE private key a ∈ Z/rZ, nonzero. Serialized only by exposeSecretBytes(). */
export class PrivateKey extends Secret {
  #public = null;
  #g2 = null;

  constructor(scalar) {
    if (!(scalar instanceof Scalar)) throw new TypeError('PrivateKey wraps a Scalar');
    if (scalar.isZero()) throw new MalformedInputError('private key: zero is not allowed');
    super(concat(header(TAG_PRIVATE_KEY), scalar.exposeBytes()));
    this.scalar = scalar;
  }

  static fromSecretBytes(data) {
    const r = new Reader(data, 'private key');
    r.expectHeader(TAG_PRIVATE_KEY);
    const scalar = Scalar.fromBytes(r.take(SCALAR_BYTES));
    r.finish();
    return new PrivateKey(scalar);
  }

  /** a·P1. */
  publicKey() {
    if (this.#public === null) this.#public = new PublicKey(G1.generator().mulSecret(this.scalar));
    return this.#public;
  }

  /** a·P2: every decryption uses it. */
  timesP2() {
    if (this.#g2 === null) this.#g2 = G2.generator().mulSecret(this.scalar);
    return this.#g2;
  }
}

/** A fresh key pair (users, groups and devices each have one). */
export function generateKeyPair() {
  const priv = new PrivateKey(Scalar.random());
  return [priv, priv.publicKey()];
}

// --- plaintexts and derived keys -------------------------------------------------------------

/** A PRE plaintext: a random GT element from which DEKs are derived. */
export class Plaintext extends Secret {
  constructor(element) {
    if (!(element instanceof GT)) throw new TypeError('Plaintext wraps a GT element');
    super(element.toBytes());
    this.element = element;
  }

  static fromSecretBytes(data) {
    return new Plaintext(GT.fromBytes(data));
  }
}

/** A 256-bit AES-GCM key derived from a plaintext. */
export class SymmetricKey extends Secret {}

export function generatePlaintext() {
  return new Plaintext(GT.random());
}

/** HKDF-SHA256 of the plaintext under the DEK label. */
export async function deriveSymmetricKey(plaintext) {
  return new SymmetricKey(await hkdf('SHA-256', plaintext.exposeSecretBytes(), labels.DEK, 32));
}

/** A private key from a plaintext, under its own label (never equal to a DEK). */
export async function derivePrivateKey(plaintext) {
  return new PrivateKey(await hashToScalar(labels.DERIVED_PRIVATE_KEY, plaintext.exposeSecretBytes()));
}

function h(element) {
  return hashToScalar(labels.HASH_TO_G2, element.toBytes());
}

function authHash(ephemeral, plaintext) {
  return sha256(labels.AUTH_HASH, ephemeral.toBytes(), plaintext.toBytes());
}

// --- ciphertexts -------------------------------------------------------------------------------

/** What one hop appends: the transform key's (X, E) and the hop's randomizer. */
export class TransformBlock {
  constructor(publicKey, encryptedTempKey, randomTransformPublicKey, encryptedRandomTransformTempKey) {
    this.publicKey = publicKey;
    this.encryptedTempKey = encryptedTempKey;
    this.randomTransformPublicKey = randomTransformPublicKey;
    this.encryptedRandomTransformTempKey = encryptedRandomTransformTempKey;
    Object.freeze(this);
  }

  toBytes() {
    return concat(
      this.publicKey.toBytes(),
      this.encryptedTempKey.toBytes(),
      this.randomTransformPublicKey.toBytes(),
      this.encryptedRandomTransformTempKey.toBytes(),
    );
  }

  static read(r) {
    return new TransformBlock(
      G1.fromBytes(r.take(G1_BYTES)),
      GT.fromBytes(r.take(GT_BYTES)),
      G1.fromBytes(r.take(G1_BYTES)),
      GT.fromBytes(r.take(GT_BYTES)),
    );
  }
}

/**
 * A PRE ciphertext (an EDEK) at level blocks.length. Wire format v1: version, tag 0x11,
 * level (u8), R (48), C (576), auth hash (32), origin signer (32), origin signature (64),
 * then `level` blocks of 1,248 bytes, then, if level ≥ 1, the transformer's key (32) and
 * its signature (64) over everything before it.
 */
export class EncryptedValue {
  constructor({
    ephemeralPublicKey,
    encryptedMessage,
    authHash,
    originSigner,
    originSignature,
    blocks = [],
    transformSigner = new Uint8Array(0),
    transformSignature = new Uint8Array(0),
  }) {
    Object.assign(this, {
      ephemeralPublicKey,
      encryptedMessage,
      authHash,
      originSigner,
      originSignature,
      blocks: Object.freeze([...blocks]),
      transformSigner,
      transformSignature,
    });
    Object.freeze(this);
  }

  get level() {
    return this.blocks.length;
  }

  body() {
    return concat(
      header(TAG_ENCRYPTED_VALUE),
      Uint8Array.of(this.level),
      this.ephemeralPublicKey.toBytes(),
      this.encryptedMessage.toBytes(),
      this.authHash,
      this.originSigner,
      this.originSignature,
      ...this.blocks.map((b) => b.toBytes()),
    );
  }

  toBytes() {
    if (this.level === 0) return this.body();
    return concat(this.body(), this.transformSigner, this.transformSignature);
  }

  static fromBytes(data) {
    const r = new Reader(data, 'encrypted value');
    r.expectHeader(TAG_ENCRYPTED_VALUE);
    const level = r.u8();
    if (level > MAX_LEVEL) {
      throw new MalformedInputError(`encrypted value: level ${level} exceeds ${MAX_LEVEL}`);
    }
    let expected = 3 + G1_BYTES + GT_BYTES + AUTH_HASH_BYTES + VERIFYING_KEY_BYTES;
    expected += SIGNATURE_BYTES + level * BLOCK_BYTES;
    if (level) expected += VERIFYING_KEY_BYTES + SIGNATURE_BYTES;
    if (data.length !== expected) {
      throw new MalformedInputError(
        `encrypted value: expected ${expected} bytes for level ${level}, got ${data.length}`,
      );
    }
    const fields = {
      ephemeralPublicKey: G1.fromBytes(r.take(G1_BYTES)),
      encryptedMessage: GT.fromBytes(r.take(GT_BYTES)),
      authHash: r.take(AUTH_HASH_BYTES),
      originSigner: r.take(VERIFYING_KEY_BYTES),
      originSignature: r.take(SIGNATURE_BYTES),
    };
    fields.blocks = [];
    for (let i = 0; i < level; i++) fields.blocks.push(TransformBlock.read(r));
    if (level) {
      fields.transformSigner = r.take(VERIFYING_KEY_BYTES);
      fields.transformSignature = r.take(SIGNATURE_BYTES);
    }
    r.finish();
    return new EncryptedValue(fields);
  }
}

function originMessage(ephemeral, auth) {
  return concat(header(TAG_ENCRYPTED_VALUE), ephemeral.toBytes(), auth);
}

/** Encrypt `plaintext` to `to` and sign it as its origin. */
export async function encrypt(plaintext, to, signer) {
  if (!(plaintext instanceof Plaintext) || !(to instanceof PublicKey) || !(signer instanceof SigningKey)) {
    throw new TypeError('encrypt(Plaintext, PublicKey, SigningKey)');
  }
  const k = Scalar.random();
  const ephemeral = G1.generator().mulSecret(k);
  const message = plaintext.element.mul(to.pairingWithP2().powSecret(k));
  const auth = await authHash(ephemeral, plaintext.element);
  const signature = await signer.sign(labels.SIG_ORIGIN, originMessage(ephemeral, auth));
  return new EncryptedValue({
    ephemeralPublicKey: ephemeral,
    encryptedMessage: message,
    authHash: auth,
    originSigner: signer.verifyingKey.toBytes(),
    originSignature: signature,
  });
}

// --- transform keys ------------------------------------------------------------------------------

const TOKEN = Symbol('verified');

/**
 * A signed delegation from one key pair to another. Verify it before use. Wire format v1:
 * version, tag 0x21, X (48), from public key (48), to public key (48), E (576), H (96),
 * signer (32), signature (64) over everything before it; 914 bytes.
 */
export class TransformKey {
  constructor({ ephemeralPublicKey, fromPublicKey, toPublicKey, encryptedTempKey, hashedTempKey, signer, signature }) {
    Object.assign(this, {
      ephemeralPublicKey,
      fromPublicKey,
      toPublicKey,
      encryptedTempKey,
      hashedTempKey,
      signer,
      signature,
    });
    Object.freeze(this);
  }

  signedPart() {
    return concat(
      header(TAG_TRANSFORM_KEY),
      this.ephemeralPublicKey.toBytes(),
      this.fromPublicKey.point.toBytes(),
      this.toPublicKey.point.toBytes(),
      this.encryptedTempKey.toBytes(),
      this.hashedTempKey.toBytes(),
      this.signer,
    );
  }

  toBytes() {
    return concat(this.signedPart(), this.signature);
  }

  static fromBytes(data) {
    const r = new Reader(data, 'transform key');
    r.expectHeader(TAG_TRANSFORM_KEY);
    const key = new TransformKey({
      ephemeralPublicKey: G1.fromBytes(r.take(G1_BYTES)),
      fromPublicKey: new PublicKey(G1.fromBytes(r.take(G1_BYTES))),
      toPublicKey: new PublicKey(G1.fromBytes(r.take(G1_BYTES))),
      encryptedTempKey: GT.fromBytes(r.take(GT_BYTES)),
      hashedTempKey: G2.fromBytes(r.take(G2_BYTES)),
      signer: r.take(VERIFYING_KEY_BYTES),
      signature: r.take(SIGNATURE_BYTES),
    });
    r.finish();
    return key;
  }

  /** Check the signature against the pinned signer; the only way to a usable key. */
  async verify(expectedSigner) {
    await verifyPinned(expectedSigner, this.signer, labels.SIG_TRANSFORM_KEY, this.signedPart(), this.signature);
    return new VerifiedTransformKey(this, TOKEN);
  }
}

/** A transform key whose signature was checked against a pinned signer. */
export class VerifiedTransformKey {
  constructor(key, token) {
    if (token !== TOKEN) throw new TypeError('VerifiedTransformKey is made only by TransformKey.verify()');
    this.key = key;
    Object.freeze(this);
  }
}

/** Delegate `fromPrivate`'s decryption rights to `toPublic` (needs no other secret). */
export async function generateTransformKey(fromPrivate, toPublic, signer) {
  if (!(fromPrivate instanceof PrivateKey) || !(toPublic instanceof PublicKey) || !(signer instanceof SigningKey)) {
    throw new TypeError('generateTransformKey(PrivateKey, PublicKey, SigningKey)');
  }
  const tempKey = GT.random();
  const x = Scalar.random();
  const ephemeral = G1.generator().mulSecret(x);
  const encryptedTempKey = tempKey.mul(toPublic.pairingWithP2().powSecret(x));
  const hashed = G2.generator().mulSecret((await h(tempKey)).sub(fromPrivate.scalar));
  const fields = {
    ephemeralPublicKey: ephemeral,
    fromPublicKey: fromPrivate.publicKey(),
    toPublicKey: toPublic,
    encryptedTempKey,
    hashedTempKey: hashed,
    signer: signer.verifyingKey.toBytes(),
    signature: new Uint8Array(0),
  };
  const signature = await signer.sign(labels.SIG_TRANSFORM_KEY, new TransformKey(fields).signedPart());
  return new VerifiedTransformKey(new TransformKey({ ...fields, signature }), TOKEN);
}

// --- decrypt ------------------------------------------------------------------------------------

function transformSignedPart(value, signer) {
  return concat(value.body(), signer);
}

/** Decrypt at any level. Throws only DecryptionError, whatever went wrong. */
export async function decrypt(value, privateKey, { originSigner, transformer = null } = {}) {
  if (!(value instanceof EncryptedValue) || !(privateKey instanceof PrivateKey)) {
    throw new TypeError('decrypt(EncryptedValue, PrivateKey, {originSigner, transformer})');
  }
  try {
    return await decryptInner(value, privateKey, originSigner, transformer);
  } catch {
    throw new DecryptionError();
  }
}

async function decryptInner(value, privateKey, originSigner, transformer) {
  await verifyPinned(
    originSigner,
    value.originSigner,
    labels.SIG_ORIGIN,
    originMessage(value.ephemeralPublicKey, value.authHash),
    value.originSignature,
  );
  let message;
  if (value.level === 0) {
    message = value.encryptedMessage.div(pair(value.ephemeralPublicKey, privateKey.timesP2()));
  } else {
    if (!transformer) throw new SignatureError('no transformer pinned');
    await verifyPinned(
      transformer,
      value.transformSigner,
      labels.SIG_TRANSFORMED,
      transformSignedPart(value, value.transformSigner),
      value.transformSignature,
    );
    let unwrapWith = privateKey.timesP2();
    let s = null;
    for (const block of [...value.blocks].reverse()) {
      if (s !== null) unwrapWith = G2.generator().mulSecret(s);
      const temp = block.encryptedTempKey.div(pair(block.publicKey, unwrapWith));
      const rand = block.encryptedRandomTransformTempKey.div(pair(block.randomTransformPublicKey, unwrapWith));
      s = (await h(temp)).add(await h(rand));
    }
    message = value.encryptedMessage.div(pair(value.ephemeralPublicKey.mulSecret(s), G2.generator()));
  }
  if (!equalBytes(await authHash(value.ephemeralPublicKey, message), value.authHash)) {
    throw new DecryptionError();
  }
  return new Plaintext(message);
}
