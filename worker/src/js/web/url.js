// Web APIs of the `data` preset: URL and URLSearchParams. This script is read into a context the
// first time code reads one of these globals; the end of `web.js` calls it with the natives `n`
// and the helpers `h` that `web.js` captured before any user code ran.
(function (n, h) {
  'use strict';
  const { Array, TypeError, Symbol, Reflect, defineProperty, getOwnPropertyDescriptor, keys, apply,
    wellFormed, need } = h;
  const out = { __proto__: null };
  const expose = (name, value) => { out[name] = value; };

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

  return out;
})
