// Sealroom's SFrame key schedule, senders and receivers (src/sealroom/media/keys.py).
//
//   KID      = n << 16 | index          (n < 2^32, index < 2^16)
//   base_key = HKDF-SHA256(SK_n, info = label ‖ n ‖ index ‖ suite)
//
// so two senders, or two epochs, never share a key. A Sender owns its counter and refuses
// to go past its limit (CounterExhaustedError). A Receiver installs an epoch as soon as it
// has its key, keeps the previous one for a grace period, rejects replayed and too-old
// counters with a sliding window per KID, and reports a failure as FrameRejectedError with
// the KID and sender index but not the reason. KIDs and counters are BigInt.

import { concat, hkdf, utf8 } from '../bytes.js';
import { SFrameError, SFrameKey, aeadDecrypt, aeadEncrypt, decodeHeader, encodeHeader, suite } from './sframe.js';

export const LABEL = utf8('sealroom/v1/media/sframe-base-key');
export const DEFAULT_SUITE = 4; // AES_128_GCM_SHA256_128
export const MAX_EPOCH = 2 ** 32 - 1;
export const MAX_SENDERS = 1 << 16;
export const SESSION_KEY_BYTES = 32;

/** This sender has used every counter its key allows; it needs a new epoch. */
export class CounterExhaustedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'CounterExhaustedError';
  }
}

/** A frame did not decrypt. Names the KID and sender, never the reason. */
export class FrameRejectedError extends Error {
  constructor(kid, sender, epoch) {
    super(`frame rejected (kid=${kid}, sender=${sender}, epoch=${epoch})`);
    this.name = 'FrameRejectedError';
    Object.assign(this, { kid, sender, epoch });
  }
}

function checkEpochSender(epoch, sender) {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH || !Number.isInteger(sender) || sender < 0 || sender >= MAX_SENDERS) {
    throw new RangeError('epoch must fit 32 bits and the sender index 16 bits');
  }
}

export function kidFor(epoch, sender) {
  checkEpochSender(epoch, sender);
  return (BigInt(epoch) << 16n) | BigInt(sender);
}

/** [epoch, sender index] of a KID (numbers). */
export function splitKid(kid) {
  return [Number(kid >> 16n), Number(kid & 0xffffn)];
}

