// A browser participant, without its user interface: what web/meeting.html uses, and what
// an application embeds (docs/web.md). It becomes a device of its user (approved from the
// user's existing device, or through the escrow), joins a meeting, and moves media between
// the page and the media Worker.
//
//   const p = new Participant({ conference, meeting: { meetingId, host, invitees }, jwt });
//   const payload = await p.requestApproval(userId);   // show it (QR code and text)
//   await p.waitForApproval();                          // the other device approved it
//   p.addEventListener('event', (e) => ...);            // joined, rekeyed, ended, removed…
//   await p.join();
//   p.capture(await navigator.mediaDevices.getUserMedia({ video: true, audio: true }));
//
// Events (CustomEvent, detail in e.detail): 'event' {kind, detail} for every meeting
// event; 'video' {sender, frame, index} (draw the VideoFrame, then close it); 'self'
// {frame, index}; 'audio' {sender, samples, rate}; 'stats' (the Worker's counts).

import { b64d } from './api/encoding.js';
import { KeyServiceClient } from './sdk/client.js';
import { EscrowSecret } from './crypto/escrow.js';
import { MeetingClient } from './meeting/client.js';
import { MediaPort } from './media/port.js';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Participant extends EventTarget {
  /**
   * @param keyService the key service's URL ('' for this page's origin)
   * @param conference the conferencing service's URL
   * @param meeting {meetingId, host, invitees}: what the invitation says
   * @param jwt async (audience) => a JWT for the signed-in user
   * @param inspect record what was decoded (digests, tone frequencies) for checks
   * @param joinRetryDelays, switchDelay: the protocol's waits (tests compress them)
   */
  constructor({ keyService = '', conference, meeting, jwt, inspect = false, joinRetryDelays, switchDelay = 0.5, keyInterval = 30 }) {
    super();
    this.keys = new KeyServiceClient(keyService, { jwt });
    this.meeting = meeting;
    this.jwt = jwt;
    this.events = [];
    this.media = new MediaPort({
      inspect,
      switchDelay,
      keyInterval,
      onVideo: (sender, frame, index) => this.#fire('video', { sender, frame, index }, () => frame.close()),
      onSelf: (frame, index) => this.#fire('self', { frame, index }, () => frame.close()),
      onAudio: (sender, samples, rate) => this.#fire('audio', { sender, samples, rate }),
      onStats: (stats) => this.#fire('stats', stats),
      onError: (what, error) => this.#note('media_error', { what, error }),
    });
    this.client = new MeetingClient(this.keys, conference, meeting, {
      jwt,
      media: this.media,
      joinRetryDelays,
      onEvent: (kind, detail) => this.#note(kind, detail),
    });
  }

  /** Dispatch an event; if nobody listens, `unused` disposes of what it carried. */
  #fire(type, detail, unused = () => {}) {
    const event = new CustomEvent(type, { detail, cancelable: true });
    this.dispatchEvent(event);
    if (!event.defaultPrevented && type !== 'audio' && type !== 'stats') unused();
  }

  #note(kind, detail = {}) {
    const entry = { at: performance.now(), kind, detail };
    this.events.push(entry);
    if (this.events.length > 2000) this.events.shift();
    this.dispatchEvent(new CustomEvent('event', { detail: entry }));
  }

  // --- becoming a device of the user ---

  /** Make this device's keys (in memory) and return the approval payload to show. */
  async requestApproval(userId) {
    return this.keys.requestApproval(userId);
  }

  /** Wait until the user's existing device has approved this one, then pin the keys. */
  async waitForApproval({ every = 1000, signal } = {}) {
    while (!(await this.keys.isRegistered())) {
      if (signal?.aborted) throw new Error('approval abandoned');
      await sleep(every);
    }
    await this.keys.completeApproval();
    this.#note('device_approved', { device: this.keys.deviceId });
  }

  /** Become a device through the escrow, in the basic split-trust mode: the provider's
   *  half comes from the application (its IdP), the key service's with the user's JWT. */
  async enrollWithSplitTrust(providerHalf) {
    const secret = await this.keys.splitTrustSecret(providerHalf);
    await this.keys.registerWithEscrow(secret);
    this.#note('device_registered', { device: this.keys.deviceId, via: 'escrow' });
  }

  /** Become a device through the escrow, with the user's password. */
  async enrollWithPassword(password) {
    await this.keys.registerWithEscrow(EscrowSecret.fromPassword(password));
    this.#note('device_registered', { device: this.keys.deviceId, via: 'password' });
  }

  // --- the meeting ---

  async join() {
    await this.client.join();
  }

  /** Send this stream's camera and microphone (encoded and encrypted in the Worker). */
  capture(stream, settings) {
    this.media.capture(stream, settings);
  }

  async leave() {
    await this.client.leave();
  }

  get state() {
    return this.client.state;
  }

  /** What the page shows: state, epoch, roster, manager, security code. */
  async snapshot() {
    const s = this.client.session;
    return {
      user: this.keys.ks.userId,
      device: this.keys.ks.deviceId,
      state: this.client.state,
      epoch: s?.epoch ?? null,
      roster: s ? [...s.roster] : [],
      present: s ? [...s.present.keys()].sort() : [],
      manager: s?.manager ?? null,
      code: await this.client.securityCode(),
    };
  }

  /** The Worker's counts and, with inspect, what it decoded. */
  report() {
    return this.media.report();
  }
}

/** Tokens from the development IdP (`sealroom idp`: POST /v1/token), for a user id typed
 *  into the page. NOT for production: a real application gets its tokens from its SSO. */
export function devIdpTokens(idpUrl, userId) {
  const base = idpUrl.replace(/\/+$/, '');
  const cache = new Map(); // audience -> [token, expires]
  return async (audience) => {
    const hit = cache.get(audience);
    if (hit && hit[1] > Date.now()) return hit[0];
    const r = await fetch(`${base}/v1/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: userId, audience }),
    });
    if (!r.ok) throw new Error(`the IdP refused a token (${r.status})`);
    const { token } = await r.json();
    cache.set(audience, [token, Date.now() + 120_000]); // it lives 300 s
    return token;
  };
}

/** The provider's escrow half from the development IdP (the basic split-trust mode). */
export async function devIdpProviderHalf(idpUrl, jwt) {
  const r = await fetch(`${idpUrl.replace(/\/+$/, '')}/v1/escrow-half`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await jwt('sealroom-provider')}` },
  });
  if (!r.ok) throw new Error(`the IdP refused the escrow half (${r.status})`);
  const { half } = await r.json();
  return b64d(half, 'half', { maxBytes: 16 });
}
