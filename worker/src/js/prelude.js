(() => {
  'use strict';
  const freeze = Object.freeze, getProto = Object.getPrototypeOf, g = globalThis;
  const names = ['Object', 'Function', 'Array', 'String', 'Number', 'Boolean', 'Symbol', 'BigInt',
    'Error', 'EvalError', 'RangeError', 'ReferenceError', 'SyntaxError', 'TypeError', 'URIError',
    'AggregateError', 'InternalError', 'SuppressedError', 'Math', 'JSON', 'Reflect', 'RegExp',
    'Promise', 'Date', 'Map', 'Set', 'WeakMap', 'WeakSet', 'Proxy', 'WeakRef',
    'FinalizationRegistry', 'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Atomics',
    'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
    'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'Float16Array', 'Float32Array',
    'Float64Array', 'Iterator', 'DisposableStack', 'AsyncDisposableStack'];
  const all = [];
  const add = (o) => {
    if ((typeof o !== 'object' && typeof o !== 'function') || o === null) return;
    if (typeof o === 'function') {
      if (o.prototype) all.push(o.prototype);
    } else {
      all.push(o);
    }
  };
  for (const n of names) add(g[n]);
  for (const f of [function* () {}, async function* () {}, async function () {}]) {
    const p = getProto(f);
    add(p);
    if (p.prototype) add(p.prototype);
  }
  const arrayIterator = getProto([][Symbol.iterator]());
  add(arrayIterator);
  add(getProto(arrayIterator));
  add(getProto(''[Symbol.iterator]()));
  add(getProto(getProto((async function* () {}).prototype)));
  if (typeof Uint8Array === 'function') add(getProto(Uint8Array).prototype);
  if (typeof RegExp === 'function') add(getProto(/a/[Symbol.matchAll]('')));
  if (typeof Map !== 'function') {
    for (const o of all) freeze(o);
    return [null, null, JSON.stringify];
  }
  add(getProto(new Map().entries()));
  add(getProto(new Set().values()));
  for (const o of all) freeze(o);
  const from = Array.from, entries = Map.prototype.entries, values = Set.prototype.values;
  return [(m) => from(entries.call(m)), (s) => from(values.call(s)), JSON.stringify];
})()
