// One participant's view of a meeting (src/sealroom/meeting/session.py), the receive side:
// what a device that does not manage the meeting does with the board, as a sans-I/O state
// machine. It never reads a clock or a socket: every entry point takes `now` (seconds) and
// returns actions for its driver (./client.js): post a board message, ask the key service
// to open a session-key envelope, install or retire a media key, call back at a time,
// notify the application. The driver feeds back board messages (with the sender device's
// key, as it checked it), key-service replies and timer calls.
//
// The flows follow session.py line for line where a participant takes them: the announce
// carrying the device's card; the session keys only the current manager may post (a
// ratchet derived locally, a fresh key opened through the key service with retries); the
// roster chain folded in and its heads checked (a fork or a gap reported, a lost track
// asked for with roster-request and recovered from the manager's snapshot); leaves,
// removals, bans and admissions; manager handovers and takeovers checked against the
// admins; the end. tests/web/test_web_session.py replays boards made by the Python
// sessions into this one and requires the same actions, byte for byte.
//
// A browser participant never manages a meeting: if the protocol would hand it the
// management (it is the host arriving late, the first present admin when the manager
// drops, or a restarted manager), it reports `management_unsupported` instead.

import { b64d } from '../api/encoding.js';
import { concat, equalBytes, hkdf, sha256, uintBE, utf8 } from '../bytes.js';
import { Envelope } from '../crypto/envelope.js';
import { PublicKey } from '../crypto/pre.js';
import { MalformedInputError, SignatureError } from '../errors.js';
import { JsonError } from '../json.js';
import { BoardMessage } from './messages.js';
import { field, intOf, strOf, truthy } from './py.js';
import { RosterChain, parseIds, rosterHash } from './roster.js';

export { rosterHash };

export const JOIN_RETRY_DELAYS = Object.freeze([1.0, 5.0, 10.0, 10.0]);
/** Errors that say the key service is busy or out of reach, not that it refuses: the
 *  opening is asked again, backing off from 2 s to TRANSIENT_RETRY_MAX_SECONDS, and never
 *  counts toward JOIN_RETRY_DELAYS (as TRANSIENT_ERRORS in meeting/session.py). */
export const TRANSIENT_ERRORS = Object.freeze(new Set(['unreachable', 'overloaded', 'rate_limited', 'unavailable', 'internal']));
export const TRANSIENT_RETRY_MAX_SECONDS = 30.0;
const RATCHET_LABEL = utf8('sealroom/v1/meeting/ratchet');
const CODE_LABEL = utf8('sealroom/v1/meeting/security-code');

/** SK_epoch from SK_(epoch-1): one-way, so a joiner cannot go back. */
export function ratchet(sessionKey, meeting, epoch) {
  const info = concat(RATCHET_LABEL, utf8(meeting), Uint8Array.of(0), uintBE(epoch, 8));
  return hkdf('SHA-256', sessionKey, info, 32);
}

/** Six groups of five digits for participants to compare out of band. */
export async function securityCode(groupKey, rosterHead, epoch) {
  const digest = await sha256(CODE_LABEL, groupKey, rosterHead, uintBE(epoch, 8));
  let value = 0n;
  for (const b of digest.subarray(0, 20)) value = (value << 8n) | BigInt(b);
  const groups = [];
  for (let i = 0n; i < 6n; i++) groups.push(String((value >> (17n * i)) % 100000n).padStart(5, '0'));
  return groups.join(' ');
}

// --- actions (session.py's Post, KeyServiceCall, InstallMediaKey, ...) -------------------

/** Post this message on the meeting's board. */
export const post = (message) => Object.freeze({ type: 'post', message });
/** Ask the key service to do `op` (here only `open_envelope`); answer with keyServiceReply. */
export const call = (id, op, args) => Object.freeze({ type: 'call', id, op, args });
/** Derive SFrame keys for `epoch` from this session key and start using them. */
export const install = (epoch, sessionKey) => Object.freeze({ type: 'install', epoch, sessionKey });
/** Drop the media keys of these epochs (all of them when the meeting is over). */
export const retire = (epochs) => Object.freeze({ type: 'retire', epochs: Object.freeze([...epochs]) });
/** Call timer() at this time (or later). */
export const callMeAt = (when) => Object.freeze({ type: 'callMeAt', when });
/** Something the application shows: joined, rekeyed, manager, ended, not_admitted… */
export const notify = (event, detail = {}) => Object.freeze({ type: 'notify', event, detail });
/** The meeting is over for this device: its keys go (Python rotates the device key). */
export const rotate = () => Object.freeze({ type: 'rotate' });

