// The media Worker: every SFrame key of the meeting lives here, and only here. It decrypts
// the relayed frames and decodes them with WebCodecs (VP8 video, Opus audio), and encodes
// and encrypts this device's camera and microphone. The page (./port.js) hands it the
// session keys as the meeting installs them and the frames the relay sends, and gets back
// decoded video frames, audio samples, frames to send, and counts (what decrypted, what
// could not, per sender and per epoch).
//
// Keys: an epoch is installed when the meeting's key for it arrives; the previous one stays
// for the grace period; on `forget` every key goes at once (left, removed, ended). A fresh
// key is used for sending only after the switch delay (so the others have it); a ratchet
// at once, as src/sealroom/sdk/meeting.py does.

import { FrameRejectedError, Receiver, Sender } from './keys.js';
import { lumaDigest, ToneMeter } from './analysis.js';
import { AUDIO, VIDEO, isKeyFrame, pack, unpack } from './payload.js';

const now = () => performance.now() / 1000;
const KEEP_DIGESTS = 4000;
const STATS_EVERY_MS = 250;

let receiver = new Receiver();
let config = { inspect: false, switchDelay: 0.5, graceSeconds: 2, keyInterval: 30 };
const rosters = new Map(); // epoch -> roster (user ids by sender index)
let sender = null;
let nextSender = null; // [at, Sender]
let forgotten = false;
let order = Promise.resolve(); // frames are handled in arrival order

const stats = {
  frames: 0, // frames the relay sent
  decrypted: {}, // epoch -> count
  failed: {}, // epoch ('none' when not even the header parsed) -> count
  bySender: {}, // user -> {decrypted, failed, video, audio, badPayload}
  sent: { video: 0, audio: 0, dropped: 0 },
  sinceForget: { decrypted: 0, failed: 0 },
  epochs: [],
  sending: null,
  toneHz: {},
};
const digests = new Map(); // sender -> Map(index -> digest)
const sentDigests = new Map(); // index -> digest
const tones = new Map(); // sender -> ToneMeter
const videoDecoders = new Map(); // sender -> {decoder, next}
const audioDecoders = new Map();
let dirty = true;

function who(epoch, index) {
  const roster = rosters.get(epoch);
  return roster && index !== null && index < roster.length ? roster[index] : null;
}

function tally(user) {
  stats.bySender[user] ??= { decrypted: 0, failed: 0, video: 0, audio: 0, badPayload: 0 };
  return stats.bySender[user];
}

function remember(map, key, value) {
  map.set(key, value);
  if (map.size > KEEP_DIGESTS) map.delete(map.keys().next().value);
}

// --- keys ----------------------------------------------------------------------------------

async function install({ epoch, sessionKey, roster, user }) {
  if (forgotten) return;
  const known = rosters.get(epoch);
  if (known !== undefined) {
    // Installed again with the roster recovered: only an epoch installed without one (no
    // frame of it was accepted, so no replay window is lost) is set up anew.
    if (known.length > 0 || roster.length === 0) return;
    receiver.retire(epoch);
  }
  rosters.set(epoch, roster);
  receiver.install(epoch, sessionKey, now(), roster.length);
  for (const e of [...rosters.keys()]) if (e < epoch - 8) rosters.delete(e);
  const index = roster.indexOf(user);
  if (index >= 0) {
    const fresh = await Sender.create(sessionKey, epoch, index);
    const ratcheted = epoch > 0 && sender !== null && sender.epoch === epoch - 1;
    if (sender === null || ratcheted) [sender, nextSender] = [fresh, null];
    else nextSender = [now() + config.switchDelay, fresh];
  }
  stats.epochs = receiver.epochs;
  dirty = true;
}

function forget() {
  forgotten = true;
  for (const e of receiver.epochs) receiver.retire(e);
  receiver = new Receiver({ graceSeconds: config.graceSeconds });
  rosters.clear();
  sender = nextSender = null;
  stats.epochs = [];
  stats.sending = null;
  dirty = true;
}

