// The browser's meeting client (src/sealroom/sdk/meeting.py, the participant's side): a
// ParticipantSession driven over the channel, with the key service reached through
// KeyServiceClient and media handed to a MediaPort (./media-port.js runs it in a Worker).
//
// It reads board messages in order, 256 at a time; checks each poster's device: from the
// card its announce carries (checked against the user's pinned key, fetched once per
// batch and kept for the meeting), and, for every manager's post (start, session keys,
// roster, manager, remove, admit, end), at the key service, which also refuses a device
// revoked as lost (the answer kept 60 s). A failed look-up is not repeated for 60 s, and a user posting from 3
// unknown devices gets no more look-ups meanwhile. A transient failure of the key service
// is retried with backoff (0.5 s doubling to 10 s) while the messages wait.
//
// Keys live in memory only: the session key in the session, the media keys in the port.
// When the meeting is over for this device (left, removed, ended), both are dropped and
// the device's own private keys forgotten.

import { b64d } from '../api/encoding.js';
import { DEVICE_CERT_LABEL, deviceCertificateMessage } from '../api/identity.js';
import { VerifyingKey } from '../crypto/signing.js';
import { MalformedInputError, SignatureError } from '../errors.js';
import { NetworkError, SdkError, ServiceRefusedError } from '../sdk/errors.js';
import { Channel, channelUrl } from './channel.js';
import { ParticipantSession } from './session.js';

export const KEY_CACHE_SECONDS = 60;
export const FAILED_LOOKUP_SECONDS = 60;
export const MAX_UNKNOWN_DEVICES_PER_USER = 3;
export const BOARD_BATCH = 256;
export const RETRY_SECONDS = 0.5;
export const RETRY_MAX_SECONDS = 10;
const CONTROL_KINDS = new Set(['start', 'session-key', 'roster', 'manager', 'remove', 'admit', 'end']);

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/** One browser device in one meeting. `await join()`; events go to onEvent(kind, detail). */
export class MeetingClient {
  #inbox = [];
  #wake = null;
  #lock = Promise.resolve();
  #timer = null;
  #timerAt = null;
  #keys = new Map(); // device -> [time, user, VerifyingKey]: from its card or a look-up
  #lookups = new Map(); // device -> [time, user, VerifyingKey]: the key service's answer
  #failedDevices = new Map(); // device -> when its look-up failed
  #failedUsers = new Map(); // user -> [times]
  #userKeys = new Map(); // user -> VerifyingKey | null (for the meeting)
  #closed = false;
  #options;

  /**
   * @param keys a registered KeyServiceClient
   * @param conference the conferencing service's URL (http(s) or ws(s))
   * @param config {meetingId, host, invitees}
   * @param jwt async (audience) => a JWT for this user
   * @param media a MediaPort: install({epoch, sessionKey, roster, me}), forget(),
   *   setSink(frame => void) for this device's outgoing frames, receive(ArrayBuffer)
   * @param joinRetryDelays the protocol's retries when opening a key (tests compress them)
   * @param clock () => seconds
   * @param onEvent (kind, detail) => void
   */
  constructor(keys, conference, config, { jwt, media = null, joinRetryDelays, clock = () => performance.now() / 1000, onEvent = () => {}, WebSocketImpl } = {}) {
    this.keys = keys;
    this.config = config;
    this.media = media;
    this.clock = clock;
    this.onEvent = onEvent;
    this.channel = new Channel(channelUrl(conference, config.meetingId), {
      token: jwt,
      ...(WebSocketImpl ? { WebSocketImpl } : {}),
      onBoard: (m) => this.#enqueue(m),
      onBadBoard: (exc) => this.#emit('bad_message', { error: exc.name }),
      onFrame: (frame) => this.media?.receive(frame),
      onError: (e) => this.#emit('channel_error', e),
      onClose: (e) => this.#emit('channel_closed', e),
    });
    this.session = null;
    this.#options = { joinRetryDelays };
  }

