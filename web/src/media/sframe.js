// SFrame (RFC 9605) on WebCrypto: the header, the five cipher suites and the §4.4 context
// (src/sealroom/media/sframe.py). KID and CTR are 64-bit: BigInt throughout.
//
// SFrameContext.encrypt takes the caller's counter, so it is a hazardous primitive: reusing
// a (KID, CTR) pair reuses a nonce. Applications use media/keys.js, whose senders own their
// counters.
//
// Header policy: encoding is always minimal (§4.3); a header that is not minimally encoded
// (a KID or CTR below 8 in extended form, or an extended value with a leading zero byte) is
// rejected like any other malformed frame, so every (KID, CTR) has exactly one header.

import { bigFromBE, bigToBE, concat, equalBytes, isBytes, utf8 } from '../bytes.js';

export const MAX_VALUE = (1n << 64n) - 1n;

/** A frame could not be produced or opened. Deliberately says nothing about why. */
export class SFrameError extends Error {
  constructor(message = 'SFrame failure') {
    super(message);
    this.name = 'SFrameError';
  }
}

/** RFC 9605 §4.5 parameters: hash, key and nonce sizes, tag length, AEAD kind. */
export const CIPHER_SUITES = Object.freeze({
  1: Object.freeze({ id: 1, name: 'AES_128_CTR_HMAC_SHA256_80', hash: 'SHA-256', nk: 48, nn: 12, nt: 10, ctrHmac: true, nka: 16 }),
  2: Object.freeze({ id: 2, name: 'AES_128_CTR_HMAC_SHA256_64', hash: 'SHA-256', nk: 48, nn: 12, nt: 8, ctrHmac: true, nka: 16 }),
  3: Object.freeze({ id: 3, name: 'AES_128_CTR_HMAC_SHA256_32', hash: 'SHA-256', nk: 48, nn: 12, nt: 4, ctrHmac: true, nka: 16 }),
  4: Object.freeze({ id: 4, name: 'AES_128_GCM_SHA256_128', hash: 'SHA-256', nk: 16, nn: 12, nt: 16, ctrHmac: false, nka: 0 }),
  5: Object.freeze({ id: 5, name: 'AES_256_GCM_SHA512_128', hash: 'SHA-512', nk: 32, nn: 12, nt: 16, ctrHmac: false, nka: 0 }),
});

export function suite(id) {
  const s = CIPHER_SUITES[id];
  if (s === undefined) throw new RangeError(`unknown SFrame cipher suite ${id}`);
  return s;
}

function checkU64(v, what) {
  if (typeof v !== 'bigint' || v < 0n || v > MAX_VALUE) {
    throw new SFrameError(`${what} must be a 64-bit unsigned BigInt`);
  }
}

function minimalBytes(v) {
  let n = 1;
  while (v >> BigInt(8 * n)) n += 1;
  return n;
}

/** The minimal SFrame header for (KID, CTR), both BigInt. */
export function encodeHeader(kid, ctr) {
  checkU64(kid, 'KID');
  checkU64(ctr, 'CTR');
  let first = 0;
  let kidBytes = new Uint8Array(0);
  let ctrBytes = new Uint8Array(0);
  if (kid < 8n) {
    first = Number(kid) << 4;
  } else {
    const n = minimalBytes(kid);
    first = 0x80 | ((n - 1) << 4);
    kidBytes = bigToBE(kid, n);
  }
  if (ctr < 8n) {
    first |= Number(ctr);
  } else {
    const n = minimalBytes(ctr);
    first |= 0x08 | (n - 1);
    ctrBytes = bigToBE(ctr, n);
  }
  return concat(Uint8Array.of(first), kidBytes, ctrBytes);
}

/** {kid, ctr, length}. Rejects truncated and non-minimal headers. */
export function decodeHeader(data) {
  if (!isBytes(data) || data.length === 0) throw new SFrameError('empty frame');
  const first = data[0];
  let pos = 1;
  let kid;
  let ctr;
  if (first & 0x80) {
    const n = ((first >> 4) & 0x07) + 1;
    if (data.length < 1 + n || data[1] === 0) throw new SFrameError('truncated or non-minimal header');
    kid = bigFromBE(data.subarray(1, 1 + n));
    if (kid < 8n) throw new SFrameError('truncated or non-minimal header');
    pos += n;
  } else {
    kid = BigInt((first >> 4) & 0x07);
  }
  if (first & 0x08) {
    const n = (first & 0x07) + 1;
    if (data.length < pos + n || data[pos] === 0) throw new SFrameError('truncated or non-minimal header');
    ctr = bigFromBE(data.subarray(pos, pos + n));
    if (ctr < 8n) throw new SFrameError('truncated or non-minimal header');
    pos += n;
  } else {
    ctr = BigInt(first & 0x07);
  }
  return { kid, ctr, length: pos };
}

const HASH_BYTES = { 'SHA-256': 32, 'SHA-512': 64 };

async function hmac(hash, key, data) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, data));
}

/** HKDF-Extract (RFC 5869 §2.2): HMAC(salt or HashLen zeros, ikm). */
export function hkdfExtract(hash, salt, ikm) {
  return hmac(hash, salt.length ? salt : new Uint8Array(HASH_BYTES[hash]), ikm);
}

async function hkdfExpandFromBase(hash, baseKey, info, length) {
  // HKDF with an empty salt is Expand(Extract(HashLen zeros, base_key), info): §4.4.2.
  const k = await crypto.subtle.importKey('raw', baseKey, 'HKDF', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'HKDF', hash, salt: new Uint8Array(0), info }, k, length * 8);
  return new Uint8Array(bits);
}