// --- receiving -----------------------------------------------------------------------------

function receive(buffer) {
  stats.frames += 1;
  const frame = new Uint8Array(buffer);
  const result = receiver.decrypt(new Uint8Array(0), frame, now()).then(
    (ok) => ({ ok }),
    (error) => ({ error }),
  );
  order = order.then(async () => handle(await result));
}

async function handle({ ok, error }) {
  dirty = true;
  if (error !== undefined) {
    if (!(error instanceof FrameRejectedError)) throw error;
    const key = error.epoch ?? 'none';
    stats.failed[key] = (stats.failed[key] ?? 0) + 1;
    if (forgotten) stats.sinceForget.failed += 1;
    const user = who(error.epoch, error.sender) ?? (error.epoch === null ? 'unknown' : `sender ${error.sender} of epoch ${error.epoch}`);
    tally(user).failed += 1;
    return;
  }
  stats.decrypted[ok.epoch] = (stats.decrypted[ok.epoch] ?? 0) + 1;
  if (forgotten) stats.sinceForget.decrypted += 1;
  const user = who(ok.epoch, ok.sender) ?? `sender ${ok.sender}`;
  const t = tally(user);
  t.decrypted += 1;
  let packet;
  try {
    packet = unpack(ok.plaintext);
  } catch {
    t.badPayload += 1;
    return;
  }
  if (packet.kind === VIDEO) decodeVideo(user, packet, t);
  else if (packet.kind === AUDIO) decodeAudio(user, packet, t);
}

function decodeVideo(user, packet, t) {
  let state = videoDecoders.get(user);
  const key = isKeyFrame(packet.data);
  if (state === undefined) {
    if (!key) return; // start at a key frame
    const decoder = new VideoDecoder({
      output: (frame) => shown(user, frame),
      error: () => videoDecoders.delete(user),
    });
    decoder.configure({ codec: 'vp8', optimizeForLatency: true });
    state = { decoder, next: null };
    videoDecoders.set(user, state);
  }
  if (!key && packet.index !== state.next) {
    state.next = null; // a gap: wait for the next key frame
    return;
  }
  state.next = packet.index + 1;
  t.video += 1;
  state.decoder.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp: packet.index, data: packet.data }));
}

async function shown(user, frame) {
  let digest = null;
  if (config.inspect) {
    digest = await lumaDigest(frame);
    let map = digests.get(user);
    if (map === undefined) digests.set(user, (map = new Map()));
    remember(map, frame.timestamp, digest);
  }
  postMessage({ ev: 'video', sender: user, index: frame.timestamp, frame }, [frame]);
}

function decodeAudio(user, packet, t) {
  let decoder = audioDecoders.get(user);
  if (decoder === undefined) {
    decoder = new AudioDecoder({
      output: (data) => heard(user, data),
      error: () => audioDecoders.delete(user),
    });
    decoder.configure({ codec: 'opus', sampleRate: 48000, numberOfChannels: 1 });
    audioDecoders.set(user, decoder);
  }
  t.audio += 1;
  decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: packet.index * 20000, data: packet.data }));
}

function heard(user, data) {
  const samples = new Float32Array(data.numberOfFrames);
  data.copyTo(samples, { planeIndex: 0, format: 'f32-planar' });
  const rate = data.sampleRate;
  data.close();
  if (config.inspect) {
    let meter = tones.get(user);
    if (meter === undefined) tones.set(user, (meter = new ToneMeter(rate)));
    meter.push(samples);
  }
  postMessage({ ev: 'audio', sender: user, samples, rate }, [samples.buffer]);
}

// --- sending -------------------------------------------------------------------------------

async function send(kind, index, data) {
  const pending = nextSender;
  if (pending !== null && now() >= pending[0]) [sender, nextSender] = [pending[1], null];
  if (sender === null || forgotten) {
    stats.sent.dropped += 1;
    return;
  }
  const frame = await sender.encrypt(new Uint8Array(0), pack({ kind, index, data }));
  stats.sent[kind] += 1;
  stats.sending = sender.epoch;
  postMessage({ ev: 'send', data: frame.buffer }, [frame.buffer]);
}

