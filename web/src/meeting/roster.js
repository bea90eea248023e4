// The roster chain as a member follows it (src/sealroom/meeting/roster.py): each
// session-key post names the previous head and the new one,
// head = SHA-256(label ‖ prev ‖ epoch ‖ each member, length-prefixed) over the sorted
// roster, and carries only the change (added, removed). A change too large for one post
// travels in `roster` posts just before it (parts); a member that lost track asks with
// `roster-request` and checks the manager's snapshot against that epoch's head. Only the
// member's side is here: the manager's plan() stays in Python.

import { equalBytes, sha256, uintBE, utf8 } from '../bytes.js';
import { intOf } from './py.js';

export const INLINE_BYTES = 16_000;
export const CHUNK_BYTES = 48_000;
export const MAX_PARTS = 256;
export const KEPT_EPOCHS = 8;
const ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const LABEL = utf8('sealroom/v1/meeting/roster');

/** The chain's next head: SHA-256(label ‖ prev ‖ epoch ‖ each member as u16 length ‖ id)
 *  over the sorted roster, the length counted in code points as Python's len(str) counts. */
export function rosterHash(prev, epoch, members) {
  const parts = [LABEL, prev, uintBE(epoch, 8)];
  for (const m of members) parts.push(uintBE([...m].length, 2), utf8(m));
  return sha256(...parts);
}

/** Sorted by code point, as Python sorts str (ids are ASCII, so UTF-16 order agrees). */
function sorted(ids) {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function applyDelta(old, added, removed) {
  const out = new Set(old);
  for (const u of removed) out.delete(u);
  for (const u of added) out.add(u);
  return sorted(out);
}

/** A list of user ids from a post, checked; a TypeError (Python: ValueError) otherwise. */
export function parseIds(value, what) {
  if (!Array.isArray(value) || value.length > 65_535) throw new TypeError(`${what}: expected a list of user ids`);
  if (!value.every((u) => typeof u === 'string' && ID.test(u))) throw new TypeError(`${what}: bad user id`);
  return value;
}

function partKey(epoch, snapshot) {
  return `${epoch}/${snapshot ? 1 : 0}`;
}

/** The board's roster chain as this device has followed it. `members` is null when the
 *  device lost track (a missed or forged post): it then asks for a snapshot. */
export class RosterChain {
  epoch = -1;
  head = new Uint8Array(32);
  members = [];
  #rosters = new Map(); // epoch -> [roster, head]
  #heads = new Map(); // epoch -> [prev, head]
  #parts = new Map(); // "epoch/snapshot" -> {epoch, snapshot, held: Map(part -> body)}

  /** Keep one `roster` post (a change part or a snapshot part) until it is used. */
  addPart(body) {
    const epoch = intOf(body.epoch);
    const part = intOf(body.part);
    const parts = intOf(body.parts);
    if (!(part >= 0 && part < parts && parts <= MAX_PARTS) || epoch < this.epoch - KEPT_EPOCHS) {
      throw new TypeError('roster part out of range');
    }
    for (const name of ['added', 'removed', 'members']) {
      if (Object.hasOwn(body, name)) parseIds(body[name], name);
    }
    const snapshot = Object.hasOwn(body, 'members');
    const key = partKey(epoch, snapshot);
    let entry = this.#parts.get(key);
    if (entry === undefined) {
      entry = { epoch, snapshot, held: new Map() };
      this.#parts.set(key, entry);
    }
    if (this.#parts.size > 2 * KEPT_EPOCHS) {
      // Forget parts of epochs long gone (oldest first, a change before a snapshot).
      const order = [...this.#parts.entries()].sort(
        ([, a], [, b]) => a.epoch - b.epoch || Number(a.snapshot) - Number(b.snapshot),
      );
      for (const [k] of order.slice(0, this.#parts.size - 2 * KEPT_EPOCHS)) this.#parts.delete(k);
    }
    entry.held.set(part, body);
  }

  /** A new session-key post: fold its change in and check the head. True if the roster
   *  of `epoch` is known. */
  async follow(epoch, { prev, head, added, removed, parts, reset }) {
    let known = true;
    if (parts) {
      const assembled = this.#assemble(partKey(epoch, false), parts, ['added', 'removed']);
      if (assembled === null) {
        [added, removed, known] = [[], [], false];
      } else {
        [added, removed] = [assembled.added, assembled.removed];
      }
    }
    const base = reset ? [] : this.members;
    this.#heads.set(epoch, [prev, head]);
    if (known && base !== null && (reset || equalBytes(prev, this.head))) {
      const roster = applyDelta(base, added, removed);
      if (equalBytes(await rosterHash(prev, epoch, roster), head)) {
        this.#set(epoch, head, roster);
        return true;
      }
    }
    this.#set(epoch, head, null);
    return false;
  }

  /** Use a complete snapshot of `epoch` if it matches that epoch's head. */
  async snapshot(epoch) {
    const entry = this.#parts.get(partKey(epoch, true));
    if (entry === undefined || entry.held.size === 0) return false;
    const parts = intOf(entry.held.values().next().value.parts);
    const assembled = this.#assemble(partKey(epoch, true), parts, ['members']);
    const heads = this.#heads.get(epoch);
    if (assembled === null || heads === undefined) return false;
    const roster = sorted(new Set(assembled.members));
    if (!equalBytes(await rosterHash(heads[0], epoch, roster), heads[1])) {
      this.#parts.delete(partKey(epoch, true)); // a bad part: wait for a new snapshot
      return false;
    }
    this.#rosters.set(epoch, [roster, heads[1]]);
    if (epoch === this.epoch) this.members = roster;
    return true;
  }

  /** [roster, head] of a recent epoch, or null if this device does not know them. */
  rosterAt(epoch) {
    return this.#rosters.get(epoch) ?? null;
  }

  headAt(epoch) {
    return this.#heads.get(epoch)?.[1] ?? null;
  }

  #set(epoch, head, roster) {
    [this.epoch, this.head, this.members] = [epoch, head, roster];
    if (roster !== null) this.#rosters.set(epoch, [roster, head]);
    for (const e of [...this.#rosters.keys()]) if (e < epoch - KEPT_EPOCHS) this.#rosters.delete(e);
    for (const e of [...this.#heads.keys()]) if (e < epoch - KEPT_EPOCHS) this.#heads.delete(e);
  }

  #assemble(key, parts, names) {
    const held = this.#parts.get(key)?.held ?? new Map();
    if (parts > MAX_PARTS || held.size !== parts) return null;
    for (let i = 0; i < parts; i++) if (!held.has(i)) return null;
    for (const p of held.values()) if (intOf(p.parts) !== parts) return null;
    const out = Object.fromEntries(names.map((n) => [n, []]));
    for (let i = 0; i < parts; i++) {
      for (const n of names) {
        const value = held.get(i)[n] ?? [];
        if (!Array.isArray(value)) throw new TypeError(`${n}: expected a list`);
        out[n].push(...value);
      }
    }
    return out;
  }
}
