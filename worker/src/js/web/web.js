(function (n) {
  'use strict';
  const g = globalThis;
  // Every global this script uses is captured now, so code that reassigns a global later
  // (`Uint8Array = null`) cannot change how these APIs behave.
  const { Object, Array, Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
    Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView, ArrayBuffer,
    SharedArrayBuffer, Map, Set, WeakMap, Date, RegExp, Error, EvalError, RangeError, ReferenceError,
    SyntaxError, TypeError, URIError, Symbol, Math, Number, String, Boolean, BigInt, Reflect } = g;
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


  const need = (name, args, count) => {
    if (args.length < count) throw new TypeError(`${name}: ${count} argument${count > 1 ? 's' : ''} required, but only ${args.length} present`);
  };

  // ---- the rest, read on first use --------------------------------------------------------
  // Each group below is a script of its own (compiled to bytecode once per process), read into
  // the context only when code first reads one of its globals: until then each of them is an
  // accessor whose getter loads the group. Loading replaces every accessor still in
  // place with the real value (writable, not enumerable, configurable, as Web IDL defines them)
  // and freezes what it exposes; a global assigned or deleted before its group loads stays so.
  // The groups get the helpers captured above, before any user code ran.
  const h = freeze({
    __proto__: null, Object, Array, Uint8Array, Int8Array, Uint8ClampedArray, Int16Array,
    Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView, ArrayBuffer,
    SharedArrayBuffer, Map, Set, WeakMap, Date, RegExp, Error, EvalError, RangeError,
    ReferenceError, SyntaxError, TypeError, URIError, Symbol, Math, Number, String, Boolean,
    BigInt, Reflect, Float16Array: g.Float16Array, defineProperty, freeze, getPrototypeOf,
    setPrototypeOf, getOwnPropertyDescriptor, keys, apply, getter, define, TypedArray, taTag,
    taBuffer, taOffset, taLength, dvBuffer, dvOffset, dvLength, abLength, sabLength, brand,
    typedName, isArrayBuffer, isDataView, isView, view, source, copy, wellFormed, DOMException,
    fail, need });
  let natives = null;
  const lazy = (group, names) => {
    let values = null;
    const getters = new Map();
    const load = () => {
      if (values === null) {
        const loaded = n.load(group)(natives ??= n.natives(), h);
        for (const name of names) {
          const value = loaded[name];
          freeze(value);
          if (typeof value === 'function' && value.prototype) freeze(value.prototype);
          const d = getOwnPropertyDescriptor(g, name);
          // Reflect's form fails quietly where the global object was frozen meanwhile; the
          // accessor then stays and keeps answering the loaded value.
          if (d !== undefined && d.get === getters.get(name)) apply(Reflect.defineProperty, Reflect, [g, name, { value, writable: true, enumerable: false, configurable: true }]);
        }
        values = loaded;
      }
      return values;
    };
    for (const name of names) {
      const get = () => load()[name];
      getters.set(name, get);
      defineProperty(g, name, { get, set: (v) => { apply(Reflect.defineProperty, Reflect, [g, name, { value: v, writable: true, enumerable: false, configurable: true }]); }, enumerable: false, configurable: true });
    }
  };
  lazy('encoding', ['TextEncoder', 'TextDecoder', 'btoa', 'atob']);
  lazy('buffer', ['Buffer']);
  lazy('url', ['URL', 'URLSearchParams']);
  lazy('clone', ['structuredClone']);
  lazy('crypto', ['CryptoKey', 'SubtleCrypto', 'Crypto', 'crypto']);

  for (const o of frozen) freeze(o);
})
