// Identity statements shared with the key service (src/sealroom/api/identity.py). A user's
// Ed25519 key certifies each of its devices; it is derived from the user's PRE key under
// its own label, so the one escrowed key recovers both.

import { concat, hkdf, utf8 } from '../bytes.js';
import { USER_SIGNING_SEED } from '../crypto/labels.js';
import { SigningKey } from '../crypto/signing.js';

export const DEVICE_CERT_LABEL = utf8('sealroom/v1/sig/device-certificate');
export const REVOKE_PROOF_LABEL = utf8('sealroom/v1/sig/revoke-device');
export const GROUP_KEY_LABEL = utf8('sealroom/v1/sig/group-key');

/** What an admin device states about a group: this is its public key. */
export function groupKeyMessage(groupId, publicKey) {
  return concat(utf8(groupId), Uint8Array.of(0), publicKey);
}

/** What a user's signing key certifies about one of its devices. */
export function deviceCertificateMessage(deviceId, signingKey, publicKey) {
  return concat(utf8(deviceId), Uint8Array.of(0), signingKey, publicKey);
}

/** The user's Ed25519 key, derived from its PRE private key. */
export async function userSigningKey(userKey) {
  return SigningKey.fromSeed(await hkdf('SHA-256', userKey.exposeSecretBytes(), USER_SIGNING_SEED, 32));
}
