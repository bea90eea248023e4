// The participant page (meeting.html): sign in through the development IdP, become a
// device of the user, join the meeting, show the roster, the security code and everyone's
// video, play their audio, send this browser's camera and microphone.
//
// Settings come from the page's query string:
//   meeting, host, invitees (comma-separated): the invitation
//   conference: the conferencing service (default: this host, port 8472)
//   idp: the development IdP (default: this host, port 8471)
//   user, mode (approval | escrow | password), auto=1: sign in and join at once
//   send=0: do not capture; video=WIDTHxHEIGHT@FPS; inspect=1: record what was decoded
//   retries=0.2,0.5,1,1 and switch=0.5: the protocol's waits (tests compress them)
//   keyint=30: a key frame every so many frames
//
// window.sealroom exposes the page's state for tests and the demo (never any key).

import encodeQR from 'qr';

import { AudioPlayer } from './src/media/audio.js';
import { Participant, devIdpProviderHalf, devIdpTokens } from './src/participant.js';

const q = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const here = location.hostname || '127.0.0.1';
const settings = {
  meetingId: q.get('meeting') || 'standup',
  host: q.get('host') || '',
  invitees: (q.get('invitees') || '').split(',').filter(Boolean),
  conference: q.get('conference') || `ws://${here}:8472`,
  idp: q.get('idp') || `http://${here}:8471`,
  inspect: q.get('inspect') === '1',
  send: q.get('send') !== '0',
  video: /^(\d+)x(\d+)@(\d+)$/.exec(q.get('video') || '320x240@15'),
  retries: q.get('retries') ? q.get('retries').split(',').map(Number) : undefined,
  switchDelay: q.has('switch') ? Number(q.get('switch')) : 0.5,
  keyInterval: q.has('keyint') ? Number(q.get('keyint')) : 30,
};

const page = {
  openedAt: performance.now(),
  phase: 'signed-out',
  approval: null,
  firstFrameAt: null,
  frames: {},
  snapshot: null,
  stats: null,
  error: null,
  participant: null,
  report: () => page.participant?.report() ?? null,
  events: () => page.participant?.events.map((e) => ({ at: e.at, kind: e.kind, detail: e.detail })) ?? [],
};
window.sealroom = page;

const tiles = new Map(); // sender -> {canvas, warn}
let audio = null;

function log(text) {
  const line = `${new Date().toISOString().slice(11, 19)} ${text}\n`;
  $('log').textContent = (line + $('log').textContent).slice(0, 20000);
}

function phase(name, text) {
  page.phase = name;
  $('state').textContent = text;
}

function banner(text, kind = 'bad') {
  $('banner').textContent = text;
  $('banner').className = kind;
}

function tile(sender, label) {
  let t = tiles.get(sender);
  if (t === undefined) {
    const box = document.createElement('div');
    box.className = 'tile';
    box.dataset.sender = sender;
    const canvas = document.createElement('canvas');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = label;
    const warn = document.createElement('span');
    warn.className = 'warn hidden';
    box.append(canvas, name, warn);
    $('tiles').append(box);
    t = { canvas, warn, box };
    tiles.set(sender, t);
  }
  return t;
}

function draw(sender, label, frame) {
  const { canvas } = tile(sender, label);
  if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
    canvas.width = frame.displayWidth;
    canvas.height = frame.displayHeight;
  }
  canvas.getContext('2d').drawImage(frame, 0, 0);
  frame.close();
}

async function refresh() {
  const p = page.participant;
  if (!p) return;
  const s = await p.snapshot();
  page.snapshot = s;
  $('code').textContent = s.code ?? '–';
  $('epoch').textContent = s.epoch === null ? '' : `epoch ${s.epoch}, managed by ${s.manager}`;
  const list = $('roster');
  list.replaceChildren();
  const keyed = new Set(s.roster);
  for (const user of [...new Set([...s.roster, ...s.present])].sort()) {
    const li = document.createElement('li');
    li.textContent = user;
    const tags = [user === s.user ? 'you' : '', user === s.manager ? 'manager' : '', keyed.has(user) ? '' : 'not keyed yet'].filter(Boolean);
    if (tags.length) {
      const span = document.createElement('span');
      span.className = 'tag';
      span.textContent = ` (${tags.join(', ')})`;
      li.append(span);
    }
    list.append(li);
  }
}

function showStats(stats) {
  page.stats = stats;
  for (const [sender, t] of Object.entries(stats.bySender)) {
    const known = tiles.get(sender);
    if (known && t.failed > 0) {
      known.warn.textContent = `${t.failed} frames could not be decrypted`;
      known.warn.classList.remove('hidden');
    }
  }
  const failed = Object.entries(stats.failed);
  if (failed.length) {
    const total = failed.reduce((n, [, c]) => n + c, 0);
    const epochs = failed.map(([e]) => e).filter((e) => e !== 'none').sort((a, b) => a - b);
    $('undecryptable').textContent =
      `${total} frames could not be decrypted: they were sealed under keys this page does not hold` +
      (epochs.length ? ` (epochs ${epochs.join(', ')})` : '') +
      (stats.epochs.length ? `; it holds the keys of epoch ${stats.epochs.join(', ')}.` : '; it holds no key now.');
    $('undecryptable').classList.remove('hidden');
  }
}

