// The pairing layer: BLS12-381 scalars, G1, G2 and GT in Sealroom's own types, on
// mcl-wasm (src/sealroom/crypto/pairing.py, byte for byte). This is the only module that
// loads the backend. It closes the backend's gaps exactly as the Python layer does:
//
// * Validation. Every fromBytes checks the exact length and the canonical encoding, and
//   rejects the identity. G1 and G2 points must be on the curve and in the prime-order
//   subgroup (mcl checks both once told to: verifyOrderG1/G2, proved at load by
//   selfCheck()). mcl does not check GT at all, so GT.fromBytes runs the same exact
//   membership test as Python.
// * Blinding. mcl's scalar multiplication and GT exponentiation are variable-time, so every
//   operation by a secret scalar s is computed as (X·b)·(s/b) with a fresh random blind b.
//   Public-scalar operations say so in their name.
// * Hashing. mcl's hashAndMapTo / setHashOf are never used: hashToScalar is HKDF-SHA256
//   with a caller-given label, and a hash to G2 is that scalar times the fixed generator.
// * Randomness. Scalars come from crypto.getRandomValues (the OS CSPRNG), never mcl's RNG.
// * Generators. mcl-wasm cannot produce them for pairing curves, so they ship as constants:
//   the encodings pymcl 1.0.2 gives for its g1 and g2.
//
// Encodings (little-endian, mcl's default serialization, not the "ETH" one): a scalar is 32
// bytes and below r; a G1 point 48 bytes; a G2 point 96 bytes; a GT element 576 bytes
// (twelve Fp values: Fp2 = Fp[i]/(i²+1), Fp6 = Fp2[v]/(v³-(1+i)), Fp12 = Fp6[w]/(w²-v)).

import {
  bigFromLE,
  bigToLE,
  concat,
  equalBytes,
  fromHex,
  hkdf,
  isBytes,
  randomBytes,
  toHex,
} from '../bytes.js';
import { CryptoInvariantError, MalformedInputError } from '../errors.js';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

async function loadBackend() {
  if (isNode) return (await import('mcl-wasm')).default;
  // In a browser: mcl-wasm's own browser build, a script that sets globalThis.mcl.
  await import(new URL('../../node_modules/mcl-wasm/browser/mcl.js', import.meta.url).href);
  return globalThis.mcl;
}

const mcl = await loadBackend();
await mcl.init(mcl.BLS12_381);
mcl.setETHserialization(false);
mcl.verifyOrderG1(true);
mcl.verifyOrderG2(true);

/** The order r of G1, G2 and GT. */
export const R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001n;
/** The base field prime p. */
export const P =
  0x1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaabn;
/** |u| for the BLS parameter u = -0xd201000000010000. */
export const U_ABS = 0xd201000000010000n;

export const SCALAR_BYTES = 32;
export const G1_BYTES = 48;
export const G2_BYTES = 96;
export const GT_BYTES = 576;
const FP_BYTES = 48;

const G1_GENERATOR = fromHex(
  'bbc622db0af03afbef1a7af93fe8556c58ac1b173f3a4ea105b974974f8c68c30faca94f8c63952694d79731a7d3f197',
);
const G2_GENERATOR = fromHex(
  'b8bd21c1c85680d4efbb05a82603ac0b77d1e37a640b51b4023b40fad47ae4c65110c52d27050826910a8ff0b2a24a02' +
    '7e2b045d057dace5575d941312f14c3349507fdcbb61dab51ab62099d0d06b59654f2788a0d3ac7d609f7152602be093',
);

const inspect = Symbol.for('nodejs.util.inspect.custom');

// --- scalars ---------------------------------------------------------------------------

function frFromBig(v) {
  const fr = new mcl.Fr();
  fr.deserialize(bigToLE(((v % R) + R) % R, SCALAR_BYTES));
  return fr;
}

/** A uniform nonzero scalar from 64 OS-random bytes, reduced mod r (bias < 2^-256). */
function randomFrNonzero() {
  for (;;) {
    const v = bigFromLE(randomBytes(64)) % R;
    if (v !== 0n) return frFromBig(v);
  }
}

/** An element of Z/rZ. Treated as secret: redacted when printed. */
export class Scalar {
  #fr;

  constructor(fr) {
    if (!(fr instanceof mcl.Fr)) throw new TypeError('Scalar wraps a backend value');
    this.#fr = fr;
  }

  static random() {
    return new Scalar(randomFrNonzero());
  }

  /** The scalar value mod r (value: a BigInt or a safe integer). */
  static fromInt(value) {
    return new Scalar(frFromBig(BigInt(value)));
  }