  #emit(kind, detail = {}) {
    try {
      this.onEvent(kind, detail);
    } catch (exc) {
      console.error('sealroom: an event handler failed', exc);
    }
  }

  // --- lifecycle ---

  /** Connect, announce this device (with its card) and wait for the manager's key. */
  async join() {
    const card = await this.#retrying(() => this.keys.ownCard());
    this.session = new ParticipantSession(this.config, {
      user: this.keys.userId,
      device: this.keys.deviceId,
      signingKey: this.keys.ks.signingKey,
      seqStart: Date.now(), // above anything an earlier run of this device posted
      card,
      ...(this.#options.joinRetryDelays ? { joinRetryDelays: this.#options.joinRetryDelays } : {}),
    });
    this.media?.setSink((frame) => this.channel.sendFrame(frame));
    await this.channel.open();
    this.#process();
    await this.#locked((now) => this.session.join(now));
  }

  /** Say goodbye on the board, drop every key and close the channel. */
  async leave() {
    if (this.session !== null) await this.#locked((now) => this.session.leave(now));
    this.close();
  }

  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#wake?.();
    this.channel.close();
    this.media?.forget();
  }

  get state() {
    return this.session?.state ?? 'idle';
  }

  async securityCode() {
    return this.session ? this.session.securityCode() : null;
  }

  /** Run one step of the session and everything that follows from it, one at a time, so
   *  posts leave in the order the session numbered them. */
  #locked(step) {
    const run = this.#lock.then(async () => this.#run(await step(this.clock())));
    this.#lock = run.catch((exc) => this.#emit('client_error', { error: String(exc) }));
    return run;
  }

  // --- the board ---

  #enqueue(message) {
    this.#inbox.push(message);
    this.#wake?.();
  }

  async #process() {
    while (!this.#closed) {
      if (this.#inbox.length === 0) {
        await new Promise((resolve) => {
          this.#wake = resolve;
        });
        this.#wake = null;
        continue;
      }
      const batch = this.#inbox.splice(0, BOARD_BATCH);
      try {
        await this.#learnUsers(batch);
      } catch (exc) {
        this.#emit('bad_message', { error: exc.name });
      }
      for (const message of batch) {
        try {
          const key = await this.#posterKey(message);
          if (key !== null) await this.#locked((now) => this.session.receive(message, key, now));
        } catch (exc) {
          this.#emit('bad_message', { error: exc.name });
        }
      }
    }
  }

  /** Fetch, in one request, the keys of the users whose devices' cards we must check. */
  async #learnUsers(messages) {
    const wanted = [
      ...new Set(
        messages
          .filter((m) => m.kind === 'announce' && !this.#keys.has(m.device) && !this.#userKeys.has(m.user) && isObject(m.body.card))
          .map((m) => m.user),
      ),
    ].sort();
    if (!wanted.length) return;
    const found = await this.#retrying(() => this.keys.findUserKeys(wanted));
    for (const user of wanted) {
      const pinned = found.get(user);
      this.#userKeys.set(user, pinned ? await VerifyingKey.fromBytes(pinned.signingKey) : null);
    }
  }

  /** The posting device's key: known already, from the card its announce carries, or, for
   *  a manager's post, looked up at the key service. A card vouches for a device's posts
   *  as a participant; a manager's posts are checked at the key service whatever the card
   *  said (a device revoked as lost must not post session keys), with the answer kept for
   *  KEY_CACHE_SECONDS. (sdk/meeting.py keeps a card's key with no expiry in the same cache
   *  as the look-ups, so there a manager that announced with a card is never looked up.) */
  async #posterKey(message) {
    const known = this.#keys.get(message.device);
    if (!CONTROL_KINDS.has(message.kind) && known !== undefined) {
      return known[1] === message.user ? known[2] : null;
    }
    const card = message.kind === 'announce' ? message.body.card : undefined;
    if (isObject(card) && known === undefined) {
      const key = await this.#checkCard(message, card);
      if (key !== null) {
        this.#keys.set(message.device, [this.clock(), message.user, key]);
        return key;
      }
    }
    if (CONTROL_KINDS.has(message.kind) || known === undefined) return this.#senderKey(message);
    return null;
  }

  async #checkCard(message, card) {
    const userKey = this.#userKeys.get(message.user);
    if (!userKey) return null;
    try {
      const signing = b64d(card.signing_key, 'signing_key');
      const publicKey = b64d(card.public_key, 'public_key');
      await userKey.verify(DEVICE_CERT_LABEL, deviceCertificateMessage(message.device, signing, publicKey), b64d(card.certificate, 'certificate'));
      return await VerifyingKey.fromBytes(signing);
    } catch (exc) {
      if (exc instanceof SignatureError || exc instanceof MalformedInputError || exc instanceof TypeError) {
        this.#emit('bad_message', { device: message.device });
        return null;
      }
      throw exc;
    }
  }

  /** The posting device's key, trusted only through its certificate and pinned user; at
   *  most one look-up per message, failures remembered. */
  async #senderKey(message) {
    const now = this.clock();
    let cached = this.#lookups.get(message.device);
    if (cached === undefined || now - cached[0] > KEY_CACHE_SECONDS) {
      if (this.#lookupRefused(message, now)) return null;
      try {
        const info = await this.#retrying(() => this.keys.deviceInfo(message.device));
        const key = await this.#retrying(() => this.keys.certified(info)); // not if lost
        cached = [now, String(info.user_id), key];
        this.#lookups.set(message.device, cached);
        if (!this.#keys.has(message.device)) this.#keys.set(message.device, cached);
      } catch (exc) {
        if (!(exc instanceof SdkError || exc instanceof MalformedInputError || exc instanceof TypeError)) throw exc;
        this.#lookups.delete(message.device);
        this.#failedDevices.set(message.device, now);
        this.#failedUsers.set(message.user, [...(this.#failedUsers.get(message.user) ?? []), now]);
        this.#emit('bad_message', { device: message.device });
        return null;
      }
    }
    return cached[1] === message.user ? cached[2] : null;
  }

  #lookupRefused(message, now) {
    const failedAt = this.#failedDevices.get(message.device);
    if (failedAt !== undefined && now - failedAt < FAILED_LOOKUP_SECONDS) return true;
    const recent = (this.#failedUsers.get(message.user) ?? []).filter((t) => now - t < FAILED_LOOKUP_SECONDS);
    this.#failedUsers.set(message.user, recent);
    if (this.#failedDevices.size > 4096) {
      const cutoff = [...this.#failedDevices.values()].sort((a, b) => a - b)[this.#failedDevices.size - 2048];
      for (const [d, t] of this.#failedDevices) if (t < cutoff) this.#failedDevices.delete(d);
    }
    return recent.length >= MAX_UNKNOWN_DEVICES_PER_USER;
  }

  /** call(), again after a transient failure (the service unreachable or failing),
   *  backing off; a refusal (4xx) is not retried. */
  async #retrying(fn) {
    let delay = RETRY_SECONDS;
    for (;;) {
      try {
        return await fn();
      } catch (exc) {
        const transient =
          (exc instanceof ServiceRefusedError && (exc.status >= 500 || exc.status === 429)) || exc instanceof NetworkError;
        if (!transient || this.#closed) throw exc;
      }
      this.#emit('retrying', { in: delay });
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_SECONDS);
    }
  }

  // --- actions ---

  async #run(actions) {
    for (const action of actions) await this.#do(action);
  }

  async #do(action) {
    switch (action.type) {
      case 'post':
        this.channel.post(action.message);
        break;
      case 'call': {
        const [result, error] = await this.#keyService(action);
        await this.#run(await this.session.keyServiceReply(action.id, result, error, this.clock()));
        break;
      }
      case 'install':
        this.media?.install({ epoch: action.epoch, sessionKey: action.sessionKey, roster: [...this.session.roster], me: this.keys.userId });
        break;
      case 'retire':
        if (['ended', 'left'].includes(this.session.state)) this.media?.forget();
        break;
      case 'callMeAt':
        this.#schedule(action.when);
        break;
      case 'notify':
        if (action.event === 'ended' && this.session.banned.has(this.session.user)) {
          this.#emit('removed', {}); // the manager's `remove` named us: not the meeting's end
        }
        if (action.event === 'roster_recovered' && action.detail.epoch === this.session.epoch && this.session.sk) {
          // The key was installed while the roster was unknown (no sender index known):
          // now that it is, the media keys of this epoch can name their senders.
          this.media?.install({ epoch: this.session.epoch, sessionKey: this.session.sk, roster: [...this.session.roster], me: this.keys.userId });
        }
        this.#emit(action.event, action.detail);
        break;
      case 'rotate':
        // This browser device's keys exist only in this page: forgetting them ends the
        // device (nobody can decrypt for it again).
        this.keys.forgetDevice();
        this.#emit('device_forgotten');
        break;
      default:
        throw new Error(`unknown action ${action.type}`);
    }
  }

  async #keyService(action) {
    if (action.op !== 'open_envelope') return [null, 'unknown_op'];
    try {
      const data = await this.keys.openGroupEnvelope(action.args.envelope, action.args.group);
      return [{ data }, null];
    } catch (exc) {
      if (exc instanceof ServiceRefusedError) return [null, exc.code];
      if (exc instanceof NetworkError) return [null, 'unreachable']; // retried, as a 503 is
      return [null, `sdk:${exc.name}`];
    }
  }

  /** Wake the session at `when`; an earlier wake-up already set stays. */
  #schedule(when) {
    if (this.#timerAt !== null && this.#timerAt <= when) return;
    clearTimeout(this.#timer);
    this.#timerAt = when;
    this.#timer = setTimeout(() => {
      this.#timerAt = null;
      this.#locked((now) => this.session.timer(now));
    }, Math.max(0, (when - this.clock()) * 1000));
  }
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
