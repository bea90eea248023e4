// The meeting channel from a browser (or any WebSocket): one socket per meeting at
// /v1/meetings/{id}/channel on the conferencing service (docs/meetings.md). This module is
// the only one that knows the channel's wire: how the token is passed, how board messages
// and errors arrive (text), how media frames travel (binary), how a post is framed.
//
// The token rides in Sec-WebSocket-Protocol (a browser cannot set Authorization on a
// WebSocket): the client offers `sealroom.v1` and `sealroom.bearer.<JWT>`, and the service
// selects `sealroom.v1` without echoing the token. A page must come from an origin the
// service allows.

import { JsonError, dumps, parse } from '../json.js';
import { BoardMessage } from './messages.js';

export const SUBPROTOCOL = 'sealroom.v1';
export const BEARER_PREFIX = 'sealroom.bearer.';
export const CONFERENCE_AUDIENCE = 'sealroom-conference';

/** The channel's URL for a meeting, from the service's http(s) or ws(s) base URL. */
export function channelUrl(base, meetingId) {
  let url = base.replace(/\/+$/, '');
  if (url.startsWith('http')) url = 'ws' + url.slice(4);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(meetingId)) throw new RangeError('bad meeting id');
  return `${url}/v1/meetings/${meetingId}/channel`;
}

/**
 * One connection to one meeting's channel.
 *
 * Handlers: onBoard(BoardMessage), onBadBoard(error), onFrame(ArrayBuffer),
 * onError({code, detail}) for the service's refusals of what we sent, onClose({code,
 * reason}) when the socket closes (1011: the service's broker failed; reconnecting, and
 * when, is the application's call).
 */
export class Channel {
  #ws = null;
  #handlers;

  constructor(url, { token, WebSocketImpl = globalThis.WebSocket, ...handlers }) {
    this.url = url;
    this.token = token; // async (audience) => JWT
    this.WebSocketImpl = WebSocketImpl;
    this.#handlers = handlers;
  }

  /** Open the socket; resolves once the service accepted it. */
  async open() {
    const jwt = await this.token(CONFERENCE_AUDIENCE);
    const ws = new this.WebSocketImpl(this.url, [SUBPROTOCOL, BEARER_PREFIX + jwt]);
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    await new Promise((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onclose = (e) => reject(new Error(`the channel refused us (${e.code} ${e.reason})`));
    });
    ws.onmessage = (e) => this.#receive(e.data);
    ws.onclose = (e) => this.#handlers.onClose?.({ code: e.code, reason: e.reason });
  }

  #receive(data) {
    if (typeof data !== 'string') {
      this.#handlers.onFrame?.(data);
      return;
    }
    let envelope;
    try {
      envelope = parse(data);
    } catch (exc) {
      if (exc instanceof JsonError) return this.#handlers.onBadBoard?.(exc);
      throw exc;
    }
    if (envelope?.type === 'board') {
      let message;
      try {
        message = BoardMessage.fromWire(dumps(envelope.message));
      } catch (exc) {
        return this.#handlers.onBadBoard?.(exc);
      }
      this.#handlers.onBoard?.(message);
    } else if (envelope?.type === 'error') {
      this.#handlers.onError?.({ code: String(envelope.code), detail: String(envelope.detail ?? '') });
    }
  }

  /** Post a signed board message. */
  post(message) {
    this.#ws.send(`{"type":"post","message":${message.toWire()}}`);
  }

  /** Send one SFrame frame to the other participants (never echoed back to us). */
  sendFrame(frame) {
    if (this.#ws?.readyState === 1) this.#ws.send(frame);
  }

  /** Bytes queued in the socket, not yet sent (a sender backs off when it grows). */
  get buffered() {
    return this.#ws?.bufferedAmount ?? 0;
  }

  close() {
    if (this.#ws !== null) {
      this.#ws.onclose = null;
      this.#ws.close();
    }
  }
}