async function captureVideo(stream, { width, height, fps, bitrate }) {
  let index = 0;
  let count = 0;
  let lastAt = -Infinity;
  let chain = Promise.resolve(); // payloads leave in encoding order
  const self = new VideoDecoder({
    output: async (frame) => {
      if (config.inspect) remember(sentDigests, frame.timestamp, await lumaDigest(frame));
      postMessage({ ev: 'self', index: frame.timestamp, frame }, [frame]);
    },
    error: () => {},
  });
  self.configure({ codec: 'vp8', optimizeForLatency: true });
  const encoder = new VideoEncoder({
    output: (chunk) => {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      const i = index++;
      // What the others decode, decoded here too: the self view, and the digests of what
      // was sent (a receiver from any key frame on decodes the same frames).
      self.decode(new EncodedVideoChunk({ type: chunk.type, timestamp: i, data }));
      chain = chain.then(() => send(VIDEO, i, data));
    },
    error: (e) => postMessage({ ev: 'error', what: 'video encoder', error: String(e) }),
  });
  encoder.configure({ codec: 'vp8', width, height, bitrate, framerate: fps, latencyMode: 'realtime' });
  const reader = stream.getReader();
  for (;;) {
    const { value: frame, done } = await reader.read();
    if (done) break;
    const at = frame.timestamp / 1e6;
    if (at - lastAt < 0.9 / fps || encoder.encodeQueueSize > 2 || forgotten) {
      frame.close(); // above the frame rate, or the encoder is behind
      continue;
    }
    lastAt = at;
    encoder.encode(frame, { keyFrame: count++ % config.keyInterval === 0 });
    frame.close();
  }
}

async function captureAudio(stream) {
  let index = 0;
  let encoder = null;
  let chain = Promise.resolve();
  const reader = stream.getReader();
  for (;;) {
    const { value: data, done } = await reader.read();
    if (done) break;
    if (forgotten) {
      data.close();
      continue;
    }
    if (encoder === null) {
      encoder = new AudioEncoder({
        output: (chunk) => {
          const bytes = new Uint8Array(chunk.byteLength);
          chunk.copyTo(bytes);
          const i = index++;
          chain = chain.then(() => send(AUDIO, i, bytes));
        },
        error: (e) => postMessage({ ev: 'error', what: 'audio encoder', error: String(e) }),
      });
      encoder.configure({ codec: 'opus', sampleRate: data.sampleRate, numberOfChannels: data.numberOfChannels, bitrate: 32000 });
    }
    encoder.encode(data);
    data.close();
  }
}

// --- the page's requests -------------------------------------------------------------------

function report() {
  const toneHz = {};
  for (const [user, meter] of tones) toneHz[user] = meter.frequency();
  const received = {};
  for (const [user, map] of digests) received[user] = Object.fromEntries(map);
  return { ...structuredClone(stats), toneHz, received, sent: Object.fromEntries(sentDigests), counts: stats.sent };
}

onmessage = async ({ data: m }) => {
  switch (m.op) {
    case 'config':
      config = { ...config, ...m.config };
      receiver = new Receiver({ graceSeconds: config.graceSeconds });
      break;
    case 'install':
      await install(m);
      break;
    case 'forget':
      forget();
      break;
    case 'frame':
      receive(m.data);
      break;
    case 'capture':
      if (m.video) captureVideo(m.video, m.settings);
      if (m.audio) captureAudio(m.audio);
      break;
    case 'report':
      await order;
      postMessage({ ev: 'report', id: m.id, report: report() });
      break;
    default:
      break;
  }
};

setInterval(() => {
  if (!dirty) return;
  dirty = false;
  postMessage({ ev: 'stats', stats: structuredClone(stats) });
}, STATS_EVERY_MS);
