// JSON exactly as Python's json module reads and writes it, for values that are signed
// over their canonical text (board messages: json.dumps(..., sort_keys=True,
// separators=(",", ":")), ASCII-only) and for test vectors with 64-bit integers.
//
// JSON.parse cannot serve: it turns every number into a double (a 64-bit KID or an integer
// above 2^53 loses digits, and 1.0 becomes 1), and JSON.stringify neither sorts keys nor
// escapes non-ASCII text. Here integers stay exact (a number when safe, else a BigInt, or
// always a BigInt with {bigints: true}), floats are PyFloat so that they print as Python's
// repr does, and keys sort by code point as Python sorts str.

export class PyFloat {
  constructor(value) {
    this.value = value;
    Object.freeze(this);
  }
}

export class JsonError extends Error {
  constructor(message) {
    super(message);
    this.name = 'JsonError';
  }
}

const MAX_DEPTH = 512;
const MAX_INT_DIGITS = 4300; // Python's int-from-string limit
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function setKey(obj, key, value) {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Parse as Python's json.loads does (NaN and Infinity included); JsonError otherwise. */
export function parse(text, { bigints = false } = {}) {
  if (typeof text !== 'string') throw new JsonError('expected text');
  if (text.charCodeAt(0) === 0xfeff) throw new JsonError('unexpected BOM');
  let pos = 0;
  const ws = () => {
    while (pos < text.length) {
      const c = text[pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') pos += 1;
      else break;
    }
  };
  const fail = (what) => {
    throw new JsonError(`${what} at ${pos}`);
  };
  const literal = (word, value) => {
    if (text.startsWith(word, pos)) {
      pos += word.length;
      return value;
    }
    return fail('unexpected text');
  };
  const string = () => {
    pos += 1; // the opening quote
    let out = '';
    for (;;) {
      if (pos >= text.length) fail('unterminated string');
      const c = text[pos];
      const code = text.charCodeAt(pos);
      if (c === '"') {
        pos += 1;
        return out;
      }
      if (code < 0x20) fail('control character in string');
      if (c !== '\\') {
        out += c;
        pos += 1;
        continue;
      }
      const e = text[pos + 1];
      if (e === 'u') {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 6;
      } else if (e in ESCAPES) {
        out += ESCAPES[e];
        pos += 2;
      } else {
        fail('bad escape');
      }
    }
  };
  const number = () => {
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (m === null) return fail('expected a value');
    pos = NUMBER.lastIndex;
    if (m[1] === undefined && m[2] === undefined) {
      if (m[0].replace('-', '').length > MAX_INT_DIGITS) fail('integer too long');
      const big = BigInt(m[0]);
      if (bigints) return big;
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    return new PyFloat(Number(m[0]));
  };
  const value = (depth) => {
    if (depth > MAX_DEPTH) fail('nested too deeply');
    ws();
    const c = text[pos];
    if (c === '{') {
      pos += 1;
      const obj = {};
      ws();
      if (text[pos] === '}') {
        pos += 1;
        return obj;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail('expected a key');
        const key = string();
        ws();
        if (text[pos] !== ':') fail("expected ':'");
        pos += 1;
        setKey(obj, key, value(depth + 1));
        ws();
        if (text[pos] === ',') {
          pos += 1;
          continue;
        }
        if (text[pos] === '}') {
          pos += 1;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      pos += 1;
      const arr = [];
      ws();
      if (text[pos] === ']') {
        pos += 1;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[pos] === ',') {
          pos += 1;
          continue;
        }
        if (text[pos] === ']') {
          pos += 1;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true', true);
    if (c === 'f') return literal('false', false);
    if (c === 'n') return literal('null', null);
    if (c === 'N') return literal('NaN', new PyFloat(NaN));
    if (c === 'I') return literal('Infinity', new PyFloat(Infinity));
    if (c === '-' && text.startsWith('-Infinity', pos)) return literal('-Infinity', new PyFloat(-Infinity));
    return number();
  };
  const out = value(0);
  ws();
  if (pos !== text.length) fail('extra data');
  return out;
}

/** Python's repr of a float (the shortest text that reads back to the same double). */
export function pyFloatRepr(x) {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const [mantissa, exp] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const decpt = Number(exp) + 1;
  let body;
  if (x !== 0 && (decpt <= -4 || decpt > 16)) {
    const e = decpt - 1;
    body = `${digits[0]}${digits.length > 1 ? '.' + digits.slice(1) : ''}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  } else if (decpt <= 0) {
    body = `0.${'0'.repeat(-decpt)}${digits}`;
  } else if (decpt >= digits.length) {
    body = `${digits}${'0'.repeat(decpt - digits.length)}.0`;
  } else {
    body = `${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  }
  return sign + body;
}

const SHORT = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

function quote(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    const code = s.charCodeAt(i);
    if (SHORT[c] !== undefined) out += SHORT[c];
    else if (code < 0x20 || code > 0x7e) out += '\\u' + code.toString(16).padStart(4, '0');
    else out += c;
  }
  return out + '"';
}

/** Compare two strings by code point, as Python orders str. */
export function compareCodePoints(a, b) {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done === y.done ? 0 : x.done ? -1 : 1;
    const d = x.value.codePointAt(0) - y.value.codePointAt(0);
    if (d) return d;
  }
}

/** json.dumps(value, sort_keys=True, separators=(",", ":")) with ensure_ascii, exactly. */
export function dumps(value) {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return BigInt(value).toString();
    return pyFloatRepr(value);
  }
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  if (typeof value === 'string') return quote(value);
  if (Array.isArray(value)) return `[${value.map(dumps).join(',')}]`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const keys = Object.keys(value).sort(compareCodePoints);
    return `{${keys.map((k) => `${quote(k)}:${dumps(value[k])}`).join(',')}}`;
  }
  throw new TypeError(`not JSON-serializable: ${typeof value}`);
}
