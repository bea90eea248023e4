// Playing decoded audio through Web Audio: each sender's chunks are scheduled back to back
// on one AudioContext, a little ahead of the clock (a small jitter buffer), and mixed.

export class AudioPlayer {
  #ctx;
  #next = new Map(); // sender -> when its next chunk starts (context time)
  played = 0;

  constructor({ latency = 0.06 } = {}) {
    this.latency = latency;
    this.#ctx = new AudioContext({ latencyHint: 'interactive' });
  }

  /** 'running', or 'suspended' until the user allows sound (a click on the page). */
  get state() {
    return this.#ctx.state;
  }

  resume() {
    return this.#ctx.resume();
  }

  play(sender, samples, rate) {
    if (this.#ctx.state !== 'running') return;
    const buffer = this.#ctx.createBuffer(1, samples.length, rate);
    buffer.copyToChannel(samples, 0);
    const source = this.#ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.#ctx.destination);
    const now = this.#ctx.currentTime;
    let at = this.#next.get(sender) ?? 0;
    if (at < now || at > now + 1) at = now + this.latency; // late or drifted: start over
    source.start(at);
    this.#next.set(sender, at + buffer.duration);
    this.played += 1;
  }

  forget(sender) {
    this.#next.delete(sender);
  }

  close() {
    return this.#ctx.close();
  }
}