function be(value, n) {
  const out = new Uint8Array(n);
  for (let i = n - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

export async function senderBaseKey(sessionKey, epoch, sender, suiteId = DEFAULT_SUITE) {
  if (sessionKey.length !== SESSION_KEY_BYTES) throw new RangeError('a session key is 32 bytes');
  checkEpochSender(epoch, sender);
  return hkdf('SHA-256', sessionKey, concat(LABEL, be(epoch, 4), be(sender, 2), be(suiteId, 2)), 32);
}

/** One participant's sending side in one epoch. Owns its counter. Make it with create(). */
export class Sender {
  #key;
  #next = 0n;
  #limit;

  constructor(key, epoch, index, limit) {
    this.#key = key;
    this.epoch = epoch;
    this.index = index;
    this.kid = kidFor(epoch, index);
    this.#limit = limit;
  }

  static async create(sessionKey, epoch, index, { suite: suiteId = DEFAULT_SUITE, maxFrames = 1n << 32n } = {}) {
    const kid = kidFor(epoch, index);
    const key = await SFrameKey.derive(suiteId, kid, await senderBaseKey(sessionKey, epoch, index, suiteId));
    const limit = BigInt(maxFrames) < 1n << 64n ? BigInt(maxFrames) : 1n << 64n;
    return new Sender(key, epoch, index, limit);
  }

  get framesSent() {
    return this.#next;
  }

  async encrypt(metadata, plaintext) {
    const ctr = this.#next;
    if (ctr >= this.#limit) {
      throw new CounterExhaustedError(`sender ${this.index} used all ${this.#limit} counters`);
    }
    this.#next = ctr + 1n; // taken before any await: no two frames share a counter
    const head = encodeHeader(this.kid, ctr);
    return concat(head, await aeadEncrypt(this.#key, this.#key.nonce(ctr), concat(head, metadata), plaintext));
  }
}

/** Accepts each counter once: anything at or below highest - size is too old. */
export class ReplayWindow {
  #bits = 0n; // bit i set: counter (highest - i) was seen
  #highest = -1n;
  #mask;

  constructor(size = 1024) {
    this.size = BigInt(size);
    this.#mask = (1n << this.size) - 1n;
  }

  /** Would ctr be accepted? Does not record it. */
  check(ctr) {
    if (ctr > this.#highest) return true;
    const offset = this.#highest - ctr;
    return offset < this.size && ((this.#bits >> offset) & 1n) === 0n;
  }

  accept(ctr) {
    if (ctr > this.#highest) {
      const shift = ctr - this.#highest;
      this.#bits = shift >= this.size ? 1n : ((this.#bits << shift) | 1n) & this.#mask;
      this.#highest = ctr;
    } else {
      this.#bits |= 1n << (this.#highest - ctr);
    }
  }
}

/** Decrypts every other sender's frames for the epochs it holds keys for. */
export class Receiver {
  #suite;
  #grace;
  #window;
  #kids = new Map(); // kid -> Promise<{key, window}>
  #epochs = new Map(); // epoch -> {sessionKey, retireAt, senders, kids: Set}

  constructor({ suite: suiteId = DEFAULT_SUITE, graceSeconds = 2.0, window = 1024 } = {}) {
    this.#suite = suite(suiteId).id;
    this.#grace = graceSeconds;
    this.#window = window;
  }

  get epochs() {
    return [...this.#epochs.keys()].sort((a, b) => a - b);
  }

  /** Start accepting `epoch` from sender indices below `senders`; older epochs get
   *  graceSeconds more. */
  install(epoch, sessionKey, now, senders = MAX_SENDERS) {
    if (sessionKey.length !== SESSION_KEY_BYTES) throw new RangeError('a session key is 32 bytes');
    checkEpochSender(epoch, 0);
    for (const [e, old] of this.#epochs) {
      if (e < epoch && old.retireAt === null) old.retireAt = now + this.#grace;
    }
    if (!this.#epochs.has(epoch)) {
      this.#epochs.set(epoch, { sessionKey: new Uint8Array(sessionKey), retireAt: null, senders, kids: new Set() });
    }
    this.expire(now);
  }

  /** Drop an epoch's keys at once (e.g. at meeting end). */
  retire(epoch) {
    const state = this.#epochs.get(epoch);
    if (state === undefined) return;
    this.#epochs.delete(epoch);
    for (const kid of state.kids) this.#kids.delete(kid);
  }

  expire(now) {
    for (const [e, s] of [...this.#epochs]) if (s.retireAt !== null && s.retireAt <= now) this.retire(e);
  }

  /** {epoch, sender, plaintext}, or FrameRejectedError. */
  async decrypt(metadata, frame, now) {
    this.expire(now);
    let kid;
    let ctr;
    let length;
    try {
      ({ kid, ctr, length } = decodeHeader(frame));
    } catch {
      throw new FrameRejectedError(null, null, null);
    }
    const [epoch, sender] = splitKid(kid);
    const reject = () => new FrameRejectedError(kid, sender, epoch);
    const entry = await this.#keyFor(kid, epoch, sender, reject);
    if (!entry.window.check(ctr)) throw reject();
    let plaintext;
    try {
      plaintext = await aeadDecrypt(entry.key, entry.key.nonce(ctr), concat(frame.subarray(0, length), metadata), frame.subarray(length));
    } catch (exc) {
      if (exc instanceof SFrameError) throw reject();
      throw exc;
    }
    // Checked again: another decrypt of the same counter may have finished meanwhile.
    if (!this.#kids.has(kid) || !entry.window.check(ctr)) throw reject();
    entry.window.accept(ctr);
    return { epoch, sender, plaintext };
  }

  #keyFor(kid, epoch, sender, reject) {
    let entry = this.#kids.get(kid);
    if (entry === undefined) {
      const state = this.#epochs.get(epoch);
      if (state === undefined || sender >= state.senders) throw reject(); // no key for strangers
      entry = senderBaseKey(state.sessionKey, epoch, sender, this.#suite)
        .then((base) => SFrameKey.derive(this.#suite, kid, base))
        .then((key) => ({ key, window: new ReplayWindow(this.#window) }));
      this.#kids.set(kid, entry);
      state.kids.add(kid);
    }
    return entry;
  }
}
