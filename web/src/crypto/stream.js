// Large objects as a stream of authenticated chunks (src/sealroom/crypto/stream.py).
//
// Chunk i is AES-256-GCM with nonce = prefix(7) ‖ i(4) ‖ final(1) and AAD = SHA-256(header)
// ‖ i ‖ final, so a reordered, dropped, duplicated or truncated chunk fails and nothing may
// follow the final chunk. A trailer carries the sealer's Ed25519 signature over the header
// digest, the chunk count and a running digest of every ciphertext chunk.
//
// Layout: u32 header length, header, records `u32 length ‖ chunk ciphertext` (the last one
// final), then the 64-byte trailer signature. Header v1: version, tag 0x61, object id (u16
// length + bytes), chunk size (u32), nonce prefix (7), EDEKs as in an envelope, sealer key
// (32), sealer signature (64) over all before it.
//
// Sources are ByteSources (over a Uint8Array or any async iterable of Uint8Array chunks,
// a ReadableStream included); outputs go to a `write(chunk)` callback. The running digest
// over the chunks needs an incremental SHA-256, which WebCrypto lacks: @noble/hashes gives it.

import { sha256 as sha256Incremental } from '@noble/hashes/sha2.js';

import { concat, isBytes, randomBytes, sha256 } from '../bytes.js';
import { DecryptionError, MalformedInputError, SignatureError } from '../errors.js';
import { aesGcm, encodeEdeks, readEdeks } from './envelope.js';
import * as labels from './labels.js';
import { Plaintext, deriveSymmetricKey, encrypt, generatePlaintext } from './pre.js';
import { SIGNATURE_BYTES, VERIFYING_KEY_BYTES, verifyPinned } from './signing.js';
import { Reader, TAG_STREAM, header, u16, u32 } from './wire.js';

export const DEFAULT_CHUNK = 64 * 1024;
export const MAX_CHUNK = 16 * 1024 * 1024;
export const MAX_HEADER = 1 << 20;
const MAX_CHUNKS = 2 ** 32 - 1;

/** Reads exact byte counts from a Uint8Array or an async iterable of Uint8Arrays. */
export class ByteSource {
  #iter;
  #buffer = new Uint8Array(0);
  #done = false;

  constructor(src) {
    if (isBytes(src)) {
      this.#buffer = new Uint8Array(src);
      this.#done = true;
    } else if (src && typeof src[Symbol.asyncIterator] === 'function') {
      this.#iter = src[Symbol.asyncIterator]();
    } else if (src && typeof src[Symbol.iterator] === 'function') {
      this.#iter = src[Symbol.iterator]();
    } else {
      throw new TypeError('ByteSource takes bytes or an iterable of byte chunks');
    }
  }

  /** Up to n bytes: fewer only at the end of the source. */
  async read(n) {
    while (this.#buffer.length < n && !this.#done) {
      const { value, done } = await this.#iter.next();
      if (done) this.#done = true;
      else this.#buffer = concat(this.#buffer, value);
    }
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.subarray(out.length); // a view: the rest is not copied
    return out;
  }
}

export class StreamHeader {
  constructor({ objectId, chunkSize, prefix, edeks, signer, signature = new Uint8Array(0) }) {
    Object.assign(this, { objectId, chunkSize, prefix, edeks: Object.freeze([...edeks]), signer, signature });
    Object.freeze(this);
  }

  signedPart() {
    return concat(
      header(TAG_STREAM),
      u16(this.objectId.length),
      this.objectId,
      u32(this.chunkSize),
      this.prefix,
      encodeEdeks(this.edeks),
      this.signer,
    );
  }

  toBytes() {
    return concat(this.signedPart(), this.signature);
  }

  static fromBytes(data) {
    const r = new Reader(data, 'stream header');
    r.expectHeader(TAG_STREAM);
    const objectId = r.take(r.u16());
    const chunkSize = r.u32();
    if (chunkSize < 1 || chunkSize > MAX_CHUNK) {
      throw new MalformedInputError('stream header: chunk size out of range');
    }
    const prefix = r.take(7);
    const edeks = readEdeks(r, 'stream header');
    const signer = r.take(VERIFYING_KEY_BYTES);
    const signature = r.take(SIGNATURE_BYTES);
    r.finish();
    return new StreamHeader({ objectId, chunkSize, prefix, edeks, signer, signature });
  }
}

function indexFinal(index, final) {
  return concat(u32(index), Uint8Array.of(final ? 1 : 0));
}

async function chunkKey(source, op) {
  const dek = await deriveSymmetricKey(source);
  return crypto.subtle.importKey('raw', dek.exposeSecretBytes(), 'AES-GCM', false, [op]);
}

