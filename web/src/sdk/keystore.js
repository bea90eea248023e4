// The device's keystore (src/sealroom/sdk/keystore.py): its own keys and every key it has
// pinned. Held in memory here; an application persists it where its platform keeps
// secrets (exportSecrets / importSecrets name the secret parts explicitly).

import { b64d, b64e } from '../api/encoding.js';
import { PrivateKey } from '../crypto/pre.js';
import { SigningKey } from '../crypto/signing.js';

export class Keystore {
  userId = null;
  deviceId = null;
  deviceName = 'browser';
  deviceKey = null; // PrivateKey
  signingKey = null; // SigningKey
  registered = false;
  serviceKey = null; // bytes: the key service's Ed25519 key, pinned on first sight
  pinned = new Map(); // user id -> {publicKey: bytes, signingKey: bytes}
  pinnedGroups = new Map(); // group id -> bytes

  /** Everything, secrets included, as JSON-ready text fields. Named: it exports secrets. */
  exportSecrets() {
    return {
      version: 1,
      user_id: this.userId,
      device_id: this.deviceId,
      device_name: this.deviceName,
      device_key: this.deviceKey ? b64e(this.deviceKey.exposeSecretBytes()) : null,
      signing_key: this.signingKey ? b64e(this.signingKey.exposeSecretBytes()) : null,
      registered: this.registered,
      service_key: this.serviceKey ? b64e(this.serviceKey) : null,
      pinned: Object.fromEntries(
        [...this.pinned].map(([u, k]) => [u, { public_key: b64e(k.publicKey), signing_key: b64e(k.signingKey) }]),
      ),
      pinned_groups: Object.fromEntries([...this.pinnedGroups].map(([g, k]) => [g, b64e(k)])),
    };
  }

  static async importSecrets(data) {
    if (data?.version !== 1) throw new TypeError('keystore: unsupported version');
    const ks = new Keystore();
    ks.userId = data.user_id;
    ks.deviceId = data.device_id;
    ks.deviceName = data.device_name;
    ks.deviceKey = data.device_key ? PrivateKey.fromSecretBytes(b64d(data.device_key, 'device_key')) : null;
    ks.signingKey = data.signing_key ? await SigningKey.fromSeed(b64d(data.signing_key, 'signing_key')) : null;
    ks.registered = !!data.registered;
    ks.serviceKey = data.service_key ? b64d(data.service_key, 'service_key') : null;
    for (const [u, k] of Object.entries(data.pinned ?? {})) {
      ks.pinned.set(u, { publicKey: b64d(k.public_key, 'key'), signingKey: b64d(k.signing_key, 'key') });
    }
    for (const [g, k] of Object.entries(data.pinned_groups ?? {})) ks.pinnedGroups.set(g, b64d(k, 'group key'));
    return ks;
  }
}
