// The media payload inside each SFrame frame (src/sealroom/media/payload.py): version 1,
// kind ('v' 0x76 a VP8 frame, 'a' 0x61 an Opus packet at 48 kHz), a 32-bit big-endian
// index counting the sender's units of that kind, then the codec's bytes.

import { MalformedInputError } from '../errors.js';

export const VERSION = 1;
export const VIDEO = 'video';
export const AUDIO = 'audio';
export const HEADER_BYTES = 6;
export const MAX_INDEX = 2 ** 32 - 1;
const KIND_BYTES = { video: 0x76, audio: 0x61 };
const KINDS = new Map([[0x76, VIDEO], [0x61, AUDIO]]);

/** {kind, index, data} as payload bytes. */
export function pack({ kind, index, data }) {
  const code = KIND_BYTES[kind];
  if (code === undefined) throw new RangeError(`unknown media kind ${kind}`);
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw new RangeError('the index must fit 32 bits');
  if (!(data instanceof Uint8Array) || data.length === 0) throw new RangeError('a payload carries at least one codec byte');
  const out = new Uint8Array(HEADER_BYTES + data.length);
  out[0] = VERSION;
  out[1] = code;
  new DataView(out.buffer).setUint32(2, index);
  out.set(data, HEADER_BYTES);
  return out;
}

/** {kind, index, data} from payload bytes; MalformedInputError unless it is version 1. */
export function unpack(payload) {
  if (!(payload instanceof Uint8Array) || payload.length <= HEADER_BYTES) {
    throw new MalformedInputError(`media payload: expected more than ${HEADER_BYTES} bytes`);
  }
  if (payload[0] !== VERSION) throw new MalformedInputError(`media payload: unsupported version ${payload[0]}`);
  const kind = KINDS.get(payload[1]);
  if (kind === undefined) throw new MalformedInputError('media payload: unknown kind');
  const index = new DataView(payload.buffer, payload.byteOffset, payload.length).getUint32(2);
  return { kind, index, data: payload.subarray(HEADER_BYTES) };
}

/** Whether a VP8 frame is a key frame (RFC 6386 §9.1). */
export function isKeyFrame(vp8) {
  return vp8.length >= 10 && (vp8[0] & 1) === 0 && vp8[3] === 0x9d && vp8[4] === 0x01 && vp8[5] === 0x2a;
}