/** The meeting is over for this page: stop the camera and microphone, grey the video. */
function over() {
  for (const track of page.stream?.getTracks() ?? []) track.stop();
  for (const { box } of tiles.values()) box.style.opacity = '0.35';
}

function onEvent({ kind, detail }) {
  if (!['retrying'].includes(kind)) log(`${kind} ${Object.keys(detail).length ? JSON.stringify(detail) : ''}`);
  switch (kind) {
    case 'joined':
      phase('in-meeting', 'in the meeting');
      break;
    case 'removed':
      page.removed = true;
      over();
      phase('removed', 'removed');
      banner('You were removed from the meeting. Every key it used is gone from this page; frames the relay still sends cannot be decrypted.');
      break;
    case 'ended':
      if (page.removed) break;
      over();
      phase('ended', 'the meeting ended');
      banner('The meeting ended. Every key it used is gone from this page.');
      break;
    case 'left':
      over();
      phase('left', 'left');
      banner('You left the meeting. Every key it used is gone from this page.', 'info');
      break;
    case 'not_admitted':
      phase('not-admitted', 'not admitted');
      banner('You were not admitted to this meeting (the key service would not open its key for you).');
      break;
    case 'superseded':
      banner('You joined from another device: this page stepped aside.', 'info');
      break;
    case 'management_unsupported':
      banner('The meeting would have you manage it, which a browser participant cannot do: ask an admin to take over.', 'info');
      break;
    case 'channel_closed':
      if (!['ended', 'left', 'removed'].includes(page.phase)) banner(`The channel closed (${detail.code} ${detail.reason}).`);
      break;
    default:
      break;
  }
  refresh();
}

async function start(user, mode, password) {
  $('signin').classList.add('hidden');
  phase('signing-in', 'signing in…');
  const jwt = devIdpTokens(settings.idp, user);
  const p = new Participant({
    conference: settings.conference,
    meeting: { meetingId: settings.meetingId, host: settings.host, invitees: settings.invitees },
    jwt,
    inspect: settings.inspect,
    joinRetryDelays: settings.retries,
    switchDelay: settings.switchDelay,
    keyInterval: settings.keyInterval,
  });
  page.participant = p;
  p.addEventListener('event', (e) => onEvent(e.detail));
  p.addEventListener('video', (e) => {
    e.preventDefault();
    const { sender, frame } = e.detail;
    page.frames[sender] = (page.frames[sender] ?? 0) + 1;
    if (page.firstFrameAt === null) page.firstFrameAt = performance.now();
    draw(sender, sender, frame);
  });
  p.addEventListener('self', (e) => {
    e.preventDefault();
    draw(`self:${user}`, `${user} (you, as the others see you)`, e.detail.frame);
  });
  p.addEventListener('audio', (e) => audio?.play(e.detail.sender, e.detail.samples, e.detail.rate));
  p.addEventListener('stats', (e) => showStats(e.detail));
  $('meeting-name').textContent = `meeting ${settings.meetingId} as ${user}`;
  if (mode === 'approval') {
    phase('approval', 'waiting for approval');
    const payload = await p.requestApproval(user);
    page.approval = payload;
    $('qr').innerHTML = encodeQR(payload, 'svg', { ecc: 'low' });
    $('approval-text').value = payload;
    $('approval').classList.remove('hidden');
    await p.waitForApproval();
    $('approval').classList.add('hidden');
  } else if (mode === 'escrow') {
    phase('escrow', 'opening the escrow…');
    await p.enrollWithSplitTrust(await devIdpProviderHalf(settings.idp, jwt));
  } else {
    phase('escrow', 'opening the escrow…');
    await p.enrollWithPassword(password);
  }
  phase('joining', 'joining…');
  $('meeting').classList.remove('hidden');
  audio = new AudioPlayer();
  if (audio.state !== 'running') {
    await audio.resume().catch(() => {});
    if (audio.state !== 'running') {
      $('sound').classList.remove('hidden');
      $('sound').onclick = async () => {
        await audio.resume();
        $('sound').classList.add('hidden');
      };
    }
  }
  await p.join();
  if (settings.send) {
    const [, w, h, fps] = settings.video.map(Number);
    const stream = await navigator.mediaDevices.getUserMedia({
      video: { width: w, height: h, frameRate: fps },
      audio: { channelCount: 1, sampleRate: 48000 },
    });
    page.stream = stream;
    p.capture(stream, { width: w, height: h, fps });
  }
  setInterval(refresh, 1000);
}

$('mode').onchange = () => $('password-row').classList.toggle('hidden', $('mode').value !== 'password');
$('signin-form').onsubmit = (e) => {
  e.preventDefault();
  run($('user').value.trim(), $('mode').value, $('password').value);
};
$('leave').onclick = async () => {
  await page.participant?.leave();
};

function run(user, mode, password) {
  start(user, mode, password).catch((exc) => {
    page.error = String(exc);
    phase('failed', 'failed');
    banner(`Could not join: ${exc.message ?? exc}`);
    log(String(exc.stack ?? exc));
  });
}

$('user').value = q.get('user') || '';
$('mode').value = q.get('mode') || 'approval';
if (q.get('auto') === '1' && $('user').value) run($('user').value, $('mode').value, q.get('password') || '');
