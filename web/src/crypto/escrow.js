// Opening a user's escrowed private key (src/sealroom/crypto/escrow.py), so that a browser
// can become a device of its user without another device: the blob from the key service,
// a secret (the two halves of the basic split-trust mode, or the user's password), a slow
// KDF, AES-256-GCM.
//
// Wire format v1: version, tag 0x51, KDF id (u8: 1 Argon2id, 2 PBKDF2), parameters
// (Argon2id: t u32, m KiB u32, p u8; PBKDF2: iterations u32), salt (16), check (16),
// nonce (12), ciphertext of the 34-byte private key + 16-byte tag (50).
//
// Argon2id comes from @noble/hashes (WebCrypto has none); PBKDF2, HKDF and AES-GCM from
// WebCrypto. A wrong secret throws WrongSecretError, a blob that does not parse
// MalformedInputError, a tampered one DecryptionError.

import { argon2idAsync } from '@noble/hashes/argon2.js';

import { concat, equalBytes, hkdf, utf8 } from '../bytes.js';
import { DecryptionError, MalformedInputError, WrongSecretError } from '../errors.js';
import { ESCROW_AAD, ESCROW_CHECK, ESCROW_KEY, ESCROW_SPLIT } from './labels.js';
import { PrivateKey } from './pre.js';
import { Secret } from './secret.js';
import { Reader, TAG_ESCROW } from './wire.js';

export const KDF_ARGON2ID = 1;
export const KDF_PBKDF2 = 2;
export const HALF_BYTES = 16;
export const MIN_PBKDF2_ITERATIONS = 600_000;
const SALT_BYTES = 16;
const CHECK_BYTES = 16;
const NONCE_BYTES = 12;
const CIPHERTEXT_BYTES = 34 + 16;
/** The most memory this page lets Argon2id take (the service allows more). */
export const MAX_ARGON2_KIB = 1024 * 1024;

/** A password or a combined split secret. */
export class EscrowSecret extends Secret {
  static fromPassword(password) {
    if (typeof password !== 'string' || !password) throw new RangeError('an empty password is not allowed');
    return new EscrowSecret(utf8(password));
  }
}

/** The basic mode's secret from the key service's half and the provider's half. */
export async function combineSplitSecret(serviceHalf, providerHalf) {
  if (serviceHalf?.length !== HALF_BYTES || providerHalf?.length !== HALF_BYTES) {
    throw new MalformedInputError(`split secret: each half must be ${HALF_BYTES} bytes`);
  }
  return new EscrowSecret(await hkdf('SHA-256', concat(serviceHalf, providerHalf), ESCROW_SPLIT, 32));
}

function parse(blob) {
  const r = new Reader(blob, 'escrow blob');
  r.expectHeader(TAG_ESCROW);
  const kdf = r.u8();
  let params;
  if (kdf === KDF_ARGON2ID) {
    params = { kdf, t: r.u32(), m: r.u32(), p: r.u8() };
    if (!(params.t >= 1 && params.t <= 64 && params.m >= 8 * 1024 && params.m <= 4 * 1024 * 1024)) {
      throw new MalformedInputError('escrow: Argon2id parameters out of the accepted range');
    }
    if (!(params.p >= 1 && params.p <= 16)) throw new MalformedInputError('escrow: Argon2id parallelism out of the accepted range');
  } else if (kdf === KDF_PBKDF2) {
    params = { kdf, iterations: r.u32() };
    if (!(params.iterations >= MIN_PBKDF2_ITERATIONS && params.iterations <= 100_000_000)) {
      throw new MalformedInputError('escrow: PBKDF2 iterations out of the accepted range');
    }
  } else {
    throw new MalformedInputError(`escrow blob: unknown KDF id ${kdf}`);
  }
  const salt = r.take(SALT_BYTES);
  const check = r.take(CHECK_BYTES);
  const nonce = r.take(NONCE_BYTES);
  const head = r.consumed();
  const ciphertext = r.take(CIPHERTEXT_BYTES);
  r.finish();
  return { head, params, salt, check, nonce, ciphertext };
}

async function stretch(secret, salt, params) {
  const raw = secret.exposeSecretBytes();
  if (params.kdf === KDF_ARGON2ID) {
    if (params.m > MAX_ARGON2_KIB) throw new MalformedInputError('escrow: Argon2id memory above what this page allows');
    return argon2idAsync(raw, salt, { t: params.t, m: params.m, p: params.p, dkLen: 32, maxmem: params.m * 1024 + (1 << 20) });
  }
  const key = await crypto.subtle.importKey('raw', raw, 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations: params.iterations }, key, 256);
  return new Uint8Array(bits);
}

/** Recover the private key from its escrow blob. */
export async function openPrivateKey(blob, secret) {
  if (!(secret instanceof EscrowSecret)) throw new TypeError('openPrivateKey(blob, EscrowSecret)');
  const { head, params, salt, check, nonce, ciphertext } = parse(blob);
  const stretched = await stretch(secret, salt, params);
  const key = await hkdf('SHA-256', stretched, ESCROW_KEY, 32);
  const expected = await hkdf('SHA-256', stretched, ESCROW_CHECK, CHECK_BYTES);
  if (!equalBytes(check, expected)) throw new WrongSecretError('the password or secret is wrong');
  let raw;
  try {
    const k = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['decrypt']);
    raw = new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: concat(ESCROW_AAD, head), tagLength: 128 }, k, ciphertext),
    );
  } catch {
    throw new DecryptionError();
  }
  return PrivateKey.fromSecretBytes(raw);
}
