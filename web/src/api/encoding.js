// Base64url (no padding) for every binary field in the JSON API, decoded strictly
// (src/sealroom/api/encoding.py): non-canonical text is refused.

import { MalformedInputError } from '../errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const INDEX = new Map([...ALPHABET].map((c, i) => [c, i]));
const B64URL = /^[A-Za-z0-9_-]*$/;

export function b64e(data) {
  let out = '';
  for (let i = 0; i < data.length; i += 3) {
    const n = (data[i] << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((data.length - i) * 4) / 3));
    for (let j = 0; j < chars; j++) out += ALPHABET[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/** Decode base64url without padding; anything else is a MalformedInputError. */
export function b64d(text, what = 'field', { maxBytes = 1 << 20 } = {}) {
  if (typeof text !== 'string' || !B64URL.test(text) || text.length % 4 === 1) {
    throw new MalformedInputError(`${what}: expected base64url text`);
  }
  if (Math.floor((text.length * 3) / 4) > maxBytes) {
    throw new MalformedInputError(`${what}: longer than ${maxBytes} bytes`);
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let pos = 0;
  for (const c of text) {
    acc = (acc << 6) | INDEX.get(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[pos++] = (acc >> bits) & 0xff;
    }
  }
  if (b64e(out) !== text) throw new MalformedInputError(`${what}: non-canonical base64url`);
  return out;
}
