// Byte helpers shared by every module: concatenation, hex, big-endian and little-endian
// integers, constant-time comparison, UTF-8 and the OS CSPRNG.

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** True for a Uint8Array (a Node Buffer is one too). */
export function isBytes(value) {
  return value instanceof Uint8Array;
}

/** A copy of `value` as a plain Uint8Array; TypeError for anything that is not bytes. */
export function bytes(value, what = 'value') {
  if (!isBytes(value)) throw new TypeError(`${what}: expected a Uint8Array`);
  return new Uint8Array(value);
}

export function concat(...parts) {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export function toHex(data) {
  let s = '';
  for (const b of data) s += b.toString(16).padStart(2, '0');
  return s;
}

export function fromHex(text) {
  if (typeof text !== 'string' || text.length % 2 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new TypeError('expected an even-length hex string');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function utf8(text) {
  return encoder.encode(text);
}

/** Strict UTF-8 decoding: invalid bytes throw a TypeError. */
export function fromUtf8(data) {
  return strictDecoder.decode(data);
}

/** Equal length and contents, compared without an early exit. */
export function equalBytes(a, b) {
  if (!isBytes(a) || !isBytes(b) || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** `n` bytes from the OS CSPRNG (crypto.getRandomValues, in slices of 64 KiB). */
export function randomBytes(n) {
  const out = new Uint8Array(n);
  for (let pos = 0; pos < n; pos += 65536) {
    crypto.getRandomValues(out.subarray(pos, Math.min(n, pos + 65536)));
  }
  return out;
}

export function bigFromLE(data) {
  let v = 0n;
  for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i]);
  return v;
}

export function bigFromBE(data) {
  let v = 0n;
  for (const b of data) v = (v << 8n) | BigInt(b);
  return v;
}

export function bigToLE(value, n) {
  const out = new Uint8Array(n);
  let v = value;
  for (let i = 0; i < n; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  if (v !== 0n || value < 0n) throw new RangeError(`integer does not fit in ${n} bytes`);
  return out;
}

export function bigToBE(value, n) {
  return bigToLE(value, n).reverse();
}

/** A non-negative integer (number or BigInt) as `n` big-endian bytes. */
export function uintBE(value, n) {
  return bigToBE(BigInt(value), n);
}

export async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(...parts)));
}

/** HKDF (RFC 5869) with no salt (HashLen zeros) on WebCrypto: `length` bytes. */
export async function hkdf(hash, ikm, info, length) {
  const key = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits(
    { name: 'HKDF', hash, salt: new Uint8Array(0), info },
    key,
    length * 8,
  );
  return new Uint8Array(bits);
}
