// The browser's meeting client over a fake channel and a fake key service: the token goes
// in Sec-WebSocket-Protocol, the announce carries the device's card, a participant's card
// is checked against its user's pinned key (one request for a batch), and a manager's
// posts are checked at the key service whatever its card said, so a device revoked as lost
// cannot end the meeting.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { b64e } from '../src/api/encoding.js';
import { DEVICE_CERT_LABEL, deviceCertificateMessage, userSigningKey } from '../src/api/identity.js';
import { generateKeyPair } from '../src/crypto/pre.js';
import { SigningKey } from '../src/crypto/signing.js';
import { parse } from '../src/json.js';
import { BoardMessage } from '../src/meeting/messages.js';
import { MeetingClient } from '../src/meeting/client.js';
import { SdkError } from '../src/sdk/errors.js';

class FakeSocket {
  static last = null;
  sent = [];
  readyState = 1;

  constructor(url, protocols) {
    Object.assign(this, { url, protocols });
    FakeSocket.last = this;
    queueMicrotask(() => this.onopen());
  }

  send(data) {
    this.sent.push(data);
  }

  deliver(message) {
    this.onmessage({ data: `{"type":"board","message":${message.toWire()}}` });
  }

  close() {}
}

async function person(user, device) {
  const [userKey] = generateKeyPair();
  const userSigner = await userSigningKey(userKey);
  const key = await SigningKey.generate();
  const [, pub] = generateKeyPair();
  const cert = await userSigner.sign(DEVICE_CERT_LABEL, deviceCertificateMessage(device, key.verifyingKey.toBytes(), pub.toBytes()));
  const card = { signing_key: b64e(key.verifyingKey.toBytes()), public_key: b64e(pub.toBytes()), certificate: b64e(cert) };
  return { user, device, key, userSigner, card, seq: 0, revoked: false };
}

async function post(p, kind, body) {
  p.seq += 1;
  return BoardMessage.create(p.key, { meeting: 'm1', kind, user: p.user, device: p.device, seq: p.seq, body });
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

test('cards, look-ups, and a revoked manager device refused', async () => {
  const me = await person('web', 'web-dev');
  const hana = await person('hana', 'hana-dev');
  const bob = await person('bob', 'bob-dev');
  const carl = await person('carl', 'carl-dev');
  const people = { 'hana-dev': hana, 'bob-dev': bob, 'carl-dev': carl };
  const calls = { lookups: [], userKeys: [] };
  const keys = {
    userId: 'web',
    deviceId: 'web-dev',
    ks: { signingKey: me.key },
    ownCard: async () => me.card,
    findUserKeys: async (ids) => {
      calls.userKeys.push(ids);
      const users = { hana, bob, carl };
      return new Map(ids.filter((u) => users[u]).map((u) => [u, { signingKey: users[u].userSigner.verifyingKey.toBytes() }]));
    },
    deviceInfo: async (device) => {
      calls.lookups.push(device);
      const p = people[device];
      return { id: device, user_id: p.user, revoked: p.revoked };
    },
    certified: async (info) => {
      if (info.revoked) throw new SdkError('the signing device was revoked');
      return people[info.id].key.verifyingKey;
    },
    forgetDevice: () => {},
  };
  let now = 1000;
  const events = [];
  const client = new MeetingClient(keys, 'http://conf.example', { meetingId: 'm1', host: 'hana', invitees: ['bob', 'web'] }, {
    jwt: async (aud) => `token-for-${aud}`,
    WebSocketImpl: FakeSocket,
    clock: () => now,
    onEvent: (kind, detail) => events.push([kind, detail]),
  });
  await client.join();
  const ws = FakeSocket.last;
  assert.equal(ws.url, 'ws://conf.example/v1/meetings/m1/channel');
  assert.deepEqual(ws.protocols, ['sealroom.v1', 'sealroom.bearer.token-for-sealroom-conference']);
  const announce = parse(ws.sent[0]);
  assert.equal(announce.type, 'post');
  assert.equal(announce.message.kind, 'announce');
  assert.deepEqual(announce.message.body, { card: me.card });

  const [, groupPub] = generateKeyPair();
  ws.deliver(await post(hana, 'start', { group_key: b64e(groupPub.toBytes()), admins: ['hana'], host: 'hana' }));
  await settle();
  const batch = [
    await post(hana, 'announce', { card: hana.card }),
    await post(bob, 'announce', { card: bob.card }),
    await post(carl, 'announce', { card: carl.card }),
  ];
  for (const m of batch) ws.deliver(m); // arriving together: handled as one batch
  await settle();
  assert.deepEqual(calls.lookups, ['hana-dev']); // the start: a manager's post
  assert.deepEqual(calls.userKeys, [['bob', 'carl']]); // one request; hana's device is known
  assert.equal(client.session.manager, 'hana');
  assert.deepEqual([...client.session.present.keys()].sort(), ['bob', 'carl', 'hana', 'web']);

  ws.deliver(await post(bob, 'leave', {})); // a participant's post: its card vouches
  await settle();
  assert.deepEqual(calls.lookups, ['hana-dev']);
  assert.ok(events.some(([k, d]) => k === 'participant_left' && d.user === 'bob'));

  // hana's phone is lost and revoked; a minute later an `end` from it is refused.
  hana.revoked = true;
  now += 61;
  ws.deliver(await post(hana, 'end', {}));
  await settle();
  assert.deepEqual(calls.lookups, ['hana-dev', 'hana-dev']);
  assert.ok(events.some(([k, d]) => k === 'bad_message' && d.device === 'hana-dev'));
  assert.equal(client.session.state, 'joining'); // not ended by a revoked device
  client.close();
});
