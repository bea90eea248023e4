// The participant session replays meetings that the Python protocol core played
// (tests/web/session_cases.py, written fresh by tests/web/test_web_session.py and passed in
// SEALROOM_SESSION_CASES): every step's actions must be the same, byte for byte, and the
// state after it too. Then the cases only JavaScript can reach (it never manages).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import { b64d, b64e } from '../src/api/encoding.js';
import { fromHex, toHex } from '../src/bytes.js';
import { Envelope } from '../src/crypto/envelope.js';
import { generateKeyPair } from '../src/crypto/pre.js';
import { SigningKey, VerifyingKey } from '../src/crypto/signing.js';
import { PyFloat, dumps, parse } from '../src/json.js';
import { BoardMessage } from '../src/meeting/messages.js';
import { intOf, strOf, truthy } from '../src/meeting/py.js';
import { RosterChain, applyDelta, rosterHash } from '../src/meeting/roster.js';
import { isKeyFrame, pack, unpack } from '../src/media/payload.js';
import { MalformedInputError } from '../src/errors.js';
import { ParticipantSession } from '../src/meeting/session.js';

const FILE = process.env.SEALROOM_SESSION_CASES;
const SKIP = FILE ? false : 'no cases: Python makes them; run `.venv/bin/python -m pytest tests/web/test_web_session.py`';

