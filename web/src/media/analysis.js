// What a receiver can measure about decoded media, so that tests, the demo and a curious
// user can check it against what was sent: a video frame's luma digest (the same as the
// Python demo's, src/sealroom/demo/media.py: VP8 decoding is exact) and a tone's
// frequency. Nothing here is needed to play a meeting.

import { toHex } from '../bytes.js';

/** The first 16 hex digits of SHA-256 over a decoded frame's Y plane, row by row without
 *  padding (a VideoFrame in I420). */
export async function lumaDigest(frame) {
  const width = frame.visibleRect?.width ?? frame.codedWidth;
  const height = frame.visibleRect?.height ?? frame.codedHeight;
  const size = frame.allocationSize();
  const buffer = new Uint8Array(size);
  const layout = await frame.copyTo(buffer);
  const y = new Uint8Array(width * height);
  for (let row = 0; row < height; row++) {
    const start = layout[0].offset + row * layout[0].stride;
    y.set(buffer.subarray(start, start + width), row * width);
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', y));
  return toHex(digest).slice(0, 16);
}

/** Estimates the frequency of a steady tone from its samples: the time between the first
 *  and the last rising zero crossing over a sliding second, with hysteresis against noise. */
export class ToneMeter {
  #samples;
  #filled = 0;
  #rate;

  constructor(sampleRate = 48000, seconds = 1) {
    this.#rate = sampleRate;
    this.#samples = new Float32Array(Math.round(sampleRate * seconds));
  }

  push(chunk) {
    const room = this.#samples.length;
    if (chunk.length >= room) {
      this.#samples.set(chunk.subarray(chunk.length - room));
      this.#filled = room;
      return;
    }
    const keep = Math.min(this.#filled, room - chunk.length);
    this.#samples.copyWithin(0, this.#filled - keep, this.#filled);
    this.#samples.set(chunk, keep);
    this.#filled = keep + chunk.length;
  }

  /** Hz, or null until a quarter second of a clear tone has been heard. */
  frequency() {
    const s = this.#samples.subarray(0, this.#filled);
    let peak = 0;
    for (const v of s) peak = Math.max(peak, Math.abs(v));
    if (peak < 0.01 || s.length < this.#rate / 4) return null;
    const low = -peak / 4;
    let armed = false;
    let first = null;
    let last = null;
    let crossings = 0;
    for (let i = 1; i < s.length; i++) {
      if (s[i] < low) armed = true;
      if (armed && s[i - 1] < 0 && s[i] >= 0) {
        const t = i - 1 + -s[i - 1] / (s[i] - s[i - 1]);
        if (first === null) first = t;
        last = t;
        crossings += 1;
        armed = false;
      }
    }
    if (crossings < 3) return null;
    return ((crossings - 1) * this.#rate) / (last - first);
  }
}