  /** Exactly 32 little-endian bytes holding a value below r. */
  static fromBytes(data) {
    if (!isBytes(data) || data.length !== SCALAR_BYTES) {
      throw new MalformedInputError(`scalar: expected ${SCALAR_BYTES} bytes, got ${data?.length}`);
    }
    const v = bigFromLE(data);
    if (v >= R) throw new MalformedInputError('scalar: value is not below the group order');
    return new Scalar(frFromBig(v));
  }

  /** The 32-byte encoding. Named so that exporting a secret scalar is explicit. */
  exposeBytes() {
    return new Uint8Array(this.#fr.serialize());
  }

  isZero() {
    return this.#fr.isZero();
  }

  add(other) {
    return new Scalar(mcl.add(this.#fr, other.#fr));
  }

  sub(other) {
    return new Scalar(mcl.sub(this.#fr, other.#fr));
  }

  neg() {
    return new Scalar(mcl.neg(this.#fr));
  }

  mul(other) {
    return new Scalar(mcl.mul(this.#fr, other.#fr));
  }

  inverse() {
    if (this.isZero()) throw new CryptoInvariantError('inverse of zero scalar');
    return new Scalar(mcl.inv(this.#fr));
  }

  equals(other) {
    return other instanceof Scalar && equalBytes(this.exposeBytes(), other.exposeBytes());
  }

  /** @internal the backend value, for this module's point and GT operations. */
  static fr(s) {
    return s.#fr;
  }

  toString() {
    return '<Scalar [redacted]>';
  }

  toJSON() {
    throw new TypeError('Scalar is not serialized to JSON');
  }

  [inspect]() {
    return this.toString();
  }
}

/** HKDF-SHA256 of `data` under `label`, 64 bytes reduced mod r (bias < 2^-256). */
export async function hashToScalar(label, data) {
  const okm = await hkdf('SHA-256', data, label, 64);
  return new Scalar(frFromBig(bigFromLE(okm)));
}

/** The backend calls that take a scalar, as one object so that tests can watch them and
 *  prove a secret scalar never reaches the backend as it is (as pairing.py's tests do). */
export const backendCalls = {
  mul: (x, k) => mcl.mul(x, k),
  pow: (x, k) => mcl.pow(x, k),
};

function blindedMul(point, k) {
  const b = randomFrNonzero();
  return backendCalls.mul(backendCalls.mul(point, b), mcl.div(k, b));
}

// --- G1 and G2 -------------------------------------------------------------------------

class CurvePoint {
  constructor(point) {
    if (!(point instanceof this.constructor.Backend)) {
      throw new TypeError(`${this.constructor.name} wraps a backend point`);
    }
    this.p = point;
  }

  /** Decode and validate: exact length, canonical, on the curve, in the prime-order
   *  subgroup, not the identity. */
  static fromBytes(data) {
    const { Backend, SIZE, name } = this;
    if (!isBytes(data) || data.length !== SIZE) {
      throw new MalformedInputError(`${name} point: expected ${SIZE} bytes, got ${data?.length}`);
    }
    const point = new Backend();
    try {
      point.deserialize(data);
    } catch {
      throw new MalformedInputError(`${name} point: not a point of the prime-order subgroup`);
    }
    if (point.isZero()) throw new MalformedInputError(`${name} point: the identity is not allowed`);
    if (!equalBytes(point.serialize(), data)) {
      throw new MalformedInputError(`${name} point: non-canonical encoding`);
    }
    return new this(point);
  }

  toBytes() {
    return new Uint8Array(this.p.serialize());
  }

  /** k·self for a secret k, with a fresh multiplicative blind. */
  mulSecret(k) {
    return new this.constructor(blindedMul(this.p, Scalar.fr(k)));
  }

  /** k·self for a public k (variable-time). */
  mulPublic(k) {
    return new this.constructor(backendCalls.mul(this.p, Scalar.fr(k)));
  }

  isIdentity() {
    return this.p.isZero();
  }

  add(other) {
    return new this.constructor(mcl.add(this.p, other.p));
  }

  sub(other) {
    return new this.constructor(mcl.sub(this.p, other.p));
  }

  neg() {
    return new this.constructor(mcl.neg(this.p));
  }

  equals(other) {
    return other instanceof this.constructor && this.p.isEqual(other.p);
  }

  toString() {
    return `${this.constructor.name}(${toHex(this.toBytes()).slice(0, 16)}…)`;
  }
}

/** A point of G1 (the prime-order subgroup of E(Fp)). */
export class G1 extends CurvePoint {
  static Backend = mcl.G1;
  static SIZE = G1_BYTES;

  static generator() {
    return G1_GEN;
  }
}

/** A point of G2 (the prime-order subgroup of the twist over Fp2). */
export class G2 extends CurvePoint {
  static Backend = mcl.G2;
  static SIZE = G2_BYTES;
  lines = null;

  static generator() {
    return G2_GEN;
  }

  /** Precompute this point's Miller-loop lines, for a point paired again and again. The
   *  lines live in the backend's memory until release() (the generator keeps its own). */
  prepare() {
    if (this.lines === null) this.lines = new mcl.PrecomputedG2(this.p);
    return this;
  }

  release() {
    if (this.lines !== null && this !== G2_GEN) {
      this.lines.destroy();
      this.lines = null;
    }
  }
}

// --- GT membership -----------------------------------------------------------------------
//
// f ∈ GT ⇔ f^r = 1. As in pairing.py: f·conj(f) = 1 (f is unitary, its order divides
// p^6+1) and f^p · f^|u| = 1 (that is f^(p-u) = 1); since gcd(p^6+1, p-u) = r (checked in
// the tests), both together hold exactly when f^r = 1. f^p is a Frobenius map on the
// coefficients; conj(f) negates the w-part. f^|u| = (f^(|u|/2))^2, computed here by plain
// square-and-multiply with the backend's generic Fp12 product (mcl's pow may use a split
// valid only inside GT; this never relies on it).

function fpPow(a, e) {
  let result = 1n;
  let base = a % P;
  let k = e;
  while (k > 0n) {
    if (k & 1n) result = (result * base) % P;
    base = (base * base) % P;
    k >>= 1n;
  }
  return result;
}

function fp2Mul(a, b) {
  return [
    (((a[0] * b[0] - a[1] * b[1]) % P) + P) % P,
    (a[0] * b[1] + a[1] * b[0]) % P,
  ];
}

function fp2Pow(a, e) {
  let result = [1n, 0n];
  let base = a;
  let k = e;
  while (k > 0n) {
    if (k & 1n) result = fp2Mul(result, base);
    base = fp2Mul(base, base);
    k >>= 1n;
  }
  return result;
}

// gamma_k = xi^(k(p-1)/6), xi = 1 + i: the Frobenius twist of the basis element w^k.
const GAMMA = [0n, 1n, 2n, 3n, 4n, 5n].map((k) => fp2Pow([1n, 1n], (k * (P - 1n)) / 6n));
const HALF_U = U_ABS / 2n;

function coeffs(raw) {
  const out = [];
  for (let i = 0; i < GT_BYTES; i += FP_BYTES) out.push(bigFromLE(raw.subarray(i, i + FP_BYTES)));
  return out;
}

function coeffBytes(c) {
  return concat(...c.map((v) => bigToLE(v, FP_BYTES)));
}

function gtLoad(raw) {
  const out = new mcl.GT();
  try {
    out.deserialize(raw);
  } catch {
    return null;
  }
  return out;
}

function fromCoeffs(c) {
  const out = gtLoad(coeffBytes(c));
  if (out === null) throw new CryptoInvariantError('GT coefficients out of range');
  return out;
}

/** f^p, or conj(f^p) = f^(-p) for unitary f, from the coefficients of f. */
function frobenius(c, conjugateAfter) {
  const out = new Array(12).fill(0n);
  for (const s of [0, 1]) {
    const negate = s === 1 && conjugateAfter;
    for (const t of [0, 1, 2]) {
      const i = 6 * s + 2 * t;
      let x = c[i];
      let y = (P - c[i + 1]) % P;
      const k = 2 * t + s;
      if (k) {
        const [g0, g1] = GAMMA[k];
        [x, y] = [(((x * g0 - y * g1) % P) + P) % P, (x * g1 + y * g0) % P];
      }
      out[i] = negate ? (P - x) % P : x;
      out[i + 1] = negate ? (P - y) % P : y;
    }
  }
  return out;
}

function conjugate(c) {
  return [...c.slice(0, 6), ...c.slice(6).map((v) => (P - v) % P)];
}

function powPlain(x, e) {
  let result = new mcl.GT();
  result.setInt(1);
  for (const bit of e.toString(2)) {
    result = mcl.mul(result, result);
    if (bit === '1') result = mcl.mul(result, x);
  }
  return result;
}

function inGT(f, raw) {
  const c = coeffs(raw);
  if (!mcl.mul(f, fromCoeffs(conjugate(c))).isOne()) return false; // not unitary (or zero)
  const h = powPlain(f, HALF_U);
  // f^p · f^|u| = 1  ⇔  f^|u| = f^(-p) = conj(f^p), since f is unitary.
  return equalBytes(mcl.mul(h, h).serialize(), coeffBytes(frobenius(c, true)));
}

/** An element of GT, the order-r subgroup of Fp12* that pairings land in. Secret-ish:
 *  redacted when printed. */
export class GT {
  #e;

  constructor(element) {
    if (!(element instanceof mcl.GT)) throw new TypeError('GT wraps a backend element');
    this.#e = element;
  }

  /** e(g1, g2). */
  static generator() {
    return GT_GEN;
  }

  /** A uniform element of GT: the generator to a fresh secret power. */
  static random() {
    return GT_GEN.powSecret(Scalar.random());
  }

  /** Decode and validate: exact length, canonical, and in the order-r subgroup. */
  static fromBytes(data) {
    if (!isBytes(data) || data.length !== GT_BYTES) {
      throw new MalformedInputError(`GT element: expected ${GT_BYTES} bytes, got ${data?.length}`);
    }
    const raw = new Uint8Array(data);
    const element = gtLoad(raw);
    if (element === null) throw new MalformedInputError('GT element: coefficient out of range');
    if (!equalBytes(element.serialize(), raw)) {
      throw new MalformedInputError('GT element: non-canonical encoding');
    }
    if (!inGT(element, raw)) {
      throw new MalformedInputError('GT element: not in the prime-order subgroup');
    }
    return new GT(element);
  }

  toBytes() {
    return new Uint8Array(this.#e.serialize());
  }

  /** self^k for a secret k, with a fresh multiplicative blind. */
  powSecret(k) {
    const b = randomFrNonzero();
    return new GT(backendCalls.pow(backendCalls.pow(this.#e, b), mcl.div(Scalar.fr(k), b)));
  }

  /** self^k for a public k (variable-time). */
  powPublic(k) {
    return new GT(backendCalls.pow(this.#e, Scalar.fr(k)));
  }

  isOne() {
    return this.#e.isOne();
  }

  mul(other) {
    return new GT(mcl.mul(this.#e, other.#e));
  }

  div(other) {
    return new GT(mcl.div(this.#e, other.#e));
  }

  equals(other) {
    return other instanceof GT && equalBytes(this.toBytes(), other.toBytes());
  }

  /** @internal */
  static element(x) {
    return x.#e;
  }

  toString() {
    return '<GT [redacted]>';
  }

  toJSON() {
    throw new TypeError('GT is not serialized to JSON');
  }

  [inspect]() {
    return this.toString();
  }
}

/** The optimal ate pairing e(p, q); faster when q was prepare()-d. */
export function pair(p, q) {
  if (!(p instanceof G1) || !(q instanceof G2)) throw new TypeError('pair(G1, G2)');
  if (q.lines === null) return new GT(mcl.pairing(p.p, q.p));
  return new GT(mcl.finalExp(mcl.precomputedMillerLoop(p.p, q.lines)));
}

function importGenerator(Kind, raw) {
  const point = new Kind.Backend();
  point.deserialize(raw);
  return new Kind(point);
}

const G1_GEN = importGenerator(G1, G1_GENERATOR);
const G2_GEN = importGenerator(G2, G2_GENERATOR).prepare();
const GT_GEN = pair(G1_GEN, G2_GEN);

// --- checks of the backend at load ---------------------------------------------------------

function isSquare(a) {
  const v = ((a % P) + P) % P;
  return v === 0n || fpPow(v, (P - 1n) / 2n) === 1n;
}

/** Encodings of a G1 point and a G2 point on their curves but outside the prime-order
 *  subgroups (the cofactors are large, so the first such x serves). */
export function outsideSubgroupEncodings() {
  let x = 2n;
  while (!isSquare(x ** 3n + 4n)) x += 1n;
  const g1 = bigToLE(x, FP_BYTES);
  for (let x0 = 2n; x0 < 1000n; x0++) {
    const c0 = (((x0 ** 3n - 3n * x0 + 4n) % P) + P) % P;
    const c1 = (3n * x0 * x0 - 1n + 4n) % P;
    if (isSquare(c0 * c0 + c1 * c1)) return [g1, concat(bigToLE(x0, FP_BYTES), bigToLE(1n, FP_BYTES))];
  }
  throw new CryptoInvariantError('no test point found');
}

function selfCheck() {
  const [badG1, badG2] = outsideSubgroupEncodings();
  const refused = (Backend, raw) => {
    try {
      new Backend().deserialize(raw);
      return false;
    } catch {
      return true;
    }
  };
  const g1Again = new mcl.G1();
  g1Again.deserialize(G1_GENERATOR);
  if (
    !refused(mcl.G1, badG1) ||
    !refused(mcl.G2, badG2) ||
    !equalBytes(g1Again.serialize(), G1_GENERATOR) ||
    GT_GEN.isOne()
  ) {
    throw new CryptoInvariantError('mcl-wasm does not behave as this module requires');
  }
}

selfCheck();
