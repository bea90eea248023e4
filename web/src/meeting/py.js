// Python's conversions, as the meeting core applies them to a signed post's body
// (src/sealroom/meeting/session.py calls int(), str() and truthiness on body values), so
// the two languages take or refuse the same bodies. Values come from ../json.js: integers
// as numbers or BigInt, floats as PyFloat. A value Python would refuse throws a TypeError.

import { PyFloat, pyFloatRepr } from '../json.js';

const INT_TEXT = /^\s*[+-]?\d+(?:_\d+)*\s*$/;

/** Python's int(value), as a safe JavaScript integer. */
export function intOf(value) {
  let n;
  if (typeof value === 'number' && Number.isInteger(value)) n = value;
  else if (typeof value === 'bigint') n = Number(value);
  else if (typeof value === 'boolean') n = value ? 1 : 0;
  else if (value instanceof PyFloat && Number.isFinite(value.value)) n = Math.trunc(value.value);
  else if (typeof value === 'string' && INT_TEXT.test(value)) n = Number(value.replaceAll('_', '').trim());
  else throw new TypeError('expected an integer');
  if (!Number.isSafeInteger(n) || (typeof value === 'bigint' && BigInt(n) !== value)) {
    throw new TypeError('integer out of range');
  }
  return n === 0 ? 0 : n; // never -0
}

/** Python's truthiness of a JSON value. */
export function truthy(value) {
  if (value === null || value === undefined || value === false) return false;
  if (value === true) return true;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'bigint') return value !== 0n;
  if (typeof value === 'string' || Array.isArray(value)) return value.length > 0;
  if (value instanceof PyFloat) return value.value !== 0;
  return Object.keys(value).length > 0;
}

/** Python's str(value) for the JSON scalars a post's body may hold. */
export function strOf(value) {
  if (typeof value === 'string') return value;
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  throw new TypeError('expected a string');
}

/** body[name], or a TypeError (Python: KeyError) when the post lacks it. */
export function field(body, name) {
  if (!Object.hasOwn(body, name)) throw new TypeError(`missing ${name}`);
  return body[name];
}
