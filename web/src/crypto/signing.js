// Ed25519 signing keys on WebCrypto, with labelled messages and pinned verification
// (src/sealroom/crypto/signing.py). A signature counts only when the caller names the
// signer it expects: verifyPinned() first compares the carried key with the pinned one
// in constant time, then checks the signature.

import { bytes, concat, equalBytes, fromHex, isBytes, randomBytes, toHex } from '../bytes.js';
import { MalformedInputError, SignatureError } from '../errors.js';
import { Secret } from './secret.js';

export const VERIFYING_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

const ED25519 = { name: 'Ed25519' };
// RFC 8410 PrivateKeyInfo for an Ed25519 seed: this DER prefix, then the 32-byte seed.
const PKCS8_PREFIX = fromHex('302e020100300506032b657004220420');

function framed(label, message) {
  return concat(Uint8Array.of(label.length), label, message);
}

export class VerifyingKey {
  #key;
  #raw;

  constructor(key, raw) {
    this.#key = key;
    this.#raw = raw;
  }

  static async fromBytes(data) {
    if (!isBytes(data) || data.length !== VERIFYING_KEY_BYTES) {
      throw new MalformedInputError(
        `verifying key: expected ${VERIFYING_KEY_BYTES} bytes, got ${data?.length}`,
      );
    }
    const raw = bytes(data);
    try {
      return new VerifyingKey(await crypto.subtle.importKey('raw', raw, ED25519, true, ['verify']), raw);
    } catch {
      throw new MalformedInputError('verifying key: not a valid Ed25519 public key');
    }
  }

  toBytes() {
    return new Uint8Array(this.#raw);
  }

  /** Throws SignatureError unless `signature` is ours over (label, message). */
  async verify(label, message, signature) {
    if (!isBytes(signature) || signature.length !== SIGNATURE_BYTES) {
      throw new SignatureError('signature has the wrong length');
    }
    let ok = false;
    try {
      ok = await crypto.subtle.verify(ED25519, this.#key, bytes(signature), framed(label, message));
    } catch {
      ok = false;
    }
    if (!ok) throw new SignatureError('signature does not verify');
  }

  equals(other) {
    return other instanceof VerifyingKey && equalBytes(this.#raw, other.#raw);
  }

  toString() {
    return `VerifyingKey(${toHex(this.#raw).slice(0, 16)}…)`;
  }
}

/** An Ed25519 private key. Its 32-byte seed leaves only via exposeSecretBytes(). */
export class SigningKey extends Secret {
  #key;
  #verifying;

  constructor(seed, key, verifying) {
    super(seed);
    this.#key = key;
    this.#verifying = verifying;
  }

  static async fromSeed(seed) {
    if (!isBytes(seed) || seed.length !== 32) {
      throw new MalformedInputError(`signing key: expected 32 bytes, got ${seed?.length}`);
    }
    const key = await crypto.subtle.importKey(
      'pkcs8',
      concat(PKCS8_PREFIX, seed),
      ED25519,
      true,
      ['sign'],
    );
    const jwk = await crypto.subtle.exportKey('jwk', key);
    const raw = base64urlToBytes(jwk.x);
    const signer = await crypto.subtle.importKey('pkcs8', concat(PKCS8_PREFIX, seed), ED25519, false, [
      'sign',
    ]);
    return new SigningKey(seed, signer, await VerifyingKey.fromBytes(raw));
  }

  static async generate() {
    return SigningKey.fromSeed(randomBytes(32));
  }

  get verifyingKey() {
    return this.#verifying;
  }

  async sign(label, message) {
    return new Uint8Array(await crypto.subtle.sign(ED25519, this.#key, framed(label, message)));
  }
}

/** Check that `carried` is the pinned signer and that it signed (label, message). */
export async function verifyPinned(pinned, carried, label, message, signature) {
  if (!(pinned instanceof VerifyingKey)) throw new TypeError('the pinned signer must be a VerifyingKey');
  if (!equalBytes(pinned.toBytes(), carried)) {
    throw new SignatureError('signed by a key other than the pinned signer');
  }
  await pinned.verify(label, message, signature);
}

function base64urlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
