// Board messages: versioned, signed by the posting device, parsed strictly
// (src/sealroom/meeting/messages.py).
//
// Wire form (UTF-8 JSON object): {"v": 1, "meeting", "kind", "user", "device", "seq",
// "body", "sig"}. The signature is Ed25519, under its own label, over the canonical JSON
// (Python's json.dumps with sorted keys, no spaces, ASCII only; see ../json.js) of every
// field but "sig". seq increases with every message a device posts, so receivers drop
// duplicates and spot replays.

import { b64d, b64e } from '../api/encoding.js';
import { fromUtf8, isBytes, utf8 } from '../bytes.js';
import { MalformedInputError } from '../errors.js';
import { JsonError, PyFloat, dumps, parse } from '../json.js';
import { SigningKey } from '../crypto/signing.js';

export const VERSION = 1;
export const LABEL = utf8('sealroom/v1/sig/meeting-message');
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const KINDS = Object.freeze(
  new Set([
    'start', 'announce', 'session-key', 'roster', 'roster-request', 'leave', 'remove', 'admit', 'manager', 'end',
    'tree', 'tree-path',
  ]),
);
const ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const FIELDS = ['body', 'device', 'kind', 'meeting', 'seq', 'sig', 'user', 'v'];

function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof PyFloat);
}

/** Python's `value == 1` for a parsed JSON value (1, 1.0 and true all equal 1 there). */
function equalsOne(value) {
  return value === 1 || value === true || (value instanceof PyFloat && value.value === 1);
}

function codePoints(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff || i + 1 >= text.length) n += 1;
    else {
      const d = text.charCodeAt(i + 1);
      n += 1;
      if (d >= 0xdc00 && d <= 0xdfff) i += 1;
    }
  }
  return n;
}

/** One message on a meeting's channel. */
export class BoardMessage {
  constructor({ meeting, kind, user, device, seq, body, signature = new Uint8Array(0) }) {
    Object.assign(this, { meeting, kind, user, device, seq, body, signature });
    Object.freeze(this);
  }

  fields() {
    return {
      v: VERSION,
      meeting: this.meeting,
      kind: this.kind,
      user: this.user,
      device: this.device,
      seq: this.seq,
      body: this.body,
    };
  }

  /** The exact bytes the signature covers. */
  signedBytes() {
    return utf8(dumps(this.fields()));
  }

  static async create(key, { meeting, kind, user, device, seq, body }) {
    if (!(key instanceof SigningKey)) throw new TypeError('BoardMessage.create needs a SigningKey');
    const unsigned = new BoardMessage({ meeting, kind, user, device, seq, body });
    return new BoardMessage({ meeting, kind, user, device, seq, body, signature: await key.sign(LABEL, unsigned.signedBytes()) });
  }

  /** Throws SignatureError unless `key` signed this message. */
  async verify(key) {
    await key.verify(LABEL, this.signedBytes(), this.signature);
  }

  toJSON() {
    throw new TypeError('use BoardMessage.toWire() for the canonical text');
  }

  /** The canonical wire text (what Python's to_json gives). */
  toWire() {
    return dumps({ ...this.fields(), sig: b64e(this.signature) });
  }

  /** Parse a message from the board: text or UTF-8 bytes. */
  static fromWire(input) {
    let text = input;
    if (isBytes(input)) {
      if (input.length > MAX_MESSAGE_BYTES) throw new MalformedInputError('board message: too large');
      try {
        text = fromUtf8(input);
      } catch {
        throw new MalformedInputError('board message: not JSON');
      }
    } else if (typeof input !== 'string') {
      throw new MalformedInputError('board message: expected text');
    } else if (input.length > 2 * MAX_MESSAGE_BYTES || codePoints(input) > MAX_MESSAGE_BYTES) {
      throw new MalformedInputError('board message: too large');
    }
    let data;
    try {
      data = parse(text);
    } catch (exc) {
      if (exc instanceof JsonError) throw new MalformedInputError('board message: not JSON');
      throw exc;
    }
    if (!isPlainObject(data) || Object.keys(data).sort().join() !== FIELDS.join()) {
      throw new MalformedInputError('board message: wrong fields');
    }
    if (!equalsOne(data.v)) throw new MalformedInputError('board message: unsupported version');
    if (typeof data.kind !== 'string' || !KINDS.has(data.kind)) {
      throw new MalformedInputError('board message: unknown kind');
    }
    for (const name of ['meeting', 'user', 'device']) {
      if (typeof data[name] !== 'string' || !ID.test(data[name])) {
        throw new MalformedInputError(`board message: bad ${name}`);
      }
    }
    if (typeof data.seq !== 'number' || !Number.isSafeInteger(data.seq) || data.seq < 0) {
      throw new MalformedInputError('board message: bad seq');
    }
    if (!isPlainObject(data.body)) throw new MalformedInputError('board message: body must be an object');
    const signature = b64d(data.sig, 'sig', { maxBytes: 64 });
    return new BoardMessage({
      meeting: data.meeting,
      kind: data.kind,
      user: data.user,
      device: data.device,
      seq: data.seq,
      body: data.body,
      signature,
    });
  }
}

/**
 * Per-device sequence numbers, as a receiver keeps them (MeetingSession.receive): a message
 * is new only if its seq exceeds every seq seen from that device before, and 0 (duplicates
 * and replays are dropped).
 */
export class SeqTracker {
  #seen = new Map();

  /** True (and remembered) if this message is new for its device. */
  accept(message) {
    if (message.seq <= (this.#seen.get(message.device) ?? 0)) return false;
    this.#seen.set(message.device, message.seq);
    return true;
  }
}

/** A device's own sequence numbers: each post takes the next one. `start` must exceed
 *  every seq this device used before (pass a millisecond clock, as the Python driver does),
 *  so that a restarted device is not taken for a replay. */
export class SeqCounter {
  #seq;

  constructor(start = Date.now()) {
    if (!Number.isSafeInteger(start) || start < 0) throw new RangeError('seq start must be a safe integer');
    this.#seq = start;
  }

  next() {
    this.#seq += 1;
    return this.#seq;
  }
}