/** A parsed JSON value with floats as plain numbers (times, in the transcripts). */
function plain(value) {
  if (value instanceof PyFloat) return value.value;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** An action as tests/web/session_cases.py writes Python's. */
function encode(a) {
  switch (a.type) {
    case 'post':
      return { type: 'post', message: a.message.toWire() };
    case 'call': {
      const args = { group: a.args.group };
      if (a.op === 'open_envelope') {
        Object.assign(args, { envelope: b64e(a.args.envelope.toBytes()), sealer: b64e(a.args.sealer.toBytes()) });
      }
      return { type: 'call', id: a.id, op: a.op, args };
    }
    case 'install':
      return { type: 'install', epoch: a.epoch, sessionKey: toHex(a.sessionKey) };
    case 'retire':
      return { type: 'retire', epochs: [...a.epochs] };
    case 'callMeAt':
      return { type: 'callMeAt', when: a.when };
    case 'notify':
      return { type: 'notify', event: a.event, detail: plain(a.detail) };
    case 'rotate':
      return { type: 'rotate' };
    default:
      throw new Error(`unknown action ${a.type}`);
  }
}

/** Compare as canonical JSON (Python's key order and number forms). */
function canonical(value) {
  return dumps(
    JSON.parse(JSON.stringify(value), (k, v) => (typeof v === 'number' && !Number.isInteger(v) ? new PyFloat(v) : v)),
  );
}

async function replay(c) {
  const session = new ParticipantSession(c.config, {
    user: c.user,
    device: c.device,
    signingKey: await SigningKey.fromSeed(fromHex(c.seed)),
  });
  let n = 0;
  for (const step of c.steps) {
    const now = step.now;
    let actions;
    if (step.step === 'receive') {
      const key = await VerifyingKey.fromBytes(b64d(step.key));
      actions = await session.receive(BoardMessage.fromWire(step.message), key, now);
    } else if (step.step === 'key_service_reply') {
      const result = step.result === null ? null : { data: b64d(step.result.data) };
      actions = await session.keyServiceReply(step.id, result, step.error, now);
    } else if (step.step === 'timer') {
      actions = await session.timer(now);
    } else if (step.step === 'join') {
      actions = await session.join(now);
    } else if (step.step === 'leave') {
      actions = await session.leave(now);
    } else {
      throw new Error(step.step);
    }
    const where = `${c.name}, step ${n} (${step.step}${step.message ? ' ' + parse(step.message).kind : ''})`;
    assert.equal(canonical(actions.map(encode)), canonical(step.actions), where);
    const after = {
      state: session.state,
      epoch: session.epoch,
      roster: session.roster,
      roster_head: toHex(session.rosterHead),
      manager: session.manager,
      code: await session.securityCode(),
    };
    assert.deepEqual(after, step.after, where);
    n += 1;
  }
  return n;
}

describe('the participant session replays boards the Python core played', { skip: SKIP }, () => {
  const cases = FILE ? plain(parse(readFileSync(FILE, 'utf8'))).cases : [];
  for (const c of cases) {
    test(c.name, async () => {
      const steps = await replay(c);
      assert.ok(steps > 10);
    });
  }
});

// --- what only JavaScript reaches ---------------------------------------------------------

async function device(user) {
  return { user, device: `${user}-dev`, key: await SigningKey.generate(), seq: 0 };
}

async function says(d, kind, body) {
  d.seq += 1;
  return BoardMessage.create(d.key, { meeting: 'm', kind, user: d.user, device: d.device, seq: d.seq, body });
}

describe('a browser participant never manages', () => {
  test('it says so when it would succeed a manager who left', async () => {
    const [, groupPub] = generateKeyPair();
    const hana = await device('hana');
    const amy = await device('amy');
    const me = await device('web');
    const s = new ParticipantSession({ meetingId: 'm', host: 'hana' }, { user: 'web', device: 'web-dev', signingKey: me.key });
    const start = await says(hana, 'start', { group_key: b64e(groupPub.toBytes()), admins: ['web', 'hana'], host: 'hana' });
    assert.deepEqual(await s.receive(start, hana.key.verifyingKey, 0), []);
    const [announce] = await s.join(0);
    await s.receive(announce.message, me.key.verifyingKey, 0);
    await s.receive(await says(amy, 'announce', {}), amy.key.verifyingKey, 0);
    s.state = 'in_meeting'; // as if keyed (the key path is replayed above)
    const out = await s.receive(await says(hana, 'leave', {}), hana.key.verifyingKey, 1);
    assert.deepEqual(
      out.map((a) => a.event),
      ['participant_left', 'management_unsupported'],
    );
    assert.equal(out[1].detail.why, 'successor');
  });

  test('a post that fails its signature, or comes twice, changes nothing', async () => {
    const hana = await device('hana');
    const me = await device('web');
    const s = new ParticipantSession({ meetingId: 'm', host: 'hana' }, { user: 'web', device: 'web-dev', signingKey: me.key });
    const bad = await says(hana, 'end', {});
    assert.deepEqual(
      (await s.receive(bad, me.key.verifyingKey, 0)).map((a) => [a.event, a.detail.device]),
      [['bad_message', 'hana-dev']],
    );
    const [, groupPub] = generateKeyPair();
    const start = await says(hana, 'start', { group_key: b64e(groupPub.toBytes()), admins: [], host: 'hana' });
    await s.receive(start, hana.key.verifyingKey, 0);
    assert.equal(s.manager, 'hana');
    hana.seq = 0; // a replayed (or re-numbered) post is dropped
    const replayed = await says(hana, 'end', {});
    assert.deepEqual(await s.receive(replayed, hana.key.verifyingKey, 0), []);
    assert.equal(s.state, 'idle');
  });
});

describe('Python conversions and the roster chain', () => {
  test('int(), str() and truthiness as Python applies them', () => {
    assert.equal(intOf(5), 5);
    assert.equal(intOf(' 7 '), 7);
    assert.equal(intOf(new PyFloat(3.9)), 3);
    assert.equal(intOf(true), 1);
    assert.equal(intOf(12n), 12);
    for (const bad of [null, [], {}, 'x', new PyFloat(Infinity), 2n ** 60n]) assert.throws(() => intOf(bad), TypeError);
    assert.equal(strOf(true), 'True');
    assert.equal(strOf(new PyFloat(1)), '1.0');
    assert.deepEqual([[], {}, '', 0, new PyFloat(0), null].map(truthy), [false, false, false, false, false, false]);
    assert.deepEqual([[0], { a: 1 }, '0', 2, true].map(truthy), [true, true, true, true, true]);
  });

  test('a fork is unknown, a snapshot with a wrong member is refused', async () => {
    const chain = new RosterChain();
    const h0 = await rosterHash(new Uint8Array(32), 0, ['a', 'b']);
    assert.ok(await chain.follow(0, { prev: new Uint8Array(32), head: h0, added: ['b', 'a'], removed: [], parts: 0, reset: false }));
    assert.deepEqual(chain.rosterAt(0)[0], ['a', 'b']);
    const h1 = await rosterHash(h0, 1, ['a', 'c']);
    assert.ok(!(await chain.follow(1, { prev: h0, head: h1, added: ['c'], removed: [], parts: 0, reset: false })));
    assert.equal(chain.members, null);
    chain.addPart({ epoch: 1, part: 0, parts: 1, members: ['a', 'x'] });
    assert.ok(!(await chain.snapshot(1)));
    chain.addPart({ epoch: 1, part: 0, parts: 1, members: ['c', 'a'] });
    assert.ok(await chain.snapshot(1));
    assert.deepEqual(chain.members, ['a', 'c']);
    assert.deepEqual(applyDelta(['b', 'a'], ['c'], ['b']), ['a', 'c']);
    assert.throws(() => chain.addPart({ epoch: 1, part: 1, parts: 1, members: [] }), TypeError);
    assert.throws(() => chain.addPart({ epoch: 1, part: 0, parts: 1, members: ['bad id'] }), TypeError);
  });
});

test('an envelope that is not one is a bad message, not a crash', async () => {
  assert.throws(() => Envelope.fromBytes(new Uint8Array(3)));
});

describe('the media payload, as the Python SDK packs it', { skip: SKIP }, () => {
  const cases = FILE ? plain(parse(readFileSync(FILE, 'utf8'))).payloads : { good: [], bad: [] };
  test('JavaScript packs the same bytes and reads them back', () => {
    for (const c of cases.good) {
      const packet = { kind: c.kind, index: c.index, data: fromHex(c.data) };
      assert.equal(toHex(pack(packet)), c.packed);
      const back = unpack(fromHex(c.packed));
      assert.deepEqual([back.kind, back.index, toHex(back.data)], [c.kind, c.index, c.data]);
      assert.equal(isKeyFrame(fromHex(c.data)), c.key);
    }
    assert.ok(cases.good.length >= 3);
  });

  test('what Python refuses, JavaScript refuses', () => {
    for (const raw of cases.bad) assert.throws(() => unpack(fromHex(raw)), MalformedInputError);
    assert.ok(cases.bad.length >= 4);
  });
});
