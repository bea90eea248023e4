// The meeting protocol's key and roster arithmetic from src/sealroom/meeting/session.py:
// the one-way ratchet, the hash-chained roster every session-key post extends, and the
// short security code participants compare. (The state machine itself is not ported.)

import { concat, hkdf, sha256, uintBE, utf8 } from '../bytes.js';

const RATCHET_LABEL = utf8('sealroom/v1/meeting/ratchet');
const ROSTER_LABEL = utf8('sealroom/v1/meeting/roster');
const CODE_LABEL = utf8('sealroom/v1/meeting/security-code');

/** SK_epoch from SK_(epoch-1): one-way, so a joiner cannot go back. */
export function ratchet(sessionKey, meeting, epoch) {
  const info = concat(RATCHET_LABEL, utf8(meeting), Uint8Array.of(0), uintBE(epoch, 8));
  return hkdf('SHA-256', sessionKey, info, 32);
}

/** The next roster entry: SHA-256(label ‖ prev ‖ epoch ‖ each member as u16 length ‖ id),
 *  the length counted in code points as Python's len(str) counts it. */
export function rosterHash(prev, epoch, members) {
  const parts = [ROSTER_LABEL, prev, uintBE(epoch, 8)];
  for (const m of members) {
    parts.push(uintBE([...m].length, 2), utf8(m));
  }
  return sha256(...parts);
}

/** Six groups of five digits for participants to compare out of band. */
export async function securityCode(groupKey, rosterHead, epoch) {
  const digest = await sha256(CODE_LABEL, groupKey, rosterHead, uintBE(epoch, 8));
  let value = 0n;
  for (const b of digest.subarray(0, 20)) value = (value << 8n) | BigInt(b);
  const groups = [];
  for (let i = 0n; i < 6n; i++) groups.push(String((value >> (17n * i)) % 100000n).padStart(5, '0'));
  return groups.join(' ');
}
