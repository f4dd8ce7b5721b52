(function (hostFetch, encodeUtf8, decodeUtf8) {
  'use strict';
  // Everything this file uses is captured here, before user code runs, so replacing a global
  // later cannot change how fetch, Headers, Request and Response behave.
  const freeze = Object.freeze, keys = Object.keys, defineProperty = Object.defineProperty;
  const Str = String, U8 = Uint8Array, isView = ArrayBuffer.isView, P = Promise;
  const parse = JSON.parse, quote = JSON.stringify, TE = TypeError, RE = RangeError;
  const AB = ArrayBuffer, iterator = Symbol.iterator, toStringTag = Symbol.toStringTag;
  const Num = Number, floor = Math.floor;
  const wellFormed = Str.prototype.toWellFormed;
  const text = (v) => {
    const s = Str(v);
    return typeof wellFormed === 'function' ? wellFormed.call(s) : s;
  };
  const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
  const BAD_VALUE = /[\0\r\n]/;
  const EDGE_SPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;
  const headerName = (n) => {
    const s = text(n);
    if (!TOKEN.test(s)) throw new TE(`invalid header name: ${quote(s)}`);
    return s.toLowerCase();
  };
  const headerValue = (v) => {
    const s = text(v).replace(EDGE_SPACE, '');
    if (BAD_VALUE.test(s)) throw new TE('invalid header value: it contains NUL, CR or LF');
    return s;
  };
  const copy = (view) => {
    const out = new U8(view.length);
    out.set(view);
    return out;
  };

  let listOf, lock;
  class Headers {
    #list = [];
    #immutable = false;
    static {
      listOf = (h) => h.#list;
      lock = (h) => { h.#immutable = true; return h; };
    }
    constructor(init) {
      if (init === undefined) return;
      if (init instanceof Headers) {
        for (const e of init.#list) this.#list.push([e[0], e[1]]);
        return;
      }
      if ((typeof init !== 'object' && typeof init !== 'function') || init === null) {
        throw new TE('Headers: init must be an object, an array of [name, value] pairs or Headers');
      }
      if (typeof init[iterator] === 'function') {
        for (const pair of init) {
          if ((typeof pair !== 'object' && typeof pair !== 'function') || pair === null ||
              typeof pair[iterator] !== 'function') {
            throw new TE('Headers: each entry must be a [name, value] pair');
          }
          const p = [...pair];
          if (p.length !== 2) throw new TE('Headers: each pair must have exactly two items');
          this.append(p[0], p[1]);
        }
      } else {
        for (const k of keys(init)) this.append(k, init[k]);
      }
    }
    #check() {
      if (this.#immutable) throw new TE('Headers: these headers are immutable');
    }
    append(name, value) {
      const n = headerName(name), v = headerValue(value);
      this.#check();
      this.#list.push([n, v]);
    }
    set(name, value) {
      const n = headerName(name), v = headerValue(value);
      this.#check();
      const out = [];
      let done = false;
      for (const e of this.#list) {
        if (e[0] !== n) out.push(e);
        else if (!done) { out.push([n, v]); done = true; }
      }
      if (!done) out.push([n, v]);
      this.#list = out;
    }
    get(name) {
      const n = headerName(name), found = [];
      for (const e of this.#list) if (e[0] === n) found.push(e[1]);
      return found.length ? found.join(', ') : null;
    }
    getSetCookie() {
      const found = [];
      for (const e of this.#list) if (e[0] === 'set-cookie') found.push(e[1]);
      return found;
    }
    has(name) {
      const n = headerName(name);
      for (const e of this.#list) if (e[0] === n) return true;
      return false;
    }
    delete(name) {
      const n = headerName(name);
      this.#check();
      this.#list = this.#list.filter((e) => e[0] !== n);
    }
    forEach(callback, thisArg) {
      if (typeof callback !== 'function') throw new TE('Headers.forEach: callback is not a function');
      for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
    }
    *entries() {
      const names = [];
      for (const e of this.#list) if (!names.includes(e[0])) names.push(e[0]);
      names.sort();
      for (const n of names) {
        if (n === 'set-cookie') {
          for (const v of this.getSetCookie()) yield [n, v];
        } else {
          yield [n, this.get(n)];
        }
      }
    }
    *keys() { for (const e of this.entries()) yield e[0]; }
    *values() { for (const e of this.entries()) yield e[1]; }
    [iterator]() { return this.entries(); }
    get [toStringTag]() { return 'Headers'; }
  }

  // A body: the bytes of a string, an ArrayBuffer or a view, copied; `type` is the
  // Content-Type it implies.
  const extract = (body) => {
    if (body === undefined || body === null) return { bytes: null, type: null };
    if (typeof body === 'string') {
      return { bytes: new U8(encodeUtf8(text(body))), type: 'text/plain;charset=UTF-8' };
    }
    if (body instanceof AB) return { bytes: copy(new U8(body)), type: null };
    if (isView(body)) {
      return { bytes: copy(new U8(body.buffer, body.byteOffset, body.byteLength)), type: null };
    }
    throw new TE('body must be a string, an ArrayBuffer, a typed array or a DataView ' +
      '(use JSON.stringify for objects)');
  };

  let setBytes, cloneBytes, takeBytes;
  class Body {
    #bytes = null;
    #used = false;
    static {
      setBytes = (b, bytes) => { b.#bytes = bytes; };
      cloneBytes = (b) => {
        if (b.#used) throw new TE('cannot clone: body has already been read');
        return b.#bytes === null ? null : copy(b.#bytes);
      };
      takeBytes = (b) => {
        if (b.#used) throw new TE('body has already been read');
        if (b.#bytes !== null) b.#used = true;
        const bytes = b.#bytes;
        b.#bytes = null;
        return bytes;
      };
    }
    #take() {
      if (this.#used) throw new TE('body has already been read');
      this.#used = true;
      const b = this.#bytes;
      this.#bytes = null;
      return b === null ? new U8(0) : b;
    }
    get bodyUsed() { return this.#used; }
    get body() { return null; }
    arrayBuffer() { return new P((ok) => ok(this.#take().buffer)); }
    bytes() { return new P((ok) => ok(this.#take())); }
    text() { return new P((ok) => ok(decodeUtf8(this.#take()))); }
    json() { return new P((ok) => ok(parse(decodeUtf8(this.#take())))); }
  }

  const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH'];
  const FORBIDDEN_METHODS = ['CONNECT', 'TRACE', 'TRACK'];
  const REDIRECTS = ['follow', 'error', 'manual'];
  const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
  const options = (init, what) => {
    if (init === undefined || init === null) return {};
    if (typeof init !== 'object' && typeof init !== 'function') {
      throw new TE(`${what}: init must be an object`);
    }
    return init;
  };

  class Request extends Body {
    #method = 'GET';
    #url = '';
    #headers;
    #redirect = 'follow';
    constructor(input, init) {
      super();
      init = options(init, 'Request');
      const src = input instanceof Request ? input : null;
      const url = src ? src.#url : text(input);
      if (!ABSOLUTE.test(url)) throw new TE(`Invalid URL: ${quote(url)} (it must be absolute)`);
      let method = src ? src.#method : 'GET';
      if (init.method !== undefined) {
        method = text(init.method);
        if (!TOKEN.test(method)) throw new TE(`invalid method: ${quote(method)}`);
        const upper = method.toUpperCase();
        if (FORBIDDEN_METHODS.includes(upper)) throw new TE(`method ${upper} is not allowed`);
        if (METHODS.includes(upper)) method = upper;
      }
      const headers = new Headers(init.headers !== undefined ? init.headers
        : src ? src.#headers : undefined);
      let bytes = null;
      if (init.body !== undefined && init.body !== null) {
        const b = extract(init.body);
        bytes = b.bytes;
        if (b.type !== null && !headers.has('content-type')) headers.set('content-type', b.type);
      } else if (src && init.body === undefined) {
        bytes = takeBytes(src);
      }
      if (bytes !== null && (method === 'GET' || method === 'HEAD')) {
        throw new TE(`a ${method} request cannot have a body`);
      }
      let redirect = src ? src.#redirect : 'follow';
      if (init.redirect !== undefined) {
        redirect = text(init.redirect);
        if (!REDIRECTS.includes(redirect)) {
          throw new TE(`redirect must be "follow", "error" or "manual", got ${quote(redirect)}`);
        }
      }
      this.#url = url;
      this.#method = method;
      this.#headers = headers;
      this.#redirect = redirect;
      setBytes(this, bytes);
    }
    get method() { return this.#method; }
    get url() { return this.#url; }
    get headers() { return this.#headers; }
    get redirect() { return this.#redirect; }
    clone() {
      const r = new Request(this, { body: null });
      setBytes(r, cloneBytes(this));
      return r;
    }
    get [toStringTag]() { return 'Request'; }
  }

  let fromHost;
  class Response extends Body {
    #status = 200;
    #statusText = '';
    #headers;
    #url = '';
    #redirected = false;
    #type = 'default';
    static {
      fromHost = (r) => {
        const res = new Response();
        res.#status = r[0];
        res.#statusText = r[1];
        res.#url = r[2];
        res.#redirected = r[3];
        res.#type = 'basic';
        const list = listOf(res.#headers), flat = r[4];
        for (let i = 0; i + 1 < flat.length; i += 2) list.push([flat[i], flat[i + 1]]);
        lock(res.#headers);
        setBytes(res, new U8(r[5]));
        return res;
      };
    }
    constructor(body, init) {
      super();
      init = options(init, 'Response');
      if (init.status !== undefined) {
        const s = Num(init.status);
        if (!(s >= 200 && s <= 599) || s !== floor(s)) {
          throw new RE(`Response: status must be an integer from 200 to 599, got ${Str(init.status)}`);
        }
        this.#status = s;
      }
      if (init.statusText !== undefined) this.#statusText = text(init.statusText);
      this.#headers = new Headers(init.headers);
      const b = extract(body);
      if (b.bytes !== null && [101, 204, 205, 304].includes(this.#status)) {
        throw new TE(`a response with status ${this.#status} cannot have a body`);
      }
      if (b.type !== null && !this.#headers.has('content-type')) {
        this.#headers.set('content-type', b.type);
      }
      setBytes(this, b.bytes);
    }
    get status() { return this.#status; }
    get ok() { return this.#status >= 200 && this.#status <= 299; }
    get statusText() { return this.#statusText; }
    get headers() { return this.#headers; }
    get url() { return this.#url; }
    get redirected() { return this.#redirected; }
    get type() { return this.#type; }
    clone() {
      const r = new Response(null, { status: 200 });
      r.#status = this.#status;
      r.#statusText = this.#statusText;
      r.#url = this.#url;
      r.#redirected = this.#redirected;
      r.#type = this.#type;
      r.#headers = new Headers(this.#headers);
      if (this.#type !== 'default') lock(r.#headers);
      setBytes(r, cloneBytes(this));
      return r;
    }
    static json(data, init) {
      const body = quote(data);
      if (body === undefined) throw new TE('Response.json: the data cannot be serialised');
      init = options(init, 'Response.json');
      const headers = new Headers(init.headers);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
      return new Response(body, { status: init.status, statusText: init.statusText, headers });
    }
    static error() {
      const r = new Response(null);
      r.#status = 0;
      r.#type = 'error';
      lock(r.#headers);
      return r;
    }
    static redirect(url, status) {
      const s = status === undefined ? 302 : Num(status);
      if (![301, 302, 303, 307, 308].includes(s)) throw new RE(`invalid redirect status ${Str(status)}`);
      const r = new Response(null);
      r.#status = s;
      r.#headers.set('location', text(url));
      lock(r.#headers);
      return r;
    }
    get [toStringTag]() { return 'Response'; }
  }

  const fetch = function fetch(input, init) {
    return new P((ok) => {
      const req = new Request(input, init);
      const bytes = takeBytes(req);
      const flat = [];
      for (const e of listOf(req.headers)) flat.push(e[0], e[1]);
      ok(fromHost(bytes === null ? hostFetch(req.method, req.url, flat, req.redirect)
        : hostFetch(req.method, req.url, flat, req.redirect, bytes)));
    });
  };

  for (const c of [Headers, Body, Request, Response]) {
    freeze(c.prototype);
    freeze(c);
  }
  for (const m of ['entries', 'keys', 'values']) freeze(Headers.prototype[m].prototype);
  freeze(fetch);
  const g = globalThis;
  for (const [name, value] of [['fetch', fetch], ['Headers', Headers], ['Request', Request],
    ['Response', Response]]) {
    defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });
  }
})