/** Encrypt everything readable from `src` (a ByteSource) through `write`, chunk by chunk. */
export async function sealStream(src, write, objectId, recipients, signer, { chunkSize = DEFAULT_CHUNK } = {}) {
  if (!recipients.length) throw new RangeError('a stream needs at least one recipient');
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK) {
    throw new RangeError('chunk size out of range');
  }
  const source = generatePlaintext();
  const key = await chunkKey(source, 'encrypt');
  const edeks = [];
  for (const r of recipients) edeks.push(await encrypt(source, r, signer));
  const fields = {
    objectId: new Uint8Array(objectId),
    chunkSize,
    prefix: randomBytes(7),
    edeks,
    signer: signer.verifyingKey.toBytes(),
  };
  const head = new StreamHeader({
    ...fields,
    signature: await signer.sign(labels.SIG_STREAM_HEADER, new StreamHeader(fields).signedPart()),
  });
  const rawHeader = head.toBytes();
  const digest = await sha256(rawHeader);
  const running = sha256Incremental.create();
  await write(concat(u32(rawHeader.length), rawHeader));
  let current = await src.read(chunkSize);
  let index = 0;
  for (;;) {
    if (index >= MAX_CHUNKS) throw new RangeError('stream too long for its chunk counter');
    const following = current.length === chunkSize ? await src.read(chunkSize) : new Uint8Array(0);
    const final = following.length === 0;
    const tail = indexFinal(index, final);
    const ct = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv: concat(head.prefix, tail), additionalData: concat(digest, tail) },
        key,
        current,
      ),
    );
    running.update(ct);
    await write(concat(u32(ct.length), ct));
    index += 1;
    if (final) break;
    current = following;
  }
  const trailer = concat(digest, u32(index), running.digest());
  await write(await signer.sign(labels.SIG_STREAM_TRAILER, trailer));
  return head;
}

/** The stream's header and its raw bytes (to find the EDEK to unwrap). */
export async function readHeader(src) {
  const lengthBytes = await src.read(4);
  const length = lengthBytes.length === 4 ? new Reader(lengthBytes, 'stream').u32() : 0;
  if (length < 1 || length > MAX_HEADER) throw new MalformedInputError('stream: header length out of range');
  const raw = await src.read(length);
  if (raw.length !== length) throw new MalformedInputError('stream: truncated header');
  return [StreamHeader.fromBytes(raw), raw];
}

async function pinned(sealer, signer, label, message, signature) {
  try {
    await verifyPinned(sealer, signer, label, message, signature);
  } catch (exc) {
    if (exc instanceof SignatureError) throw new DecryptionError();
    throw exc;
  }
}

/**
 * Decrypt the chunks after the header through `write`; returns the bytes written. Throws
 * DecryptionError for any tampering, truncation, reordering or extension, and for a
 * trailer not signed by the pinned `sealer`. Chunks are written as they authenticate, so a
 * caller must discard what it got if this throws (openStreamToBytes does).
 */
export async function openStream(src, [head, rawHeader], source, { sealer, write }) {
  if (!(source instanceof Plaintext)) throw new TypeError('openStream needs the unwrapped Plaintext');
  await pinned(sealer, head.signer, labels.SIG_STREAM_HEADER, head.signedPart(), head.signature);
  const key = await chunkKey(source, 'decrypt');
  const digest = await sha256(rawHeader);
  const running = sha256Incremental.create();
  const limit = head.chunkSize + 16;
  let written = 0;
  let index = 0;
  for (;;) {
    const sizeRaw = await src.read(4);
    if (sizeRaw.length !== 4) throw new DecryptionError(); // truncated before the final chunk
    const size = new Reader(sizeRaw, 'chunk').u32();
    if (size < 16 || size > limit) throw new DecryptionError();
    const ct = await src.read(size);
    if (ct.length !== size) throw new DecryptionError();
    let chunk = null;
    let final = false;
    for (const candidate of [false, true]) {
      // the flag is authenticated: exactly one choice opens
      const tail = indexFinal(index, candidate);
      try {
        chunk = new Uint8Array(
          await crypto.subtle.decrypt(
            { name: 'AES-GCM', iv: concat(head.prefix, tail), additionalData: concat(digest, tail) },
            key,
            ct,
          ),
        );
        final = candidate;
        break;
      } catch {
        continue;
      }
    }
    if (chunk === null) throw new DecryptionError();
    running.update(ct);
    await write(chunk);
    written += chunk.length;
    index += 1;
    if (final) break;
  }
  const trailerSig = await src.read(SIGNATURE_BYTES);
  if (trailerSig.length !== SIGNATURE_BYTES || (await src.read(1)).length) {
    throw new DecryptionError(); // a missing trailer, or bytes after it
  }
  const trailer = concat(digest, u32(index), running.digest());
  await pinned(sealer, head.signer, labels.SIG_STREAM_TRAILER, trailer, trailerSig);
  return written;
}

/** openStream into memory: the plaintext comes back only once the trailer verified. */
export async function openStreamToBytes(src, headerAndRaw, source, { sealer }) {
  const parts = [];
  await openStream(src, headerAndRaw, source, { sealer, write: (c) => parts.push(c) });
  return concat(...parts);
}