export const ACTION_TYPES = Object.freeze(['post', 'call', 'install', 'retire', 'callMeAt', 'notify', 'rotate']);

function head(value, what) {
  const raw = b64d(value, what, { maxBytes: 32 });
  if (raw.length !== 32) throw new MalformedInputError(`${what}: a roster head is 32 bytes`);
  return raw;
}

/** Errors that make a post a bad_message (Python: KeyError, TypeError, ValueError,
 *  OverflowError, MalformedInputError). Anything else is a bug and propagates. */
function isBadInput(exc) {
  return exc instanceof TypeError || exc instanceof RangeError || exc instanceof MalformedInputError || exc instanceof JsonError;
}

const min = (values) => values.reduce((a, b) => (b < a ? b : a));

/** One device's participation in one meeting, as a participant that does not manage it. */
export class ParticipantSession {
  /**
   * @param config {meetingId, host, invitees}
   * @param user, device: this device's ids; signingKey: its SigningKey
   * @param seqStart must exceed every sequence number this device used before (pass a
   *   millisecond clock), so that a restarted device is not taken for a replay
   * @param card the device's signing key, PRE key and certificate as the key service lists
   *   them (b64 text), carried in the announce
   */
  constructor(config, { user, device, signingKey, joinRetryDelays = JOIN_RETRY_DELAYS, seqStart = 0, card = null }) {
    this.config = { meetingId: config.meetingId, host: config.host, invitees: Object.freeze([...(config.invitees ?? [])]) };
    this.user = user;
    this.device = device;
    this.joinRetryDelays = [...joinRetryDelays];
    this.key = signingKey;
    this.card = card ? { ...card } : {};
    this.state = 'idle'; // idle, joining, in_meeting, left, ended, not_admitted
    this.epoch = null;
    this.sk = null;
    this.groupKey = null; // PublicKey
    this.admins = new Set();
    this.manager = null;
    this.present = new Map(); // user -> device
    this.roster = []; // who holds our current epoch's key (sender indices)
    this.rosterHead = new Uint8Array(32);
    this.lastEnvelope = new Uint8Array(0);
    this.boardEpoch = -1;
    this.chain = new RosterChain();
    this.askedFor = -1;
    this.seq = this.seqStart = seqStart;
    this.seen = new Map();
    this.heardOwnAnnounce = false;
    this.knocking = new Map();
    this.admitted = new Set([...this.config.invitees, this.config.host]);
    this.banned = new Set();
    this.calls = new Map();
    this.nextCall = 1;
    this.joinAttempts = 0;
    this.transientFailures = 0; // openings failed transiently in a row
    this.retryAt = null;
    this.pendingPost = null;
    this.pendingKey = null;
  }

  // --- helpers ---

