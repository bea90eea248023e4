// Exact-length binary encoding helpers shared by every wire format
// (src/sealroom/crypto/wire.py). Every object starts with a version byte and a type tag.
// Readers consume exactly the bytes they are given: a short read, an unknown version or
// tag, or trailing bytes throw MalformedInputError naming the object and the lengths.

import { MalformedInputError } from '../errors.js';
import { isBytes } from '../bytes.js';

export const WIRE_VERSION = 1;

export const TAG_PUBLIC_KEY = 0x01;
export const TAG_PRIVATE_KEY = 0x02;
export const TAG_ENCRYPTED_VALUE = 0x11;
export const TAG_TRANSFORM_KEY = 0x21;
export const TAG_ENVELOPE = 0x41;
export const TAG_ESCROW = 0x51;
export const TAG_STREAM = 0x61;

/** The two leading bytes of an object: version, then tag. */
export function header(tag) {
  return Uint8Array.of(WIRE_VERSION, tag);
}

export class Reader {
  #data;
  #pos = 0;
  #what;

  constructor(data, what) {
    if (!isBytes(data)) throw new MalformedInputError(`${what}: expected bytes`);
    this.#data = new Uint8Array(data);
    this.#what = what;
  }

  expectHeader(tag) {
    const version = this.u8();
    const got = this.u8();
    if (version !== WIRE_VERSION) {
      throw new MalformedInputError(`${this.#what}: unsupported version ${version}`);
    }
    if (got !== tag) {
      throw new MalformedInputError(
        `${this.#what}: wrong type tag 0x${got.toString(16).padStart(2, '0')}`,
      );
    }
  }

  take(n) {
    const end = this.#pos + n;
    if (end > this.#data.length) {
      throw new MalformedInputError(
        `${this.#what}: truncated, needed ${end} bytes, got ${this.#data.length}`,
      );
    }
    const out = this.#data.slice(this.#pos, end);
    this.#pos = end;
    return out;
  }

  u8() {
    return this.take(1)[0];
  }

  u16() {
    const b = this.take(2);
    return (b[0] << 8) | b[1];
  }

  u32() {
    const b = this.take(4);
    return ((b[0] << 24) >>> 0) + ((b[1] << 16) | (b[2] << 8) | b[3]);
  }

  /** Everything read so far (for signatures over a prefix). */
  consumed() {
    return this.#data.slice(0, this.#pos);
  }

  finish() {
    if (this.#pos !== this.#data.length) {
      throw new MalformedInputError(
        `${this.#what}: expected ${this.#pos} bytes, got ${this.#data.length}`,
      );
    }
  }
}

export function u16(value) {
  if (!Number.isInteger(value) || value < 0 || value >= 1 << 16) {
    throw new MalformedInputError('length does not fit in 16 bits');
  }
  return Uint8Array.of(value >> 8, value & 0xff);
}

export function u32(value) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new MalformedInputError('length does not fit in 32 bits');
  }
  return Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
}
