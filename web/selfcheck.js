// The self-check behind index.html: each step runs the core in this browser and lists the
// result; document.body.dataset.status ends as "ok" or "failed" (browser tests read it).

const list = document.getElementById('checks');
const status = document.getElementById('status');

function show(ok, text) {
  const li = document.createElement('li');
  li.className = ok ? 'ok' : 'bad';
  li.textContent = text;
  list.append(li);
}

async function step(name, fn) {
  const start = performance.now();
  await fn();
  show(true, `${name} (${(performance.now() - start).toFixed(1)} ms)`);
}

try {
  const core = await import('./src/index.js');
  const { pre, envelope, signing, mediaKeys, pairing, bytes } = core;
  await step('BLS12-381 on mcl-wasm: the generators and e(g1, g2) load and validate', async () => {
    pairing.GT.fromBytes(pairing.GT.generator().toBytes());
  });
  const signer = await signing.SigningKey.generate();
  const [priv, pub] = pre.generateKeyPair();
  await step('transform cryptography: encrypt and decrypt a DEK source', async () => {
    const pt = pre.generatePlaintext();
    const value = pre.EncryptedValue.fromBytes((await pre.encrypt(pt, pub, signer)).toBytes());
    const back = await pre.decrypt(value, priv, { originSigner: signer.verifyingKey });
    if (!back.equals(pt)) throw new Error('round trip failed');
  });
  await step('an envelope sealed and opened', async () => {
    const env = await envelope.seal(bytes.utf8('hello'), bytes.utf8('doc'), [pub], signer);
    const out = await envelope.openWithKey(env, env.edeks[0], priv, { originSigner: signer.verifyingKey });
    if (bytes.fromUtf8(out) !== 'hello') throw new Error('envelope failed');
  });
  await step('SFrame: a sender and a receiver, replay refused', async () => {
    const sk = bytes.randomBytes(32);
    const tx = await mediaKeys.Sender.create(sk, 1, 0);
    const rx = new mediaKeys.Receiver();
    rx.install(1, sk, 0);
    const frame = await tx.encrypt(new Uint8Array(0), bytes.utf8('frame'));
    await rx.decrypt(new Uint8Array(0), frame, 0);
    const replay = await rx.decrypt(new Uint8Array(0), frame, 0).then(() => true, () => false);
    if (replay) throw new Error('replay accepted');
  });
  status.textContent = `Sealroom web core ${core.VERSION}: every check passed.`;
  document.body.dataset.status = 'ok';
} catch (exc) {
  show(false, String(exc));
  status.textContent = 'A check failed.';
  document.body.dataset.status = 'failed';
}