/** One KID's derived key material and ready WebCrypto keys (RFC 9605 §4.4.2). */
export class SFrameKey {
  constructor(suiteParams, salt, cipherKey, authKey) {
    this.suite = suiteParams;
    this.salt = salt; // BigInt, Nn bytes
    this.cipherKey = cipherKey; // CryptoKey: AES-GCM or AES-CTR
    this.authKey = authKey; // CryptoKey (HMAC) for the CTR suites, else null
    Object.freeze(this);
  }

  static async derive(suiteId, kid, baseKey) {
    const s = suite(suiteId);
    checkU64(kid, 'KID');
    const suffix = concat(bigToBE(kid, 8), Uint8Array.of(s.id >> 8, s.id & 0xff));
    const key = await hkdfExpandFromBase(s.hash, baseKey, concat(utf8('SFrame 1.0 Secret key '), suffix), s.nk);
    const salt = await hkdfExpandFromBase(s.hash, baseKey, concat(utf8('SFrame 1.0 Secret salt '), suffix), s.nn);
    if (s.ctrHmac) {
      const enc = await crypto.subtle.importKey('raw', key.subarray(0, s.nka), 'AES-CTR', false, ['encrypt', 'decrypt']);
      const auth = await crypto.subtle.importKey('raw', key.subarray(s.nka), { name: 'HMAC', hash: s.hash }, false, ['sign']);
      return new SFrameKey(s, bigFromBE(salt), enc, auth);
    }
    const gcm = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']);
    return new SFrameKey(s, bigFromBE(salt), gcm, null);
  }

  /** From the AEAD key itself (the RFC's C.2 vectors give it directly). */
  static async fromAeadKey(suiteId, key, salt = 0n) {
    const s = suite(suiteId);
    if (s.ctrHmac) {
      const enc = await crypto.subtle.importKey('raw', key.subarray(0, s.nka), 'AES-CTR', false, ['encrypt', 'decrypt']);
      const auth = await crypto.subtle.importKey('raw', key.subarray(s.nka), { name: 'HMAC', hash: s.hash }, false, ['sign']);
      return new SFrameKey(s, salt, enc, auth);
    }
    return new SFrameKey(s, salt, await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt', 'decrypt']), null);
  }

  nonce(ctr) {
    return bigToBE(this.salt ^ ctr, this.suite.nn);
  }
}

function lengths(aad, ct, nt) {
  return concat(bigToBE(BigInt(aad.length), 8), bigToBE(BigInt(ct.length), 8), bigToBE(BigInt(nt), 8));
}

async function ctrHmacTag(key, nonce, aad, ct) {
  const mac = new Uint8Array(
    await crypto.subtle.sign('HMAC', key.authKey, concat(lengths(aad, ct, key.suite.nt), nonce, aad, ct)),
  );
  return mac.subarray(0, key.suite.nt);
}

async function aesCtr(key, nonce, data) {
  const counter = concat(nonce, new Uint8Array(4));
  return new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-CTR', counter, length: 32 }, key.cipherKey, data));
}

export async function aeadEncrypt(key, nonce, aad, pt) {
  if (!key.suite.ctrHmac) {
    return new Uint8Array(
      await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, key.cipherKey, pt),
    );
  }
  const ct = await aesCtr(key, nonce, pt);
  return concat(ct, await ctrHmacTag(key, nonce, aad, ct));
}

export async function aeadDecrypt(key, nonce, aad, data) {
  const nt = key.suite.nt;
  if (data.length < nt) throw new SFrameError('frame shorter than its tag');
  if (!key.suite.ctrHmac) {
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 }, key.cipherKey, data),
      );
    } catch {
      throw new SFrameError('authentication failed');
    }
  }
  const ct = data.subarray(0, data.length - nt);
  const tag = data.subarray(data.length - nt);
  if (!equalBytes(tag, await ctrHmacTag(key, nonce, aad, ct))) throw new SFrameError('authentication failed');
  return aesCtr(key, nonce, ct);
}

/** RFC 9605 §4.4: keys by KID, encrypt(ctr, kid, metadata, pt), decrypt(metadata, ct). */
export class SFrameContext {
  #encryptKeys = new Map();
  #decryptKeys = new Map();

  constructor(cipherSuite) {
    this.suite = suite(cipherSuite);
  }

  async addEncryptKey(kid, baseKey) {
    checkU64(kid, 'KID');
    this.#encryptKeys.set(kid, await SFrameKey.derive(this.suite.id, kid, baseKey));
  }

  async addDecryptKey(kid, baseKey) {
    checkU64(kid, 'KID');
    this.#decryptKeys.set(kid, await SFrameKey.derive(this.suite.id, kid, baseKey));
  }

  removeEncryptKey(kid) {
    this.#encryptKeys.delete(kid);
  }

  removeDecryptKey(kid) {
    this.#decryptKeys.delete(kid);
  }

  hasDecryptKey(kid) {
    return this.#decryptKeys.has(kid);
  }

  /** Hazardous: the caller must never reuse `ctr` under `kid`. */
  async encrypt(ctr, kid, metadata, plaintext) {
    const key = this.#encryptKeys.get(kid);
    if (key === undefined) throw new SFrameError('no encryption key for this KID');
    const head = encodeHeader(kid, ctr);
    return concat(head, await aeadEncrypt(key, key.nonce(ctr), concat(head, metadata), plaintext));
  }

  async decrypt(metadata, ciphertext) {
    const { kid, ctr, length } = decodeHeader(ciphertext);
    const key = this.#decryptKeys.get(kid);
    if (key === undefined) throw new SFrameError('no decryption key for this KID');
    return aeadDecrypt(key, key.nonce(ctr), concat(ciphertext.subarray(0, length), metadata), ciphertext.subarray(length));
  }
}