  async #post(kind, body) {
    this.seq += 1;
    return post(
      await BoardMessage.create(this.key, {
        meeting: this.config.meetingId,
        kind,
        user: this.user,
        device: this.device,
        seq: this.seq,
        body,
      }),
    );
  }

  #call(op, context, args) {
    const id = this.nextCall++;
    this.calls.set(id, { op, context });
    return call(id, op, { group: this.config.meetingId, ...args });
  }

  #timers() {
    return this.retryAt === null ? [] : [callMeAt(this.retryAt)];
  }

  #install(epoch, sk, now, reason) {
    const old = this.epoch;
    [this.epoch, this.sk] = [epoch, sk];
    const actions = [install(epoch, sk)];
    if (old !== null && old < epoch) actions.push(retire([old]));
    actions.push(notify(old !== null ? 'rekeyed' : 'key_installed', { epoch, reason }));
    return actions;
  }

  #successor() {
    const candidates = [...this.admins].filter((a) => this.present.has(a));
    return candidates.length ? min(candidates) : null;
  }

  // --- commands ---

  /** Announce this participant and wait for the key the manager posts for it. */
  async join(now) {
    if (this.state !== 'idle') throw new Error('already joined');
    this.state = 'joining';
    this.present.set(this.user, this.device);
    this.joinAttempts = 0;
    this.transientFailures = 0;
    return [await this.#post('announce', Object.keys(this.card).length ? { card: this.card } : {})];
  }

  async leave(now) {
    if (!['joining', 'in_meeting'].includes(this.state)) return [];
    const epochs = this.epoch === null ? [] : [this.epoch];
    [this.state, this.sk, this.epoch, this.retryAt] = ['left', null, null, null];
    return [await this.#post('leave', {}), retire(epochs), notify('left'), rotate()];
  }

  #close() {
    this.calls.clear();
    this.pendingPost = null;
    const epochs = this.epoch === null ? [] : [this.epoch];
    [this.state, this.sk, this.epoch, this.retryAt] = ['ended', null, null, null];
    return [retire(epochs), notify('ended'), rotate()];
  }

  /** The security code for the current epoch, or null before a key. */
  async securityCode() {
    if (this.groupKey === null || this.epoch === null) return null;
    return securityCode(this.groupKey.toBytes(), this.rosterHead, this.epoch);
  }

  // --- timers and key-service replies ---

  async timer(now) {
    const actions = [];
    if (this.retryAt !== null && now >= this.retryAt) {
      this.retryAt = null;
      actions.push(...this.#openPending());
    }
    return [...actions, ...this.#timers()];
  }

  async keyServiceReply(id, result, error, now) {
    const pending = this.calls.get(id);
    this.calls.delete(id);
    if (pending === undefined || this.state === 'left' || this.state === 'ended') return [];
    if (pending.op === 'open_envelope') return this.#opened(pending, result, error, now);
    return [];
  }

  // --- board messages ---

  /** A board message, with the sender device's key as the driver verified it (device
   *  certificate chained to the pinned key of message.user). */
  async receive(message, senderKey, now) {
    if (message.meeting !== this.config.meetingId) return [];
    try {
      await message.verify(senderKey); // our own device's posts too: the board is not trusted
    } catch (exc) {
      if (exc instanceof SignatureError) return [notify('bad_message', { device: message.device })];
      throw exc;
    }
    if (message.device === this.device && message.seq > this.seqStart) {
      if (message.kind === 'announce' && !this.heardOwnAnnounce) {
        this.heardOwnAnnounce = true;
        return this.#resumeManagement();
      }
      return [];
    }
    // Keyed by user and device: a post naming another user's device id cannot make us drop
    // that device's real posts as replays.
    const who = JSON.stringify([message.user, message.device]);
    if (message.seq <= (this.seen.get(who) ?? 0)) return []; // duplicate or replay
    this.seen.set(who, message.seq);
    if (['left', 'ended', 'not_admitted'].includes(this.state)) return [];
    try {
      return await this.#dispatch(message, senderKey, now);
    } catch (exc) {
      if (isBadInput(exc)) return [notify('bad_message', { device: message.device })];
      throw exc;
    }
  }

  async #dispatch(m, key, now) {
    switch (m.kind) {
      case 'start':
        return this.#onStart(m);
      case 'announce':
        if (m.user === this.user) {
          if (m.device !== this.device && this.heardOwnAnnounce) {
            // this user joined again from another device since: step aside
            return [notify('superseded', { device: m.device }), ...this.#close()];
          }
          return [];
        }
        this.present.set(m.user, m.device);
        return [];
      case 'session-key':
        return this.#onSessionKey(m, key, now);
      case 'roster':
        return this.#onRoster(m);
      case 'roster-request':
        return [];
      case 'leave':
        if (m.user === this.user) {
          if (!this.heardOwnAnnounce) {
            this.admins.delete(this.user); // an earlier run of ours left
            if (this.manager === this.user) this.manager = null;
          }
          return [];
        }
        if (this.present.has(m.user) && this.present.get(m.user) !== m.device) return [];
        return this.#departure(m.user);
      case 'admit':
        if (m.user === this.manager) {
          const user = strOf(field(m.body, 'user'));
          this.banned.delete(user);
          this.admitted.add(user);
        }
        return [];
      case 'remove': {
        const user = strOf(field(m.body, 'user'));
        if (m.user !== this.manager) return [];
        this.banned.add(user);
        this.admitted.delete(user);
        if (user === this.user) {
          return this.heardOwnAnnounce || this.state !== 'joining' ? this.#close() : [];
        }
        return this.#departure(user);
      }
      case 'manager':
        return this.#onManager(m);
      case 'end':
        return m.user === this.manager ? this.#close() : [];
      default:
        return [];
    }
  }

  #onStart(m) {
    if (this.manager !== null) return [];
    // In session.py's order: a start whose group key does not parse still names the manager.
    this.manager = m.user;
    const admins = field(m.body, 'admins');
    if (!Array.isArray(admins)) throw new TypeError('admins');
    this.admins = new Set([...admins, m.user]);
    this.groupKey = PublicKey.fromBytes(b64d(field(m.body, 'group_key'), 'group_key'));
    this.present.set(m.user, m.device);
    return [];
  }

  #resumeManagement() {
    if (this.manager !== this.user || this.state !== 'joining' || this.groupKey === null) return [];
    return [notify('management_unsupported', { why: 'restarted manager' })];
  }

  #departure(user) {
    this.present.delete(user);
    this.admins.delete(user);
    this.knocking.delete(user);
    const actions = [notify('participant_left', { user })];
    if (user === this.manager) {
      const successor = this.#successor();
      if (successor === this.user && this.state === 'in_meeting') {
        actions.push(notify('management_unsupported', { why: 'successor', manager: user }));
      } else if (successor === null && this.state === 'in_meeting') {
        // Nobody left here can manage: no more rekeys.
        actions.push(notify('unmanaged', { manager: user }));
      }
    }
    return [...actions, ...this.#timers()];
  }

  #onManager(m) {
    const fresh = strOf(field(m.body, 'manager'));
    const handover =
      m.user === this.manager &&
      (this.admins.has(fresh) || fresh === this.config.host || this.present.has(fresh));
    const takeover = m.user === fresh && !this.present.has(this.manager) && fresh === this.#successor();
    if (!(handover || takeover)) return [notify('bad_message', { device: m.device, why: 'manager' })];
    if (handover) {
      const named = m.body.admins ?? [];
      if (!Array.isArray(named)) throw new TypeError('admins');
      const allowed = new Set([...this.admins, this.config.host, fresh]);
      for (const a of named) if (allowed.has(a)) this.admins.add(a);
    }
    this.manager = fresh;
    const actions = [notify('manager', { user: fresh })];
    if (fresh === this.user && ['joining', 'in_meeting'].includes(this.state) && this.heardOwnAnnounce) {
      actions.push(notify('management_unsupported', { why: 'handover' }));
    }
    return actions;
  }

  async #onSessionKey(m, key, now) {
    if (m.user !== this.manager) return [notify('bad_message', { device: m.device, why: 'not the manager' })];
    const epoch = intOf(field(m.body, 'epoch'));
    if (!(epoch >= 0 && epoch < 2 ** 32)) return [notify('bad_message', { device: m.device, why: 'epoch' })];
    const prev = head(field(m.body, 'prev'), 'prev');
    const next = head(field(m.body, 'head'), 'head');
    const actions = [];
    if (epoch > this.boardEpoch) {
      const envelope = b64d(field(m.body, 'envelope'), 'envelope', { maxBytes: 16384 });
      const added = parseIds(field(m.body, 'added'), 'added');
      const removed = parseIds(field(m.body, 'removed'), 'removed');
      const parts = intOf(field(m.body, 'parts'));
      const reset = field(m.body, 'reset') === true;
      [this.lastEnvelope, this.boardEpoch] = [envelope, epoch];
      const followed = await this.chain.follow(epoch, { prev, head: next, added, removed, parts, reset });
      if (!followed) actions.push(...(await this.#lostTrack(epoch)));
    }
    if (this.state === 'idle') return []; // history read before joining
    if (this.epoch !== null && epoch <= this.epoch) return actions; // old or repeated
    if (this.epoch !== null && epoch === this.epoch + 1 && !equalBytes(prev, this.rosterHead)) {
      return [...actions, notify('roster_fork', { epoch })];
    }
    if (this.epoch !== null && epoch > this.epoch + 1) actions.push(notify('roster_gap', { from: this.epoch, to: epoch }));
    const known = this.chain.rosterAt(epoch);
    if (truthy(m.body.ratchet) && this.sk !== null && this.epoch === epoch - 1 && this.state === 'in_meeting') {
      [this.roster, this.rosterHead] = [known ? known[0] : [], next];
      const derived = await ratchet(this.sk, this.config.meetingId, epoch);
      return [...actions, ...this.#install(epoch, derived, now, strOf(field(m.body, 'reason')))];
    }
    if ((known !== null && !known[0].includes(this.user)) || (this.state === 'joining' && !this.heardOwnAnnounce)) {
      return actions; // not for us, or from before we announced ourselves
    }
    [this.pendingPost, this.pendingKey, this.joinAttempts] = [m, key, 0];
    return [...actions, ...this.#openPending()];
  }

  async #lostTrack(epoch) {
    if (!['joining', 'in_meeting'].includes(this.state) || this.askedFor >= epoch) return [];
    this.askedFor = epoch;
    return [notify('roster_unknown', { epoch }), await this.#post('roster-request', { epoch })];
  }

  async #onRoster(m) {
    if (m.user !== this.manager) return [];
    this.chain.addPart(m.body);
    const epoch = intOf(field(m.body, 'epoch'));
    if (!Object.hasOwn(m.body, 'members') || !(await this.chain.snapshot(epoch))) return [];
    const known = this.chain.rosterAt(epoch);
    if (known !== null && epoch === this.epoch) {
      [this.roster, this.rosterHead] = known;
      return [notify('roster_recovered', { epoch })];
    }
    return [];
  }

  #openPending() {
    const m = this.pendingPost;
    if (m === null) return [];
    const envelope = Envelope.fromBytes(b64d(field(m.body, 'envelope'), 'envelope', { maxBytes: 16384 }));
    if (this.pendingKey === null || !equalBytes(envelope.signer, this.pendingKey.toBytes())) {
      this.pendingPost = null;
      return [notify('bad_message', { device: m.device, why: 'envelope signer' })];
    }
    return [this.#call('open_envelope', { message: m }, { envelope, sealer: this.pendingKey })];
  }

  async #opened(pending, result, error, now) {
    const m = pending.context.message;
    if (m !== this.pendingPost) return [];
    if (TRANSIENT_ERRORS.has(error)) {
      const delay = Math.min(2.0 * 2 ** Math.min(this.transientFailures, 16), TRANSIENT_RETRY_MAX_SECONDS);
      this.transientFailures += 1;
      this.retryAt = now + delay;
      return [notify('retrying', { in: delay }), ...this.#timers()];
    }
    this.transientFailures = 0;
    if (error !== null || result === null) {
      if (this.joinAttempts < this.joinRetryDelays.length) {
        this.retryAt = now + this.joinRetryDelays[this.joinAttempts];
        this.joinAttempts += 1;
        return this.#timers();
      }
      this.pendingPost = null;
      if (this.state === 'joining') {
        this.state = 'not_admitted';
        return [notify('not_admitted', { error })];
      }
      return [notify('key_unavailable', { epoch: m.body.epoch, error })];
    }
    const data = result.data;
    const epoch = intOf(field(m.body, 'epoch'));
    let carried = 0;
    for (const b of data.subarray(32)) carried = carried * 256 + b;
    if (data.length !== 40 || carried !== epoch) {
      return [notify('bad_message', { device: m.device, why: 'envelope contents' })];
    }
    if (this.epoch !== null && epoch <= this.epoch) return [];
    this.pendingPost = null;
    const known = this.chain.rosterAt(epoch);
    this.roster = known ? known[0] : [];
    this.rosterHead = head(field(m.body, 'head'), 'head');
    const actions = [];
    if (this.state === 'joining') {
      this.state = 'in_meeting';
      actions.push(notify('joined', { epoch }));
    }
    return [...actions, ...this.#install(epoch, data.slice(0, 32), now, strOf(field(m.body, 'reason')))];
  }
}

export { BoardMessage };
