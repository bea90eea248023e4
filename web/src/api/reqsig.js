// Device request signatures (src/sealroom/api/reqsig.py). The signature covers the method,
// the path, the raw query string, a SHA-256 digest of the body, a timestamp, a nonce and
// the device id, under its own label.

import { randomBytes, sha256, toHex, utf8 } from '../bytes.js';
import { MalformedInputError } from '../errors.js';
import { b64d, b64e } from './encoding.js';

export const LABEL = utf8('sealroom/v1/sig/request');
export const HEADER_DEVICE = 'sealroom-device';
export const HEADER_TIMESTAMP = 'sealroom-timestamp';
export const HEADER_NONCE = 'sealroom-nonce';
export const HEADER_SIGNATURE = 'sealroom-signature';
export const MAX_SKEW_SECONDS = 120;
export const NONCE_BYTES = 16;

/** The exact bytes a device signs. */
export async function canonical(method, path, query, body, { timestamp, nonce, device }) {
  const lines = [
    'sealroom-request-v1',
    method.toUpperCase(),
    path,
    query,
    toHex(await sha256(body)),
    String(timestamp),
    b64e(nonce),
    device,
  ];
  return utf8(lines.join('\n'));
}

/** The headers that authenticate one request (`now` in seconds). */
export async function signRequest(key, deviceId, { method, path, query = '', body = new Uint8Array(0), now, nonce = null }) {
  const n = nonce ?? randomBytes(NONCE_BYTES);
  const timestamp = Math.floor(now);
  const message = await canonical(method, path, query, body, { timestamp, nonce: n, device: deviceId });
  const signature = await key.sign(LABEL, message);
  return {
    [HEADER_DEVICE]: deviceId,
    [HEADER_TIMESTAMP]: String(timestamp),
    [HEADER_NONCE]: b64e(n),
    [HEADER_SIGNATURE]: b64e(signature),
  };
}

/** The authentication headers of a request, parsed but not yet verified. */
export class SignedRequest {
  constructor(deviceId, timestamp, nonce, signature) {
    Object.assign(this, { deviceId, timestamp, nonce, signature });
    Object.freeze(this);
  }

  /** Throws SignatureError unless `key` signed exactly this request. */
  async verify(key, method, path, query, body) {
    const message = await canonical(method, path, query, body, {
      timestamp: this.timestamp,
      nonce: this.nonce,
      device: this.deviceId,
    });
    await key.verify(LABEL, message, this.signature);
  }
}

/** null if the headers carry no device signature; MalformedInputError if broken. `headers`
 *  is a plain object with lower-case names, or a Headers. */
export function parseHeaders(headers) {
  const get = (name) => (typeof headers.get === 'function' ? headers.get(name) : headers[name]) ?? null;
  const device = get(HEADER_DEVICE);
  if (device === null) return null;
  const ts = get(HEADER_TIMESTAMP) ?? '';
  if (!/^[0-9]{1,12}$/.test(ts)) throw new MalformedInputError('request signature: bad timestamp');
  if (device.length < 1 || device.length > 64) throw new MalformedInputError('request signature: bad device id');
  const nonce = b64d(get(HEADER_NONCE) ?? '', 'nonce', { maxBytes: NONCE_BYTES });
  if (nonce.length !== NONCE_BYTES) {
    throw new MalformedInputError(`request signature: nonce must be ${NONCE_BYTES} bytes`);
  }
  const signature = b64d(get(HEADER_SIGNATURE) ?? '', 'signature', { maxBytes: 64 });
  return new SignedRequest(device, Number(ts), nonce, signature);
}
