// Web APIs of the `data` preset: Web Crypto (crypto, Crypto, SubtleCrypto, CryptoKey).
// This script is read into a context the first time code reads one of these globals; the end of `web.js` calls it with the natives `n`
// and the helpers `h` that `web.js` captured before any user code ran.
(function (n, h) {
  'use strict';
  const { Array, Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
    Uint32Array, BigInt64Array, BigUint64Array, Set, WeakMap, SyntaxError, TypeError, Symbol, Math,
    Number, String, freeze, keys, apply, taBuffer, taOffset, taLength, typedName, source, copy,
    fail, need } = h;
  const out = { __proto__: null };
  const expose = (name, value) => { out[name] = value; };

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
      if (bits > n.maxDerivedBytes * 8) throw fail('OperationError', `generated keys are limited to ${n.maxDerivedBytes * 8} bits`);
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

  return out;
})
