// Web APIs of the `data` preset: Buffer. This script is read into a context the
// first time code reads one of these globals; the end of `web.js` calls it with the natives `n`
// and the helpers `h` that `web.js` captured before any user code ran.
(function (n, h) {
  'use strict';
  const { Object, Array, Uint8Array, DataView, ArrayBuffer, RangeError, TypeError, Math, Number, String,
    defineProperty, freeze, setPrototypeOf, apply, define, abLength, typedName, isArrayBuffer,
    isDataView, view, source, copy, wellFormed } = h;
  const out = { __proto__: null };
  const expose = (name, value) => { out[name] = value; };

  // ---- Buffer -----------------------------------------------------------------------------
  const encodings = freeze({ __proto__: null, utf8: 'utf8', 'utf-8': 'utf8', hex: 'hex',
    base64: 'base64', base64url: 'base64url', latin1: 'latin1', binary: 'latin1',
    ascii: 'ascii', ucs2: 'utf16le', 'ucs-2': 'utf16le', utf16le: 'utf16le', 'utf-16le': 'utf16le' });
  const encodingOf = (e) => {
    if (e === undefined || e === null) return 'utf8';
    const name = encodings[String(e).toLowerCase()];
    if (name === undefined) throw new TypeError(`Unknown encoding: ${e}`);
    return name;
  };
  const utf16Encode = (s) => {
    const out = new Uint8Array(s.length * 2);
    for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); out[2 * i] = c & 255; out[2 * i + 1] = c >>> 8; }
    return out;
  };
  const utf16Decode = (u) => {
    let s = '';
    for (let i = 0; i + 1 < u.length; i += 2) s += String.fromCharCode(u[i] | (u[i + 1] << 8));
    return s;
  };
  const encode = (s, e) => {
    switch (e) {
      case 'utf8': return n.utf8Encode(wellFormed(s));
      case 'hex': return n.hexDecode(wellFormed(s));
      case 'base64': case 'base64url': return n.base64Decode(wellFormed(s));
      case 'latin1': case 'ascii': return n.latin1Encode(wellFormed(s), false);
      default: return utf16Encode(s);
    }
  };
  const decode = (u, e) => {
    switch (e) {
      case 'utf8': return n.utf8Decode(u, false);
      case 'hex': return n.hexEncode(u);
      case 'base64': return n.base64Encode(u, false);
      case 'base64url': return n.base64Encode(u, true);
      case 'latin1': return n.latin1Decode(u, false);
      case 'ascii': return n.latin1Decode(u, true);
      default: return utf16Decode(u);
    }
  };
  const range = (what, value, min, max) => {
    const e = new RangeError(`The value of "${what}" is out of range. It must be >= ${min} and <= ${max}. Received ${value}`);
    defineProperty(e, 'code', { value: 'ERR_OUT_OF_RANGE', writable: true, configurable: true });
    return e;
  };
  const integer = (what, v, min, max) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      if (typeof v !== 'number') throw new TypeError(`The "${what}" argument must be of type number. Received ${typeof v}`);
      throw range(what, v, min, max);
    }
    return v;
  };
  const clampIndex = (v, len, dflt) => {
    if (v === undefined) return dflt;
    v = Math.trunc(+v) || 0;
    if (v < 0) v = Math.max(0, len + v);
    return Math.min(v, len);
  };

  class Buffer extends Uint8Array {
    constructor(arg, encodingOrOffset, length) {
      if (typeof arg === 'string') return Buffer.from(arg, encodingOrOffset);
      super(arg, encodingOrOffset, length);
    }
    static from(value, encodingOrOffset, length) {
      if (typeof value === 'string') return wrap(encode(value, encodingOrOffset === undefined ? 'utf8' : encodingOrOffset === null ? 'utf8' : encodingOf(encodingOrOffset)));
      if (isArrayBuffer(value)) {
        const len = apply(abLength, value, []);
        const offset = encodingOrOffset === undefined ? 0 : Math.trunc(+encodingOrOffset) || 0;
        if (offset < 0 || offset > len) throw range('offset', offset, 0, len);
        const count = length === undefined ? len - offset : Math.trunc(+length) || 0;
        if (count < 0 || offset + count > len) throw range('length', count, 0, len - offset);
        return wrap(new Uint8Array(value, offset, count));
      }
      const bytes = view(value);
      if (bytes !== undefined) return wrap(isDataView(value) ? copy(bytes) : Uint8Array.from(value));
      if (value !== null && typeof value === 'object') {
        if (value.type === 'Buffer' && Array.isArray(value.data)) return wrap(Uint8Array.from(value.data));
        if (Array.isArray(value) || typeof value.length === 'number') return wrap(Uint8Array.from(value));
      }
      throw new TypeError('The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object.');
    }
    static alloc(size, fill, encoding) {
      integer('size', size, 0, 2 ** 31 - 1);
      const b = wrap(new Uint8Array(size));
      if (fill !== undefined && fill !== 0 && size > 0) b.fill(fill, 0, size, encoding);
      return b;
    }
    static allocUnsafe(size) { integer('size', size, 0, 2 ** 31 - 1); return wrap(new Uint8Array(size)); }
    static allocUnsafeSlow(size) { return Buffer.allocUnsafe(size); }
    static isBuffer(v) { return v instanceof Buffer; }
    static isEncoding(e) { return typeof e === 'string' && encodings[e.toLowerCase()] !== undefined; }
    static byteLength(v, encoding) {
      if (typeof v === 'string') return encode(v, encodingOf(encoding)).length;
      const u = view(v);
      if (u === undefined) throw new TypeError('The "string" argument must be of type string or an instance of Buffer or ArrayBuffer.');
      return u.length;
    }
    static concat(list, totalLength) {
      if (!Array.isArray(list)) throw new TypeError('The "list" argument must be an instance of Array.');
      const parts = list.map((b, i) => {
        if (typedName(b) !== 'Uint8Array') throw new TypeError(`The "list[${i}]" argument must be an instance of Buffer or Uint8Array.`);
        return b;
      });
      let total = 0;
      for (const p of parts) total += p.length;
      if (totalLength !== undefined) total = integer('totalLength', totalLength, 0, 2 ** 31 - 1);
      const out = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        if (at >= total) break;
        const take = p.length <= total - at ? p : p.subarray(0, total - at);
        out.set(take, at);
        at += take.length;
      }
      return wrap(out);
    }
    static compare(a, b) {
      if (typedName(a) !== 'Uint8Array' || typedName(b) !== 'Uint8Array') throw new TypeError('The arguments must be instances of Buffer or Uint8Array.');
      return compareBytes(a, b);
    }
    toString(encoding, start, end) {
      const e = encodingOf(encoding);
      const s = clampIndex(start, this.length, 0), t = clampIndex(end, this.length, this.length);
      return t <= s ? '' : decode(this.subarray(s, t), e);
    }
    toJSON() { return { type: 'Buffer', data: Array.from(this) }; }
    equals(other) {
      if (typedName(other) !== 'Uint8Array') throw new TypeError('The "otherBuffer" argument must be an instance of Buffer or Uint8Array.');
      return compareBytes(this, other) === 0;
    }
    compare(target, targetStart = 0, targetEnd = target.length, sourceStart = 0, sourceEnd = this.length) {
      if (typedName(target) !== 'Uint8Array') throw new TypeError('The "target" argument must be an instance of Buffer or Uint8Array.');
      return compareBytes(this.subarray(sourceStart, sourceEnd), target.subarray(targetStart, targetEnd));
    }
    indexOf(value, byteOffset = 0, encoding = undefined) { return search(this, value, byteOffset, encoding); }
    includes(value, byteOffset = 0, encoding = undefined) { return search(this, value, byteOffset, encoding) !== -1; }
    slice(start, end) { return this.subarray(start, end); }
    write(string, offset, length, encoding) {
      if (typeof string !== 'string') throw new TypeError('The "string" argument must be of type string.');
      if (typeof offset === 'string') { encoding = offset; offset = 0; length = undefined; }
      else if (typeof length === 'string') { encoding = length; length = undefined; }
      offset = offset === undefined ? 0 : integer('offset', offset, 0, this.length);
      const room = this.length - offset;
      length = length === undefined ? room : Math.min(room, integer('length', length, 0, 2 ** 31 - 1));
      const e = encodingOf(encoding);
      let bytes;
      if (e === 'utf8') {
        const [, b] = n.utf8EncodeInto(wellFormed(string), length);
        bytes = b;
      } else {
        bytes = encode(string, e);
        if (bytes.length > length) bytes = bytes.subarray(0, e === 'utf16le' ? length & ~1 : length);
      }
      this.set(bytes, offset);
      return bytes.length;
    }
    fill(value, offset = 0, end = this.length, encoding = undefined) {
      if (typeof offset === 'string') { encoding = offset; offset = 0; end = this.length; }
      else if (typeof end === 'string') { encoding = end; end = this.length; }
      if (typeof value === 'number') { Uint8Array.prototype.fill.call(this, value & 255, offset, end); return this; }
      const pattern = typeof value === 'string' ? encode(value, encodingOf(encoding)) : source(value, 'The "value" argument');
      if (pattern.length === 0) {
        if (typeof value === 'string' && value.length > 0) throw new TypeError(`The argument 'value' is invalid. Received '${value}'`);
        Uint8Array.prototype.fill.call(this, 0, offset, end);
        return this;
      }
      for (let i = offset, j = 0; i < end; i++, j = (j + 1) % pattern.length) this[i] = pattern[j];
      return this;
    }
    copy(target, targetStart = 0, sourceStart = 0, sourceEnd = this.length) {
      if (typedName(target) !== 'Uint8Array') throw new TypeError('The "target" argument must be an instance of Buffer or Uint8Array.');
      if (targetStart >= target.length || sourceStart >= sourceEnd) return 0;
      const part = this.subarray(sourceStart, Math.min(sourceEnd, sourceStart + target.length - targetStart));
      target.set(part, targetStart);
      return part.length;
    }
    swap16() { return swap(this, 2); }
    swap32() { return swap(this, 4); }
    swap64() { return swap(this, 8); }
  }
  Buffer.poolSize = 8192;
  const wrap = (u) => setPrototypeOf(u, Buffer.prototype);
  const compareBytes = (a, b) => {
    const len = Math.min(a.length, b.length);
    for (let i = 0; i < len; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
  };
  const search = (buf, value, byteOffset, encoding) => {
    if (typeof byteOffset === 'string') { encoding = byteOffset; byteOffset = 0; }
    const from = clampIndex(byteOffset, buf.length, 0);
    if (typeof value === 'number') return Uint8Array.prototype.indexOf.call(buf, value & 255, from);
    const needle = typeof value === 'string' ? encode(value, encodingOf(encoding)) : view(value);
    if (needle === undefined) throw new TypeError('The "value" argument must be one of type number or string or an instance of Buffer or Uint8Array.');
    return n.indexOf(buf, needle, from);
  };
  const swap = (buf, size) => {
    if (buf.length % size !== 0) throw new RangeError(`Buffer size must be a multiple of ${size * 8}-bits`);
    for (let i = 0; i < buf.length; i += size) {
      for (let a = i, b = i + size - 1; a < b; a++, b--) { const t = buf[a]; buf[a] = buf[b]; buf[b] = t; }
    }
    return buf;
  };
  const numbers = [
    ['UInt8', 1, 'Uint8', 0, 255], ['Int8', 1, 'Int8', -128, 127],
    ['UInt16', 2, 'Uint16', 0, 65535], ['Int16', 2, 'Int16', -32768, 32767],
    ['UInt32', 4, 'Uint32', 0, 4294967295], ['Int32', 4, 'Int32', -2147483648, 2147483647],
    ['Float', 4, 'Float32'], ['Double', 8, 'Float64'],
    ['BigUInt64', 8, 'BigUint64', 0n, 2n ** 64n - 1n], ['BigInt64', 8, 'BigInt64', -(2n ** 63n), 2n ** 63n - 1n],
  ];
  const dv = (buf) => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const offsetOf = (buf, offset, size) => {
    if (offset === undefined) offset = 0;
    if (typeof offset !== 'number') throw new TypeError(`The "offset" argument must be of type number. Received ${typeof offset}`);
    if (!Number.isInteger(offset) || offset < 0 || offset > buf.length - size) throw range('offset', offset, 0, Math.max(0, buf.length - size));
    return offset;
  };
  for (const [name, size, view_, min, max] of numbers) {
    const get = DataView.prototype[`get${view_}`], set = DataView.prototype[`set${view_}`];
    const big = typeof min === 'bigint';
    const check = (value) => {
      if (big) {
        if (typeof value !== 'bigint') throw new TypeError(`The "value" argument must be of type bigint. Received ${typeof value}`);
        if (value < min || value > max) throw range('value', `${value}n`, `${min}n`, `${max}n`);
        return value;
      }
      value = +value;
      if (min !== undefined && (value < min || value > max)) throw range('value', value, min, max);
      return value;
    };
    const ends = size === 1 ? [['', false]] : [['LE', true], ['BE', false]];
    for (const [suffix, little] of ends) {
      const read = {
        [`read${name}${suffix}`](offset = 0) { return apply(get, dv(this), [offsetOf(this, offset, size), little]); },
      }[`read${name}${suffix}`];
      const write = {
        [`write${name}${suffix}`](value, offset = 0) {
          const at = offsetOf(this, offset, size);
          apply(set, dv(this), [at, check(value), little]);
          return at + size;
        },
      }[`write${name}${suffix}`];
      define(Buffer.prototype, `read${name}${suffix}`, read);
      define(Buffer.prototype, `write${name}${suffix}`, write);
      if (name.includes('UInt')) {
        const alias = name.replace('UInt', 'Uint');
        define(Buffer.prototype, `read${alias}${suffix}`, read);
        define(Buffer.prototype, `write${alias}${suffix}`, write);
      }
    }
  }
  // Variable-width integers of 1 to 6 bytes: readUIntLE(offset, byteLength) and friends.
  for (const signed of [false, true]) {
    for (const little of [true, false]) {
      const kind = `${signed ? 'Int' : 'UInt'}${little ? 'LE' : 'BE'}`;
      const at = (i, width) => (little ? i : width - 1 - i);
      const read = {
        [`read${kind}`](offset, byteLength) {
          const width = integer('byteLength', byteLength, 1, 6);
          const start = offsetOf(this, offset, width);
          let v = 0;
          for (let i = width - 1; i >= 0; i--) v = v * 256 + this[start + at(i, width)];
          return signed && v >= 2 ** (8 * width - 1) ? v - 2 ** (8 * width) : v;
        },
      }[`read${kind}`];
      const write = {
        [`write${kind}`](value, offset, byteLength) {
          const width = integer('byteLength', byteLength, 1, 6);
          const start = offsetOf(this, offset, width);
          const min = signed ? -(2 ** (8 * width - 1)) : 0, max = signed ? 2 ** (8 * width - 1) - 1 : 2 ** (8 * width) - 1;
          value = Math.trunc(+value);
          if (!(value >= min && value <= max)) throw range('value', value, min, max);
          if (value < 0) value += 2 ** (8 * width);
          for (let i = 0; i < width; i++) { this[start + at(i, width)] = value % 256; value = Math.floor(value / 256); }
          return start + width;
        },
      }[`write${kind}`];
      define(Buffer.prototype, `read${kind}`, read);
      define(Buffer.prototype, `write${kind}`, write);
      if (!signed) {
        define(Buffer.prototype, `read${kind.replace('UInt', 'Uint')}`, read);
        define(Buffer.prototype, `write${kind.replace('UInt', 'Uint')}`, write);
      }
    }
  }
  define(Buffer.prototype, 'toLocaleString', Buffer.prototype.toString);
  expose('Buffer', Buffer);

  return out;
})
