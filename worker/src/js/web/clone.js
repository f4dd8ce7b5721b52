// Web APIs of the `data` preset: structuredClone. This script is read into a context the
// first time code reads one of these globals; the end of `web.js` calls it with the natives `n`
// and the helpers `h` that `web.js` captured before any user code ran.
(function (n, h) {
  'use strict';
  const { Object, Array, Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array,
    Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView, ArrayBuffer,
    Map, Set, WeakMap, Date, RegExp, Error, EvalError, RangeError, ReferenceError, SyntaxError,
    TypeError, URIError, Number, String, Boolean, BigInt, Float16Array, freeze,
    getOwnPropertyDescriptor, keys, apply, getter, define, taBuffer, taOffset, taLength, dvBuffer,
    dvOffset, dvLength, abLength, brand, typedName, isArrayBuffer, isDataView, source, fail, need } = h;
  const out = { __proto__: null };
  const expose = (name, value) => { out[name] = value; };

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
    Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, Float16Array });
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

  return out;
})
