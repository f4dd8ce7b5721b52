// Web APIs of the `data` preset: TextEncoder, TextDecoder, atob and btoa. This script is read into a context the
// first time code reads one of these globals; the end of `web.js` calls it with the natives `n`
// and the helpers `h` that `web.js` captured before any user code ran.
(function (n, h) {
  'use strict';
  const { Uint8Array, RangeError, TypeError, String, apply, taLength, typedName, source, copy,
    wellFormed, fail, need } = h;
  const out = { __proto__: null };
  const expose = (name, value) => { out[name] = value; };

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
  /** How many bytes at the end of `b` start a UTF-8 sequence that is not complete yet. */
  const incompleteTail = (b) => {
    for (let i = 1; i <= 3 && i <= b.length; i++) {
      const c = b[b.length - i];
      if ((c & 0xC0) === 0x80) continue;
      const need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      return need > i ? i : 0;
    }
    return 0;
  };
  const BOM = [0xEF, 0xBB, 0xBF];
  class TextDecoder {
    #fatal; #ignoreBOM; #pending = null; #started = false;
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
      const stream = !!(options && options.stream);
      let bytes = input === undefined ? new Uint8Array(0) : source(input, 'TextDecoder.decode: the input');
      if (this.#pending !== null) {
        const all = new Uint8Array(this.#pending.length + bytes.length);
        all.set(this.#pending);
        all.set(bytes, this.#pending.length);
        bytes = all;
        this.#pending = null;
      }
      if (!this.#started && !this.#ignoreBOM) {
        const prefix = bytes.length < 3 && bytes.every((x, i) => x === BOM[i]);
        if (stream && prefix) {
          this.#pending = copy(bytes);
          return '';
        }
        if (bytes.length >= 3 && bytes[0] === 0xEF && bytes[1] === 0xBB && bytes[2] === 0xBF) bytes = bytes.subarray(3);
      }
      this.#started = stream;
      if (stream) {
        const tail = incompleteTail(bytes);
        if (tail > 0) {
          this.#pending = copy(bytes.subarray(bytes.length - tail));
          bytes = bytes.subarray(0, bytes.length - tail);
        }
      }
      const s = n.utf8Decode(bytes, this.#fatal);
      if (s == null) {
        this.#pending = null;
        this.#started = false;
        throw new TypeError('TextDecoder.decode: the encoded data is not valid utf-8');
      }
      return s;
    }
  }
  expose('TextDecoder', TextDecoder);

  // ---- atob / btoa ------------------------------------------------------------------------
  expose('btoa', function btoa(data) {
    need('btoa', arguments, 1);
    const bytes = n.latin1Encode(wellFormed(data), true);
    if (bytes == null) throw fail('InvalidCharacterError', 'btoa: the string contains characters outside of the Latin1 range');
    return n.base64Encode(bytes, false);
  });
  expose('atob', function atob(data) {
    need('atob', arguments, 1);
    const s = n.atob(wellFormed(data));
    if (s == null) throw fail('InvalidCharacterError', 'atob: the string to be decoded is not correctly encoded');
    return s;
  });

  return out;
})
