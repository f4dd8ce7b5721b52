(function (n) {
  'use strict';
  const g = globalThis;
  const { defineProperty, freeze, getPrototypeOf, setPrototypeOf, getOwnPropertyDescriptor, keys } = Object;
  const apply = Reflect.apply;
  const getter = (o, k) => getOwnPropertyDescriptor(o, k).get;
  const define = (o, name, value) => defineProperty(o, name,
    { value, writable: true, enumerable: false, configurable: true });
  const frozen = [];
  const expose = (name, value) => { define(g, name, value); frozen.push(value); if (typeof value === 'function' && value.prototype) frozen.push(value.prototype); };

  // ---- byte views -------------------------------------------------------------------------
  const TypedArray = getPrototypeOf(Uint8Array);
  const taTag = getter(TypedArray.prototype, Symbol.toStringTag);
  const taBuffer = getter(TypedArray.prototype, 'buffer');
  const taOffset = getter(TypedArray.prototype, 'byteOffset');
  const taLength = getter(TypedArray.prototype, 'byteLength');
  const dvBuffer = getter(DataView.prototype, 'buffer');
  const dvOffset = getter(DataView.prototype, 'byteOffset');
  const dvLength = getter(DataView.prototype, 'byteLength');
  const abLength = getter(ArrayBuffer.prototype, 'byteLength');
  const sabLength = getter(SharedArrayBuffer.prototype, 'byteLength');
  const brand = (f, v) => { try { apply(f, v, []); return true; } catch { return false; } };
  const typedName = (v) => apply(taTag, v, []);
  const isArrayBuffer = (v) => brand(abLength, v) || brand(sabLength, v);
  const isDataView = (v) => brand(dvLength, v);
  const isView = ArrayBuffer.isView;
  /** A Uint8Array over the bytes of a BufferSource (no copy), or undefined. */
  const view = (v) => {
    if (typedName(v) !== undefined) return new Uint8Array(apply(taBuffer, v, []), apply(taOffset, v, []), apply(taLength, v, []));
    if (isDataView(v)) return new Uint8Array(apply(dvBuffer, v, []), apply(dvOffset, v, []), apply(dvLength, v, []));
    if (isArrayBuffer(v)) return new Uint8Array(v);
    return undefined;
  };
  const source = (v, what) => {
    const u = view(v);
    if (u === undefined) throw new TypeError(`${what} must be an ArrayBuffer or an ArrayBuffer view`);
    return u;
  };
  const copy = (u) => { const c = new Uint8Array(u.length); c.set(u); return c; };
  const wellFormed = (s) => String(s).toWellFormed();

  // ---- DOMException -----------------------------------------------------------------------
  const codes = freeze({ __proto__: null, IndexSizeError: 1, HierarchyRequestError: 3,
    WrongDocumentError: 4, InvalidCharacterError: 5, NoModificationAllowedError: 7,
    NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11, SyntaxError: 12,
    InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
    TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20,
    URLMismatchError: 21, QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24,
    DataCloneError: 25 });
  class DOMException extends Error {
    constructor(message = '', name = 'Error') {
      super(String(message));
      defineProperty(this, 'name', { value: String(name), writable: true, enumerable: false, configurable: true });
    }
    get code() { return codes[this.name] ?? 0; }
  }
  const fail = (name, message) => new DOMException(message, name);
  expose('DOMException', DOMException);

  // ---- TextEncoder / TextDecoder ----------------------------------------------------------
  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(input = '') { return n.utf8Encode(wellFormed(input)); }
    encodeInto(input, destination) {
      if (typedName(destination) !== 'Uint8Array') {
        throw new TypeError('TextEncoder.encodeInto: the destination must be a Uint8Array');
      }
      const [read, bytes] = n.utf8EncodeInto(wellFormed(input), apply(taLength, destination, []));
      destination.set(bytes);
      return { read, written: bytes.length };
    }
  }
  expose('TextEncoder', TextEncoder);

  const utf8Labels = ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'unicode11utf8', 'unicode20utf8', 'x-unicode20utf8'];
  class TextDecoder {
    #fatal; #ignoreBOM;
    constructor(label = 'utf-8', options = undefined) {
      const l = String(label).trim().toLowerCase();
      if (!utf8Labels.includes(l)) {
        throw new RangeError(`TextDecoder: the encoding "${label}" is not supported (only utf-8 is)`);
      }
      this.#fatal = !!(options && options.fatal);
      this.#ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() { return 'utf-8'; }
    get fatal() { return this.#fatal; }
    get ignoreBOM() { return this.#ignoreBOM; }
    decode(input = undefined, options = undefined) {
      if (options && options.stream) {
        throw new TypeError('TextDecoder.decode: streaming ({stream: true}) is not supported');
      }
      if (input === undefined) return '';
      let bytes = source(input, 'TextDecoder.decode: the input');
      if (!this.#ignoreBOM && bytes.length >= 3 && bytes[0] === 0xEF && bytes[1] === 0xBB && bytes[2] === 0xBF) {
        bytes = bytes.subarray(3);
      }
      const s = n.utf8Decode(bytes, this.#fatal);
      if (s == null) throw new TypeError('TextDecoder.decode: the encoded data is not valid utf-8');
      return s;
    }
  }
  expose('TextDecoder', TextDecoder);

  // ---- atob / btoa ------------------------------------------------------------------------
  const need = (name, args, count) => {
    if (args.length < count) throw new TypeError(`${name}: ${count} argument${count > 1 ? 's' : ''} required, but only ${args.length} present`);
  };
  expose('btoa', function btoa(data) {
    need('btoa', arguments, 1);
    const bytes = n.latin1Encode(String(data), true);
    if (bytes == null) throw fail('InvalidCharacterError', 'btoa: the string contains characters outside of the Latin1 range');
    return n.base64Encode(bytes, false);
  });
  expose('atob', function atob(data) {
    need('atob', arguments, 1);
    const s = n.atob(String(data));
    if (s == null) throw fail('InvalidCharacterError', 'atob: the string to be decoded is not correctly encoded');
    return s;
  });

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
      case 'hex': return n.hexDecode(s);
      case 'base64': case 'base64url': return n.base64Decode(s);
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
  expose('Buffer', Buffer);

  // ---- URL / URLSearchParams --------------------------------------------------------------
  let linkParams, reparseParams;
  class URLSearchParams {
    #list = [];
    #update = null;
    static #link = (linkParams = (p, update) => { p.#update = update; },
      reparseParams = (p, query) => { p.#list = pairs(n.formParse(query.startsWith('?') ? query.slice(1) : query)); });
    constructor(init = undefined) {
      if (init === undefined || init === null) return;
      if (typeof init === 'object' || typeof init === 'function') {
        if (init instanceof URLSearchParams) { this.#list = init.#list.map(([k, v]) => [k, v]); return; }
        const iterator = init[Symbol.iterator];
        if (iterator !== undefined) {
          if (typeof iterator !== 'function') throw new TypeError('URLSearchParams: the init object is not iterable');
          for (const pair of init) {
            const p = Array.from(pair);
            if (p.length !== 2) throw new TypeError('URLSearchParams: each pair must have exactly two elements');
            this.#list.push([wellFormed(p[0]), wellFormed(p[1])]);
          }
          return;
        }
        for (const k of Reflect.ownKeys(init)) {
          const d = getOwnPropertyDescriptor(init, k);
          if (typeof k === 'string' && d !== undefined && d.enumerable) this.#list.push([wellFormed(k), wellFormed(init[k])]);
        }
        return;
      }
      const s = wellFormed(init);
      this.#list = pairs(n.formParse(s.startsWith('?') ? s.slice(1) : s));
    }
    #changed() { if (this.#update !== null) this.#update(this.toString()); }
    get size() { return this.#list.length; }
    append(name, value) { need('URLSearchParams.append', arguments, 2); this.#list.push([wellFormed(name), wellFormed(value)]); this.#changed(); }
    delete(name, value = undefined) {
      need('URLSearchParams.delete', arguments, 1);
      name = wellFormed(name);
      const v = value === undefined ? undefined : wellFormed(value);
      this.#list = this.#list.filter(([k, x]) => !(k === name && (v === undefined || x === v)));
      this.#changed();
    }
    get(name) { need('URLSearchParams.get', arguments, 1); name = wellFormed(name); const e = this.#list.find(([k]) => k === name); return e === undefined ? null : e[1]; }
    getAll(name) { need('URLSearchParams.getAll', arguments, 1); name = wellFormed(name); return this.#list.filter(([k]) => k === name).map(([, v]) => v); }
    has(name, value = undefined) {
      need('URLSearchParams.has', arguments, 1);
      name = wellFormed(name);
      const v = value === undefined ? undefined : wellFormed(value);
      return this.#list.some(([k, x]) => k === name && (v === undefined || x === v));
    }
    set(name, value) {
      need('URLSearchParams.set', arguments, 2);
      name = wellFormed(name); value = wellFormed(value);
      const i = this.#list.findIndex(([k]) => k === name);
      if (i === -1) this.#list.push([name, value]);
      else { this.#list[i][1] = value; this.#list = this.#list.filter(([k], j) => j <= i || k !== name); }
      this.#changed();
    }
    sort() {
      this.#list = this.#list.map((e, i) => [e, i]).sort(([a, i], [b, j]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : i - j)).map(([e]) => e);
      this.#changed();
    }
    forEach(callback, thisArg = undefined) {
      if (typeof callback !== 'function') throw new TypeError('URLSearchParams.forEach: the callback must be a function');
      for (const [k, v] of this.#list.slice()) apply(callback, thisArg, [v, k, this]);
    }
    keys() { return this.#list.map(([k]) => k)[Symbol.iterator](); }
    values() { return this.#list.map(([, v]) => v)[Symbol.iterator](); }
    entries() { return this.#list.map(([k, v]) => [k, v])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { const flat = []; for (const [k, v] of this.#list) flat.push(k, v); return n.formSerialize(flat); }
    get [Symbol.toStringTag]() { return 'URLSearchParams'; }
  }
  const pairs = (flat) => { const out = []; for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]); return out; };

  const HREF = 0, PROTOCOL = 1, USERNAME = 2, PASSWORD = 3, HOST = 4, HOSTNAME = 5, PORT = 6,
    PATHNAME = 7, SEARCH = 8, HASH = 9, ORIGIN = 10;
  const parse = (url, base) => n.urlParse(wellFormed(url), base === undefined ? undefined : wellFormed(base));
  class URL {
    #parts;
    #query = null;
    constructor(url, base = undefined) {
      need('URL', arguments, 1);
      const p = parse(url, base);
      if (p == null) {
        const e = new TypeError(base === undefined ? `Invalid URL: ${url}` : `Invalid URL: ${url} (base ${base})`);
        defineProperty(e, 'code', { value: 'ERR_INVALID_URL', writable: true, configurable: true });
        throw e;
      }
      this.#parts = p;
    }
    static canParse(url, base = undefined) { need('URL.canParse', arguments, 1); return parse(url, base) != null; }
    static parse(url, base = undefined) {
      need('URL.parse', arguments, 1);
      return parse(url, base) == null ? null : new URL(url, base);
    }
    #set(part, value) {
      const p = n.urlSet(this.#parts[HREF], part, wellFormed(value));
      if (p == null) throw new TypeError(`Invalid URL: ${value}`);
      this.#parts = p;
      if ((part === HREF || part === SEARCH) && this.#query !== null) reparseParams(this.#query, p[SEARCH]);
    }
    get href() { return this.#parts[HREF]; }
    set href(v) { this.#set(HREF, v); }
    get origin() { return this.#parts[ORIGIN]; }
    get protocol() { return this.#parts[PROTOCOL]; }
    set protocol(v) { this.#set(PROTOCOL, v); }
    get username() { return this.#parts[USERNAME]; }
    set username(v) { this.#set(USERNAME, v); }
    get password() { return this.#parts[PASSWORD]; }
    set password(v) { this.#set(PASSWORD, v); }
    get host() { return this.#parts[HOST]; }
    set host(v) { this.#set(HOST, v); }
    get hostname() { return this.#parts[HOSTNAME]; }
    set hostname(v) { this.#set(HOSTNAME, v); }
    get port() { return this.#parts[PORT]; }
    set port(v) { this.#set(PORT, v); }
    get pathname() { return this.#parts[PATHNAME]; }
    set pathname(v) { this.#set(PATHNAME, v); }
    get search() { return this.#parts[SEARCH]; }
    set search(v) { this.#set(SEARCH, v); }
    get hash() { return this.#parts[HASH]; }
    set hash(v) { this.#set(HASH, v); }
    get searchParams() {
      if (this.#query === null) {
        const q = new URLSearchParams(this.#parts[SEARCH]);
        linkParams(q, (s) => { this.#parts = n.urlSet(this.#parts[HREF], SEARCH, s); });
        this.#query = q;
      }
      return this.#query;
    }
    toString() { return this.#parts[HREF]; }
    toJSON() { return this.#parts[HREF]; }
    get [Symbol.toStringTag]() { return 'URL'; }
  }
  expose('URL', URL);
  expose('URLSearchParams', URLSearchParams);

  // ---- structuredClone --------------------------------------------------------------------
  const dateTime = Date.prototype.getTime, reSource = getter(RegExp.prototype, 'source'),
    reFlags = getter(RegExp.prototype, 'flags'), mapSize = getter(Map.prototype, 'size'),
    setSize = getter(Set.prototype, 'size'), mapEntries = Map.prototype.entries,
    setValues = Set.prototype.values, toTag = Object.prototype.toString,
    numberOf = Number.prototype.valueOf, stringOf = String.prototype.valueOf,
    booleanOf = Boolean.prototype.valueOf, bigintOf = BigInt.prototype.valueOf,
    arrayBufferSlice = ArrayBuffer.prototype.slice;
  const errorTypes = freeze({ __proto__: null, Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError });
  const uncloneable = (what) => fail('DataCloneError', `${what} could not be cloned.`);
  const notCloneable = new Set(['[object Promise]', '[object WeakMap]', '[object WeakSet]', '[object WeakRef]',
    '[object FinalizationRegistry]', '[object Generator]', '[object AsyncGenerator]']);
  const typedArrays = freeze({ __proto__: null, Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array,
    Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, Float16Array: g.Float16Array });
  const has = (o, k) => getOwnPropertyDescriptor(o, k) !== undefined;
  expose('structuredClone', function structuredClone(value, options = undefined) {
    need('structuredClone', arguments, 1);
    if (options !== undefined && options !== null && options.transfer !== undefined && Array.from(options.transfer).length > 0) {
      throw fail('DataCloneError', 'structuredClone: transferring is not supported');
    }
    const memory = new Map();
    const clone = (v) => {
      if (typeof v === 'symbol') throw uncloneable(String(v));
      if (typeof v === 'function') throw uncloneable(`function ${v.name || '(anonymous)'}`);
      if (typeof v !== 'object' || v === null) return v;
      if (memory.has(v)) return memory.get(v);
      const keep = (out) => { memory.set(v, out); return out; };
      if (brand(dateTime, v)) return keep(new Date(apply(dateTime, v, [])));
      if (brand(reSource, v) && v !== RegExp.prototype) return keep(new RegExp(apply(reSource, v, []), apply(reFlags, v, [])));
      if (brand(numberOf, v)) return keep(Object(apply(numberOf, v, [])));
      if (brand(stringOf, v)) return keep(Object(apply(stringOf, v, [])));
      if (brand(booleanOf, v)) return keep(Object(apply(booleanOf, v, [])));
      if (brand(bigintOf, v)) return keep(Object(apply(bigintOf, v, [])));
      if (isArrayBuffer(v)) return keep(apply(arrayBufferSlice, brand(abLength, v) ? v : new Uint8Array(v).slice().buffer, [0]));
      const kind = typedName(v);
      if (kind !== undefined) {
        const buf = clone(apply(taBuffer, v, []));
        const Ctor = typedArrays[kind];
        return keep(new Ctor(buf, apply(taOffset, v, []), apply(taLength, v, []) / Ctor.BYTES_PER_ELEMENT));
      }
      if (isDataView(v)) return keep(new DataView(clone(apply(dvBuffer, v, [])), apply(dvOffset, v, []), apply(dvLength, v, [])));
      if (brand(mapSize, v)) {
        const out = keep(new Map());
        for (const [k, x] of Array.from(apply(mapEntries, v, []))) out.set(clone(k), clone(x));
        return out;
      }
      if (brand(setSize, v)) {
        const out = keep(new Set());
        for (const x of Array.from(apply(setValues, v, []))) out.add(clone(x));
        return out;
      }
      const tag = apply(toTag, v, []);
      if (tag === '[object Error]') {
        const name = has(v, 'name') || typeof v.name === 'string' ? String(v.name) : 'Error';
        const Ctor = errorTypes[name] ?? Error;
        const out = keep(has(v, 'message') ? new Ctor(String(v.message)) : new Ctor());
        if (has(v, 'stack')) define(out, 'stack', String(v.stack));
        if (has(v, 'cause')) define(out, 'cause', clone(v.cause));
        return out;
      }
      if (notCloneable.has(tag)) throw uncloneable(`#<${tag.slice(8, -1)}>`);
      if (Array.isArray(v)) {
        const out = keep(new Array(v.length));
        for (const k of keys(v)) out[k] = clone(v[k]);
        return out;
      }
      const out = keep({});
      for (const k of keys(v)) out[k] = clone(v[k]);
      return out;
    };
    return clone(value);
  });

  // ---- crypto -----------------------------------------------------------------------------
  const token = freeze({});
  const integerArrays = new Set(['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
    'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array']);
  const hashes = freeze({ __proto__: null, 'sha-1': 'SHA-1', 'sha-256': 'SHA-256', 'sha-384': 'SHA-384', 'sha-512': 'SHA-512' });
  const blockBits = freeze({ __proto__: null, 'SHA-1': 512, 'SHA-256': 512, 'SHA-384': 1024, 'SHA-512': 1024 });
  const hashBytes = freeze({ __proto__: null, 'SHA-1': 20, 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 });
  const algorithms = freeze({ __proto__: null, hmac: 'HMAC', 'aes-gcm': 'AES-GCM', pbkdf2: 'PBKDF2', hkdf: 'HKDF' });
  const usagesOf = freeze({ __proto__: null, HMAC: ['sign', 'verify'], 'AES-GCM': ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'],
    PBKDF2: ['deriveKey', 'deriveBits'], HKDF: ['deriveKey', 'deriveBits'] });
  const keys_ = new WeakMap();

  class CryptoKey {
    constructor(t = undefined) { if (t !== token) throw new TypeError('Illegal constructor'); }
    get type() { return slot(this).type; }
    get extractable() { return slot(this).extractable; }
    get algorithm() { return slot(this).algorithm; }
    get usages() { return slot(this).usages; }
    get [Symbol.toStringTag]() { return 'CryptoKey'; }
  }
  const slot = (key) => {
    const s = keys_.get(key);
    if (s === undefined) throw new TypeError('the value is not a CryptoKey');
    return s;
  };
  const keySlot = (key, what) => {
    const s = keys_.get(key);
    if (s === undefined) throw new TypeError(`${what} is not a CryptoKey`);
    return s;
  };
  const newKey = (algorithm, extractable, usages, material) => {
    const key = freeze(new CryptoKey(token));
    keys_.set(key, freeze({ type: 'secret', extractable: !!extractable, algorithm: freeze(algorithm), usages: freeze(usages), material }));
    return key;
  };
  const algorithmName = (alg) => {
    if (typeof alg === 'string') return alg;
    if (alg === null || typeof alg !== 'object') throw new TypeError('the algorithm must be a string or an object with a name');
    if (alg.name === undefined) throw new TypeError('the algorithm has no name');
    return String(alg.name);
  };
  const hashOf = (alg, what = 'hash') => {
    if (alg === undefined) throw new TypeError(`the algorithm needs a ${what}`);
    const name = hashes[algorithmName(alg).toLowerCase()];
    if (name === undefined) throw fail('NotSupportedError', `Unrecognized hash algorithm: ${algorithmName(alg)}`);
    return name;
  };
  const algorithmOf = (alg, allowed, op) => {
    const raw = algorithmName(alg);
    const name = algorithms[raw.toLowerCase()];
    if (name === undefined || !allowed.includes(name)) throw fail('NotSupportedError', `Unrecognized algorithm name for ${op}: ${raw}`);
    return name;
  };
  const usageList = (usages, name) => {
    if (usages === null || typeof usages !== 'object' || typeof usages[Symbol.iterator] !== 'function') {
      throw new TypeError('the key usages must be a sequence of strings');
    }
    const out = [];
    for (const u of usages) {
      const s = String(u);
      if (!usagesOf[name].includes(s)) throw fail('SyntaxError', `Cannot create a ${name} key with the usage '${s}'`);
      if (!out.includes(s)) out.push(s);
    }
    if (out.length === 0) throw fail('SyntaxError', 'Usages cannot be empty when creating a key.');
    return out;
  };
  const aesLength = (bits) => {
    if (bits !== 128 && bits !== 192 && bits !== 256) throw fail('OperationError', 'AES key length must be 128, 192 or 256 bits');
    return bits;
  };
  /** Makes a key of `name` from raw bytes (importKey, deriveKey, generateKey). */
  const keyFrom = (name, alg, bytes, extractable, usages, error = 'DataError') => {
    switch (name) {
      case 'HMAC': {
        const hash = hashOf(alg.hash);
        let length = bytes.length * 8;
        if (alg.length !== undefined) {
          const want = Number(alg.length);
          if (!(want <= length && want > length - 8)) throw fail(error, 'The HMAC key length does not match the key data');
          length = want;
        }
        if (length === 0) throw fail(error, 'HMAC keys cannot be empty');
        return newKey({ name, length, hash: freeze({ name: hash }) }, extractable, usageList(usages, name), bytes);
      }
      case 'AES-GCM': {
        const length = bytes.length * 8;
        if (length !== 128 && length !== 192 && length !== 256) throw fail(error, 'AES key data must be 128, 192 or 256 bits long');
        return newKey({ name, length }, extractable, usageList(usages, name), bytes);
      }
      default:
        if (extractable) throw fail('SyntaxError', `${name} keys cannot be extractable`);
        return newKey({ name }, false, usageList(usages, name), bytes);
    }
  };
  const usable = (s, name, usage) => {
    if (s.algorithm.name !== name) throw fail('InvalidAccessError', `The key is a ${s.algorithm.name} key, not ${name}`);
    if (!s.usages.includes(usage)) throw fail('InvalidAccessError', `The key does not allow ${usage}`);
  };
  const bitsOf = (name, alg, s, length) => {
    if (length === null || length === undefined) throw fail('OperationError', 'deriveBits needs a length');
    length = Number(length);
    if (!Number.isInteger(length) || length < 0 || length % 8 !== 0) throw fail('OperationError', 'The length must be a multiple of 8 bits');
    if (name === 'PBKDF2') {
      const hash = hashOf(alg.hash);
      const salt = source(alg.salt, 'PBKDF2 salt');
      const iterations = Number(alg.iterations);
      if (!Number.isInteger(iterations) || iterations < 1 || iterations > 0xFFFFFFFF) throw fail('OperationError', 'PBKDF2 iterations must be a positive integer');
      if (length / 8 > n.maxDerivedBytes) throw fail('OperationError', `PBKDF2 output is limited to ${n.maxDerivedBytes * 8} bits`);
      return n.pbkdf2(hash, s.material, salt, iterations, length / 8);
    }
    const hash = hashOf(alg.hash);
    const salt = source(alg.salt, 'HKDF salt'), info = source(alg.info, 'HKDF info');
    if (length / 8 > 255 * hashBytes[hash]) throw fail('OperationError', `HKDF output is limited to ${255 * hashBytes[hash] * 8} bits with ${hash}`);
    const out = n.hkdf(hash, s.material, salt, info, length / 8);
    if (out == null) throw fail('OperationError', 'HKDF output is too long');
    return out;
  };
  const derivedLength = (type) => {
    const name = algorithmOf(type, ['HMAC', 'AES-GCM'], 'deriveKey');
    if (name === 'AES-GCM') return aesLength(Number(type.length));
    if (type.length === undefined) return blockBits[hashOf(type.hash)];
    const l = Number(type.length);
    if (!Number.isInteger(l) || l <= 0) throw fail('OperationError', 'HMAC key length must be a positive number of bits');
    return l;
  };

  class SubtleCrypto {
    constructor(t = undefined) { if (t !== token) throw new TypeError('Illegal constructor'); }
    async digest(algorithm, data) {
      const hash = hashOf(algorithm, 'name');
      return n.digest(hash, copy(source(data, 'digest data')));
    }
    async importKey(format, keyData, algorithm, extractable, keyUsages) {
      const name = algorithmOf(algorithm, ['HMAC', 'AES-GCM', 'PBKDF2', 'HKDF'], 'importKey');
      if (format !== 'raw') throw fail('NotSupportedError', `Key format '${format}' is not supported (only 'raw')`);
      const bytes = copy(source(keyData, 'key data'));
      return keyFrom(name, typeof algorithm === 'object' ? algorithm : {}, bytes, extractable, keyUsages);
    }
    async exportKey(format, key) {
      const s = keySlot(key, 'key');
      if (format !== 'raw') throw fail('NotSupportedError', `Key format '${format}' is not supported (only 'raw')`);
      if (!s.extractable) throw fail('InvalidAccessError', 'The key is not extractable');
      return copy(s.material).buffer;
    }
    async generateKey(algorithm, extractable, keyUsages) {
      const name = algorithmOf(algorithm, ['HMAC', 'AES-GCM'], 'generateKey');
      let bits;
      if (name === 'AES-GCM') bits = aesLength(Number(algorithm.length));
      else {
        bits = algorithm.length === undefined ? blockBits[hashOf(algorithm.hash)] : Number(algorithm.length);
        if (!Number.isInteger(bits) || bits <= 0) throw fail('OperationError', 'HMAC key length must be a positive number of bits');
      }
      const bytes = n.randomBytes(Math.ceil(bits / 8));
      if (bits % 8 !== 0) bytes[bytes.length - 1] &= (0xFF << (8 - bits % 8)) & 0xFF;
      const alg = name === 'HMAC' ? { name, hash: algorithm.hash, length: bits } : { name };
      return keyFrom(name, alg, bytes, extractable, keyUsages, 'OperationError');
    }
    async sign(algorithm, key, data) {
      const name = algorithmOf(algorithm, ['HMAC'], 'sign');
      const s = keySlot(key, 'key');
      usable(s, name, 'sign');
      return n.hmacSign(s.algorithm.hash.name, s.material, copy(source(data, 'data')));
    }
    async verify(algorithm, key, signature, data) {
      const name = algorithmOf(algorithm, ['HMAC'], 'verify');
      const s = keySlot(key, 'key');
      usable(s, name, 'verify');
      return n.hmacVerify(s.algorithm.hash.name, s.material, copy(source(data, 'data')), copy(source(signature, 'signature')));
    }
    async encrypt(algorithm, key, data) { return gcm(true, algorithm, key, data); }
    async decrypt(algorithm, key, data) { return gcm(false, algorithm, key, data); }
    async deriveBits(algorithm, baseKey, length = null) {
      const name = algorithmOf(algorithm, ['PBKDF2', 'HKDF'], 'deriveBits');
      const s = keySlot(baseKey, 'baseKey');
      usable(s, name, 'deriveBits');
      return bitsOf(name, algorithm, s, length);
    }
    async deriveKey(algorithm, baseKey, derivedKeyType, extractable, keyUsages) {
      const name = algorithmOf(algorithm, ['PBKDF2', 'HKDF'], 'deriveKey');
      const s = keySlot(baseKey, 'baseKey');
      usable(s, name, 'deriveKey');
      const type = algorithmOf(derivedKeyType, ['HMAC', 'AES-GCM'], 'deriveKey');
      const bits = derivedLength(derivedKeyType);
      const bytes = new Uint8Array(bitsOf(name, algorithm, s, Math.ceil(bits / 8) * 8));
      return keyFrom(type, derivedKeyType, bytes, extractable, keyUsages, 'OperationError');
    }
    get [Symbol.toStringTag]() { return 'SubtleCrypto'; }
  }
  const gcm = (encrypt, algorithm, key, data) => {
    const op = encrypt ? 'encrypt' : 'decrypt';
    const name = algorithmOf(algorithm, ['AES-GCM'], op);
    const s = keySlot(key, 'key');
    usable(s, name, op);
    const iv = copy(source(algorithm.iv, 'AES-GCM iv'));
    if (iv.length !== 12) throw fail('NotSupportedError', 'AES-GCM: only 96-bit (12-byte) IVs are supported');
    const aad = algorithm.additionalData === undefined ? new Uint8Array(0) : copy(source(algorithm.additionalData, 'AES-GCM additionalData'));
    const tagLength = algorithm.tagLength === undefined ? 128 : Number(algorithm.tagLength);
    if (![32, 64, 96, 104, 112, 120, 128].includes(tagLength)) throw fail('OperationError', `AES-GCM: invalid tagLength ${algorithm.tagLength}`);
    if (tagLength < 96) throw fail('NotSupportedError', `AES-GCM: tagLength ${tagLength} is not supported (96 to 128 are)`);
    const bytes = copy(source(data, 'data'));
    if (!encrypt && bytes.length < tagLength / 8) throw fail('OperationError', 'AES-GCM: the data is shorter than the tag');
    const out = n.aesGcm(encrypt, s.material, iv, aad, bytes, tagLength / 8);
    if (out == null) throw fail('OperationError', encrypt ? 'AES-GCM encryption failed' : 'AES-GCM: the data or its tag is not authentic');
    return out;
  };

  const hexByte = (b) => (b < 16 ? '0' : '') + b.toString(16);
  class Crypto {
    #subtle;
    constructor(t = undefined, subtle = undefined) { if (t !== token) throw new TypeError('Illegal constructor'); this.#subtle = subtle; }
    get subtle() { return this.#subtle; }
    getRandomValues(array) {
      need('crypto.getRandomValues', arguments, 1);
      const kind = typedName(array);
      if (!integerArrays.has(kind)) throw fail('TypeMismatchError', 'crypto.getRandomValues: the argument must be an integer typed array');
      const length = apply(taLength, array, []);
      if (length > 65536) throw fail('QuotaExceededError', `crypto.getRandomValues: the array's byte length (${length}) exceeds 65536`);
      new Uint8Array(apply(taBuffer, array, []), apply(taOffset, array, []), length).set(n.randomBytes(length));
      return array;
    }
    randomUUID() {
      const b = n.randomBytes(16);
      b[6] = (b[6] & 0x0F) | 0x40;
      b[8] = (b[8] & 0x3F) | 0x80;
      const h = Array.from(b, hexByte).join('');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    get [Symbol.toStringTag]() { return 'Crypto'; }
  }
  const subtle = freeze(new SubtleCrypto(token));
  const crypto = new Crypto(token, subtle);
  expose('CryptoKey', CryptoKey);
  expose('SubtleCrypto', SubtleCrypto);
  expose('Crypto', Crypto);
  expose('crypto', crypto);

  for (const o of frozen) freeze(o);
})