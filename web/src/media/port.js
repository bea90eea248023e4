// The page's side of the media Worker (./worker.js): the MeetingClient installs and forgets
// keys through it and hands it the relay's frames; the page gets decoded video frames
// (VideoFrame, to draw and close), audio samples, this device's own video as the others
// decode it, and counts. Capture (camera and microphone) is read here with
// MediaStreamTrackProcessor and the streams are handed to the Worker, which encodes them.

export class MediaPort {
  #worker;
  #sink = () => {};
  #reports = new Map();
  #nextReport = 1;
  stats = null;

  /**
   * @param inspect record digests of decoded frames and tone frequencies (tests, demo)
   * @param switchDelay seconds before a fresh key is used for sending
   * @param graceSeconds how long a previous epoch's key is kept
   * @param onVideo(sender, frame, index), onSelf(frame, index), onAudio(sender, samples,
   *   rate), onStats(stats), onError(what, error)
   */
  constructor({ workerUrl = new URL('./worker.js', import.meta.url), inspect = false, switchDelay = 0.5, graceSeconds = 2, keyInterval = 30, ...handlers } = {}) {
    this.handlers = handlers;
    this.#worker = new Worker(workerUrl, { type: 'module' });
    this.#worker.onmessage = ({ data }) => this.#event(data);
    this.#worker.onerror = (e) => handlers.onError?.('worker', e.message);
    this.#worker.postMessage({ op: 'config', config: { inspect, switchDelay, graceSeconds, keyInterval } });
  }

  #event(m) {
    switch (m.ev) {
      case 'send':
        this.#sink(m.data);
        break;
      case 'video':
        if (this.handlers.onVideo) this.handlers.onVideo(m.sender, m.frame, m.index);
        else m.frame.close();
        break;
      case 'self':
        if (this.handlers.onSelf) this.handlers.onSelf(m.frame, m.index);
        else m.frame.close();
        break;
      case 'audio':
        this.handlers.onAudio?.(m.sender, m.samples, m.rate);
        break;
      case 'stats':
        this.stats = m.stats;
        this.handlers.onStats?.(m.stats);
        break;
      case 'report':
        this.#reports.get(m.id)?.(m.report);
        this.#reports.delete(m.id);
        break;
      case 'error':
        this.handlers.onError?.(m.what, m.error);
        break;
      default:
        break;
    }
  }

  /** Where this device's encrypted frames go (the channel). */
  setSink(sink) {
    this.#sink = sink;
  }

  install({ epoch, sessionKey, roster, me }) {
    this.#worker.postMessage({ op: 'install', epoch, sessionKey: new Uint8Array(sessionKey), roster, user: me });
  }

  /** Drop every media key at once (the meeting is over for this device). */
  forget() {
    this.#worker.postMessage({ op: 'forget' });
  }

  /** A frame from the relay (an ArrayBuffer; it moves to the Worker). */
  receive(buffer) {
    this.#worker.postMessage({ op: 'frame', data: buffer }, [buffer]);
  }

  /** Encode and send this MediaStream's first video and audio tracks. */
  capture(stream, { width = 320, height = 240, fps = 15, bitrate = 300_000 } = {}) {
    const [video] = stream.getVideoTracks();
    const [audio] = stream.getAudioTracks();
    const readable = (track) => (track ? new MediaStreamTrackProcessor({ track }).readable : null);
    const v = readable(video);
    const a = readable(audio);
    const transfer = [v, a].filter((s) => s !== null);
    this.#worker.postMessage({ op: 'capture', video: v, audio: a, settings: { width, height, fps, bitrate } }, transfer);
  }

  /** Everything the Worker counted and (with inspect) recorded, once the frames that
   *  arrived before this call are handled. */
  report() {
    const id = this.#nextReport++;
    return new Promise((resolve) => {
      this.#reports.set(id, resolve);
      this.#worker.postMessage({ op: 'report', id });
    });
  }

  close() {
    this.#worker.terminate();
  }
}
