//! The `agent` preset's `fetch` against a real HTTP/1.1 server on 127.0.0.1 that the test
//! starts in a thread: what reaches the server, what reaches the code, what the egress policy
//! refuses (before any connection), the limits, the secret headers and the audit.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Service;

const SECRET: &str = "sekrit-8472-do-not-leak";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A small HTTP/1.1 server: one thread per connection, `Connection: close` on every answer.
struct Upstream {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<Mutex<u32>>,
    aborted: Arc<Mutex<bool>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test server");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let aborted = Arc::new(Mutex::new(false));
        let (s, c, a) = (seen.clone(), connections.clone(), aborted.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                *c.lock().unwrap() += 1;
                let (s, a) = (s.clone(), a.clone());
                std::thread::spawn(move || serve(stream, port, &s, &a));
            }
        });
        Upstream {
            port,
            seen,
            connections,
            aborted,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> u32 {
        *self.connections.lock().unwrap()
    }
}

fn serve(stream: TcpStream, port: u16, seen: &Mutex<Vec<Seen>>, aborted: &Mutex<bool>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let request = Seen {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    };
    seen.lock().unwrap().push(request);
    let mut out = stream;
    let reply = |out: &mut TcpStream, status: &str, extra: &[(&str, String)], body: &[u8]| {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = out.write_all(head.as_bytes());
        let _ = out.write_all(body);
    };
    let redirect = |out: &mut TcpStream, status: &str, to: String| {
        reply(out, status, &[("Location", to)], b"");
    };
    match path.as_str() {
        "/json" => reply(
            &mut out,
            "200 OK",
            &[
                ("Content-Type", "application/json".into()),
                ("X-Upstream", "yes".into()),
            ],
            br#"{"hello":"world","n":[1,2,3]}"#,
        ),
        "/echo" => {
            let echo = json!({
                "method": method,
                "body": String::from_utf8_lossy(&body),
                "contentType": headers.get("content-type"),
                "custom": headers.get("x-custom"),
                "hasSecret": headers.get("x-api-key").map(|v| v == SECRET),
                "hasAuthorization": headers.contains_key("authorization"),
            });
            reply(
                &mut out,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                echo.to_string().as_bytes(),
            )
        }
        "/echo-secret-header" => reply(
            &mut out,
            "200 OK",
            &[(
                "X-Echo",
                headers.get("x-api-key").cloned().unwrap_or_default(),
            )],
            b"ok",
        ),
        "/binary" => {
            let bytes: Vec<u8> = (0..=255u8).collect();
            reply(
                &mut out,
                "200 OK",
                &[("Content-Type", "application/octet-stream".into())],
                &bytes,
            )
        }
        "/latin1" => reply(&mut out, "200 OK", &[], b"caf\xe9 \xe2\x82\xac"),
        "/headers" => reply(
            &mut out,
            "200 OK",
            &[
                ("X-Multi", "a".into()),
                ("X-Multi", "b".into()),
                ("Set-Cookie", "k=v".into()),
            ],
            b"",
        ),
        "/redirect-302" => redirect(&mut out, "302 Found", "/echo".into()),
        "/redirect-303" => redirect(&mut out, "303 See Other", "/echo".into()),
        "/redirect-307" => redirect(&mut out, "307 Temporary Redirect", "/echo".into()),
        "/redirect-loop" => redirect(&mut out, "302 Found", "/redirect-loop".into()),
        "/redirect-denied" => redirect(
            &mut out,
            "302 Found",
            format!("http://10.0.0.1:{port}/echo"),
        ),
        "/redirect-metadata" => redirect(
            &mut out,
            "302 Found",
            "http://169.254.169.254/latest/meta-data/".into(),
        ),
        "/redirect-other-host" => redirect(
            &mut out,
            "307 Temporary Redirect",
            format!("http://localhost:{port}/echo"),
        ),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(3));
            reply(&mut out, "200 OK", &[], b"late");
        }
        "/huge" => {
            // Chunked and endless enough: only a client that stops reading ends it early.
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            );
            let chunk = vec![b'x'; 16 << 10];
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            for _ in 0..4096 {
                if out.write_all(&framed).is_err() {
                    *aborted.lock().unwrap() = true;
                    return;
                }
            }
            let _ = out.write_all(b"0\r\n\r\n");
        }
        "/huge-declared" => {
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n",
            );
        }
        _ => reply(&mut out, "404 Not Found", &[], b"no such path"),
    }
}

/// A service allowed to reach the test server (and nothing else on loopback).
fn service_for(upstream: &Upstream, extra: &str) -> Service {
    let config = format!(
        r#"
[fetch]
allow_hosts = ["127.0.0.1", "localhost"]
allow_schemes = ["http"]
allow_ports = [{port}]
allow_addresses = ["127.0.0.1/32"]
timeout_ms = 1000
max_requests = 6
max_request_body_bytes = 65536
max_response_body_bytes = 65536
{extra}

[[fetch.secret_headers]]
host = "127.0.0.1"
name = "X-Api-Key"
value_env = "TEST_FETCH_SECRET"
"#,
        port = upstream.port
    );
    Service::with(&config, &[("TEST_FETCH_SECRET", SECRET)])
}

fn agent(s: &Service, code: &str, env: Value, status: u16) -> Value {
    s.execute(json!({"preset": "agent", "code": code, "env": env}), status)
}

#[test]
fn get_and_post_json_with_headers_and_the_audit() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let code = r#"
        const r = await fetch(env.base + '/json');
        const first = await r.json();
        let again;
        try { await r.text(); } catch (e) { again = `${e.name}: ${e.message}`; }
        const p = await fetch(new Request(env.base + '/echo', {
          method: 'post',
          headers: [['Content-Type', 'application/json'], ['X-Custom', 'one']],
          body: JSON.stringify({ q: 'hi' }),
        }));
        return {
          status: r.status, ok: r.ok, statusText: r.statusText, url: r.url,
          redirected: r.redirected, upstream: r.headers.get('X-UPSTREAM'),
          type: r.headers.get('content-type'), first, used: r.bodyUsed, again,
          echo: await p.json(), postStatus: p.status,
        };
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    let r = &res["result"];
    assert_eq!(r["status"], 200);
    assert_eq!(r["ok"], true);
    assert_eq!(r["statusText"], "OK");
    assert_eq!(r["url"], up.url("/json"));
    assert_eq!(r["redirected"], false);
    assert_eq!(r["upstream"], "yes");
    assert_eq!(r["type"], "application/json");
    assert_eq!(r["first"], json!({"hello": "world", "n": [1, 2, 3]}));
    assert_eq!(r["used"], true);
    assert_eq!(r["again"], "TypeError: body has already been read");
    assert_eq!(r["echo"]["method"], "POST");
    assert_eq!(r["echo"]["body"], r#"{"q":"hi"}"#);
    assert_eq!(r["echo"]["contentType"], "application/json");
    assert_eq!(r["echo"]["custom"], "one");
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/json")
    );
    assert_eq!(seen[1].body, br#"{"q":"hi"}"#);
    let audit = res["fetches"].as_array().expect("an audit");
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["method"], "GET");
    assert_eq!(audit[0]["url"], up.url("/json"));
    assert_eq!(audit[0]["status"], 200);
    assert_eq!(audit[0]["bytes"], 29);
    assert!(audit[0]["ms"].is_u64());
    assert_eq!(audit[1]["method"], "POST");

    // Several response headers of one name, and Set-Cookie kept apart.
    let code = r#"
        const r = await fetch(env.base + '/headers');
        return { multi: r.headers.get('x-multi'), cookies: r.headers.getSetCookie(),
                 names: [...r.headers.keys()].filter((k) => k.startsWith('x-') || k === 'set-cookie') };
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    assert_eq!(res["result"]["multi"], "a, b");
    assert_eq!(res["result"]["cookies"], json!(["k=v"]));
    assert_eq!(res["result"]["names"], json!(["set-cookie", "x-multi"]));
}

#[test]
fn binary_bodies_cross_unchanged_and_objects_are_refused() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let code = r#"
        const r = await fetch(env.base + '/binary');
        const bytes = Array.from(new Uint8Array(await r.arrayBuffer()));
        await fetch(env.base + '/echo', { method: 'PUT', body: new Uint8Array([0, 255, 1, 128]) });
        await fetch(env.base + '/echo', { method: 'POST', body: new DataView(new Uint8Array([7, 8, 9]).buffer, 1, 2) });
        await fetch(env.base + '/echo', { method: 'POST', body: new Uint16Array([0x0201]).buffer });
        const text = await (await fetch(env.base + '/latin1')).text();
        let objectBody;
        try { await fetch(env.base + '/echo', { method: 'POST', body: { a: 1 } }); }
        catch (e) { objectBody = `${e.name}: ${e.message}`; }
        return { bytes, text, objectBody };
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    let expected: Vec<u32> = (0..=255).collect();
    assert_eq!(res["result"]["bytes"], json!(expected));
    assert_eq!(res["result"]["text"], "caf\u{fffd} \u{20ac}");
    assert!(
        res["result"]["objectBody"]
            .as_str()
            .unwrap()
            .starts_with("TypeError: body must be a string, an ArrayBuffer"),
        "{res}"
    );
    let seen = up.seen();
    assert_eq!(seen[1].method, "PUT");
    assert_eq!(seen[1].body, [0, 255, 1, 128]);
    assert_eq!(seen[2].body, [8, 9]);
    assert_eq!(seen[3].body, [1, 2]);
    assert_eq!(seen.len(), 5, "the object body never left the sandbox");
    assert_eq!(res["fetches"].as_array().unwrap().len(), 5);
}

#[test]
fn redirects_are_followed_by_hand_and_every_hop_is_checked() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let code = r#"
        const out = {};
        const r302 = await fetch(env.base + '/redirect-302', { method: 'POST', body: 'x' });
        out.r302 = [r302.redirected, r302.url, (await r302.json()).method];
        const r303 = await fetch(env.base + '/redirect-303', { method: 'PUT', body: 'x' });
        out.r303 = (await r303.json()).method;
        const r307 = await fetch(env.base + '/redirect-307', { method: 'POST', body: 'kept' });
        const e307 = await r307.json();
        out.r307 = [e307.method, e307.body];
        const manual = await fetch(env.base + '/redirect-302', { redirect: 'manual' });
        out.manual = [manual.status, manual.headers.get('location'), manual.redirected];
        return out;
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    let r = &res["result"];
    assert_eq!(r["r302"], json!([true, up.url("/echo"), "GET"]));
    assert_eq!(r["r303"], "GET");
    assert_eq!(r["r307"], json!(["POST", "kept"]));
    assert_eq!(r["manual"], json!([302, "/echo", false]));
    assert_eq!(res["fetches"][0]["redirects"], 1);
    assert!(res["fetches"][3].get("redirects").is_none());
    let code = r#"
        const out = {};
        for (const [name, path, opts] of [['error', '/redirect-302', { redirect: 'error' }],
            ['loop', '/redirect-loop', {}], ['denied', '/redirect-denied', {}]]) {
          try { await fetch(env.base + path, opts); out[name] = 'no error'; }
          catch (e) { out[name] = `${e.name}: ${e.message}`; }
        }
        return out;
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    let r = &res["result"];
    assert_eq!(
        r["error"],
        "TypeError: fetch to 127.0.0.1 was redirected and redirect is \"error\""
    );
    assert_eq!(r["loop"], "TypeError: too many redirects (more than 5)");
    assert_eq!(
        r["denied"],
        "TypeError: fetch to 10.0.0.1 denied by egress policy: the host is not on the allowlist"
    );
    let audit = res["fetches"].as_array().unwrap();
    assert_eq!(
        audit[2]["denied"],
        "10.0.0.1: the host is not on the allowlist"
    );
    assert_eq!(audit[2]["url"], up.url("/redirect-denied"));

    // With 10.0.0.1 and 169.254.169.254 on the host list, the address check still refuses
    // them after the redirect, before any connection.
    let config = format!(
        "[fetch]\nallow_hosts = [\"127.0.0.1\", \"10.0.0.1\", \"169.254.169.254\"]\n\
         allow_schemes = [\"http\"]\nallow_ports = [80, {}]\nallow_addresses = [\"127.0.0.1/32\"]\n",
        up.port
    );
    let s = Service::with_config(&config);
    let code = r#"
        const out = [];
        for (const p of ['/redirect-denied', '/redirect-metadata']) {
          try { await fetch(env.base + p); out.push('fetched'); } catch (e) { out.push(e.message); }
        }
        return out;
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    assert_eq!(
        res["result"],
        json!([
            "fetch to 10.0.0.1 denied by egress policy: 10.0.0.1 is a private address (RFC 1918)",
            "fetch to 169.254.169.254 denied by egress policy: 169.254.169.254 is a link-local address",
        ])
    );
}

#[test]
fn slow_servers_hit_the_per_fetch_timeout_and_the_execution_timeout() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let code = r#"
        const t = Date.now();
        try { await fetch(env.base + '/slow'); return 'answered'; }
        catch (e) { return [`${e.name}: ${e.message}`, Date.now() - t]; }
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    assert_eq!(res["result"][0], "TypeError: fetch timed out after 1000 ms");
    let waited = res["result"][1].as_u64().unwrap();
    assert!((900..2900).contains(&waited), "waited {waited} ms");
    assert_eq!(res["fetches"][0]["error"], "fetch timed out after 1000 ms");

    // An execution timeout shorter than the fetch timeout bounds the fetch, and the execution
    // ends as TIMEOUT even when the code catches the rejection.
    for _ in 0..3 {
        let res = s.execute(
            json!({"preset": "agent", "timeout": 300, "env": {"base": up.url("")},
                   "code": "try { await fetch(env.base + '/slow'); } catch (e) { return e.message }"}),
            422,
        );
        assert_eq!(res["error"]["type"], "TIMEOUT", "{res}");
        assert!(res["fetches"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("fetch timed out after"));
    }
}

#[test]
fn bodies_over_the_limits_are_refused() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let code = r#"
        const out = [];
        for (const [path, opts] of [['/huge', {}], ['/huge-declared', {}],
            ['/echo', { method: 'POST', body: 'x'.repeat(70000) }]]) {
          try { await fetch(env.base + path, opts); out.push('fetched'); }
          catch (e) { out.push(`${e.name}: ${e.message}`); }
        }
        return out;
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    assert_eq!(
        res["result"],
        json!([
            "TypeError: response body exceeds 65536 bytes",
            "TypeError: response body exceeds 65536 bytes",
            "TypeError: request body exceeds 65536 bytes",
        ])
    );
    // The endless body was cut off while it streamed: the server's writes failed.
    assert!(
        crate::common::eventually(Duration::from_secs(5), || *up.aborted.lock().unwrap()),
        "the transfer was not stopped"
    );
    assert!(
        up.seen().iter().all(|r| r.path != "/echo"),
        "the oversized request body was never sent"
    );
}

#[test]
fn hosts_off_the_list_and_special_addresses_are_denied_before_any_connection() {
    let up = Upstream::start();
    let port = up.port;
    // Everything is on the host list, but no address range is allowed.
    let config = format!(
        "[fetch]\nallow_hosts = [\"127.0.0.1\", \"10.0.0.1\", \"169.254.169.254\", \"[::1]\", \
         \"localhost\", \"[::ffff:127.0.0.1]\", \"0.0.0.0\"]\nallow_schemes = [\"http\"]\n\
         allow_ports = [80, {port}]\nmax_requests = 20\n"
    );
    let s = Service::with_config(&config);
    let code = r#"
        const out = [];
        for (const url of env.urls) {
          try { await fetch(url); out.push('fetched'); } catch (e) { out.push(e.message); }
        }
        return out;
    "#;
    let urls = [
        format!("http://127.0.0.1:{port}/json"),
        "http://10.0.0.1/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::1]:{port}/json"),
        format!("http://[::ffff:127.0.0.1]:{port}/json"),
        format!("http://0.0.0.0:{port}/json"),
        format!("http://localhost:{port}/json"),
        format!("http://example.com:{port}/"),
        format!("https://127.0.0.1:{port}/json"),
        "http://127.0.0.1:9/".to_string(),
        "ftp://127.0.0.1/".to_string(),
        format!("http://user:pw@127.0.0.1:{port}/"),
        "/relative".to_string(),
        // Other spellings of loopback that URL parsers accept.
        format!("http://0x7f000001:{port}/json"),
        format!("http://2130706433:{port}/json"),
        format!("http://127.1:{port}/json"),
        format!("http://LocalHost:{port}/json"),
    ];
    let res = agent(&s, code, json!({"urls": urls}), 200);
    let got: Vec<&str> = res["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let denied =
        |target: &str, reason: &str| format!("fetch to {target} denied by egress policy: {reason}");
    assert_eq!(
        got,
        [
            denied("127.0.0.1", "127.0.0.1 is a loopback address").as_str(),
            &denied("10.0.0.1", "10.0.0.1 is a private address (RFC 1918)"),
            &denied("169.254.169.254", "169.254.169.254 is a link-local address"),
            &denied("::1", "::1 is a loopback address"),
            &denied("::ffff:127.0.0.1", "::ffff:127.0.0.1 is a loopback address"),
            &denied(
                "0.0.0.0",
                "0.0.0.0 is an unspecified or \"this network\" address"
            ),
            &denied("localhost", "127.0.0.1 is a loopback address"),
            &denied("example.com", "the host is not on the allowlist"),
            &denied("127.0.0.1", "the scheme \"https\" is not allowed"),
            &denied("127.0.0.1", "port 9 is not allowed"),
            &denied("127.0.0.1", "the scheme \"ftp\" is not allowed"),
            &format!("invalid URL \"http://127.0.0.1:{port}/\": it must not contain credentials"),
            "Invalid URL: \"/relative\" (it must be absolute)",
            &denied("127.0.0.1", "127.0.0.1 is a loopback address"),
            &denied("127.0.0.1", "127.0.0.1 is a loopback address"),
            &denied("127.0.0.1", "127.0.0.1 is a loopback address"),
            &denied("localhost", "127.0.0.1 is a loopback address"),
        ],
        "{res}"
    );
    assert_eq!(up.connections(), 0, "no connection reached the server");
    let audit = res["fetches"].as_array().unwrap();
    assert_eq!(audit.len(), 16, "the relative URL never left the sandbox");
    assert!(audit
        .iter()
        .all(|a| a["denied"].is_string() || a["error"].is_string()));

    // With no [fetch] section at all, every fetch is denied; other presets have no fetch.
    let s = Service::start();
    let res = agent(
        &s,
        "try { await fetch('https://example.com/'); } catch (e) { return e.message }",
        json!({}),
        200,
    );
    assert_eq!(
        res["result"],
        "fetch to example.com denied by egress policy: the host is not on the allowlist"
    );
    let res = s.execute(
        json!({"code": "[typeof fetch, typeof Headers, typeof Response]"}),
        200,
    );
    assert_eq!(
        res["result"],
        json!(["undefined", "undefined", "undefined"])
    );
    assert!(res.get("fetches").is_none());
}

#[test]
fn a_request_narrows_the_allowlist_and_cannot_widen_it() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let port = up.port;
    let res = s.execute(
        json!({"preset": "agent", "fetch": {"allow": ["localhost"]},
               "env": {"a": format!("http://localhost:{port}/json"), "b": up.url("/json")},
               "code": "const a = await fetch(env.a); \
                        try { await fetch(env.b); return 'both'; } catch (e) { return [a.status, e.message]; }"}),
        200,
    );
    assert_eq!(
        res["result"],
        json!([
            200,
            "fetch to 127.0.0.1 denied by egress policy: the host is not on the allowlist"
        ])
    );
    for (fetch, problem) in [
        (
            json!({"allow": ["evil.example"]}),
            "Invalid \"fetch\" field: \"evil.example\" is not covered by the service's fetch allowlist",
        ),
        (
            json!({"allow": ["*"]}),
            "Invalid \"fetch\" field: \"*\" is not covered by the service's fetch allowlist",
        ),
        (
            json!("localhost"),
            "Invalid \"fetch\" field: must be an object like {\"allow\": [\"api.example.com\"]}",
        ),
        (
            json!({"allow": [1]}),
            "Invalid \"fetch\" field: allow must be an array of host names",
        ),
        (
            json!({"deny": []}),
            "Invalid \"fetch\" field: has an unknown key \"deny\" (known: \"allow\")",
        ),
    ] {
        let res = s.execute(json!({"preset": "agent", "code": "1", "fetch": fetch}), 400);
        assert_eq!(res["error"], problem);
    }
    assert_eq!(up.connections(), 1);
}

#[test]
fn the_fetch_count_is_limited_per_execution() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let code = r#"
        const out = [];
        for (let i = 0; i < 8; i++) {
          try { out.push((await fetch(env.url)).status); } catch (e) { out.push(e.message); }
        }
        return out;
    "#;
    let res = agent(&s, code, json!({"url": up.url("/json")}), 200);
    let limit = "fetch limit of 6 requests per execution reached";
    assert_eq!(
        res["result"],
        json!([200, 200, 200, 200, 200, 200, limit, limit])
    );
    assert_eq!(up.seen().len(), 6);
    // The audit lists one refused call past the limit, not every one.
    assert_eq!(res["fetches"].as_array().unwrap().len(), 7);
    assert_eq!(res["fetches"][6]["error"], limit);
    // The next execution starts from zero.
    let res = agent(&s, code, json!({"url": up.url("/json")}), 200);
    assert_eq!(res["result"][5], 200);
}

#[test]
fn the_audit_stays_small_whatever_the_urls() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    // Huge refused URLs (unparsable, and of a host not allowed), many more calls than allowed.
    let code = r#"
        const big = '\u0001'.repeat(1 << 19);
        for (let i = 0; i < 40; i++) {
          try { await fetch(i % 2 ? 'http://' + big : 'https://denied.example/' + big); } catch (e) {}
        }
        return 1;
    "#;
    let res = agent(&s, code, json!({}), 200);
    let fetches = res["fetches"].as_array().expect("fetches");
    assert!(fetches.len() <= 7, "{} entries", fetches.len());
    let answer = res.to_string();
    assert!(
        answer.len() < 7 * 3 * 2100 * 6,
        "an answer of {} bytes",
        answer.len()
    );
    for f in fetches {
        let url = f["url"].as_str().unwrap_or_default();
        assert!(url.len() <= 2048 + 3, "{}", url.len());
    }
}

#[test]
fn secret_headers_reach_the_server_and_never_the_code_the_answer_or_the_log() {
    let up = Upstream::start();
    let port = up.port;
    let config = format!(
        r#"
[log]
level = "debug"

[fetch]
allow_hosts = ["127.0.0.1", "localhost"]
allow_schemes = ["http"]
allow_ports = [{port}]
allow_addresses = ["127.0.0.1/32"]

[[fetch.secret_headers]]
host = "127.0.0.1"
name = "X-Api-Key"
value_env = "TEST_FETCH_SECRET"
"#
    );
    let s = Service::with(
        &config,
        &[
            ("TEST_FETCH_SECRET", SECRET),
            ("ISOLATE_LOG_LEVEL", "debug"),
        ],
    );
    let code = r#"
        const r = await fetch(env.base + '/echo', { headers: { 'X-Api-Key': 'mine', Authorization: 'Bearer code' } });
        const echo = await r.json();
        const all = JSON.stringify([...r.headers]);
        const leaked = await fetch(env.base + '/echo-secret-header');
        const other = await fetch(env.base + '/redirect-other-host', { headers: { Authorization: 'Bearer code' } });
        return { echo, all, echoed: leaked.headers.get('x-echo'), other: await other.json(),
                 otherUrl: other.url };
    "#;
    let res = agent(&s, code, json!({"base": up.url("")}), 200);
    let r = &res["result"];
    assert_eq!(r["echo"]["hasSecret"], true, "the server got the secret");
    assert_eq!(r["echo"]["hasAuthorization"], true);
    assert_eq!(r["echoed"], "[redacted]");
    assert_eq!(r["otherUrl"], format!("http://localhost:{port}/echo"));
    assert_eq!(
        r["other"]["hasSecret"],
        Value::Null,
        "not forwarded to another host"
    );
    assert_eq!(
        r["other"]["hasAuthorization"], false,
        "credentials are dropped when a redirect leaves the origin"
    );
    let seen = up.seen();
    assert_eq!(
        seen[0].headers.get("x-api-key").map(String::as_str),
        Some(SECRET)
    );
    assert!(!seen[3].headers.contains_key("x-api-key"));
    let answer = res.to_string();
    assert!(
        !answer.contains(SECRET),
        "the answer holds the secret: {answer}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let logs = s.logs().join("\n");
    assert!(!logs.is_empty(), "debug logging is on");
    assert!(!logs.contains(SECRET), "the log holds the secret");
    assert!(
        !logs.contains("/echo-secret-header"),
        "the log holds a fetched URL"
    );
}

#[test]
fn fetches_run_one_after_another_inside_the_hard_deadline() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let started = Instant::now();
    let code = r#"
        const rs = await Promise.all([1, 2, 3].map(() => fetch(env.url).then((r) => r.json())));
        return rs.map((r) => r.hello);
    "#;
    let res = agent(&s, code, json!({"url": up.url("/json")}), 200);
    assert_eq!(res["result"], json!(["world", "world", "world"]));
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing carries over from one agent execution to the next.
    let a = s.execute(
        json!({"preset": "agent", "code": "globalThis.x = 1; 0"}),
        200,
    );
    let b = s.execute(json!({"preset": "agent", "code": "typeof x"}), 200);
    assert_eq!(
        (a["result"].clone(), b["result"].clone()),
        (json!(0), json!("undefined"))
    );
}

#[test]
fn https_goes_through_tls_and_a_failed_handshake_is_named() {
    // The test server speaks plain HTTP, so the TLS handshake of an https fetch fails: the
    // client really starts TLS (rustls), and the code gets a named network error.
    let up = Upstream::start();
    let config = format!(
        "[fetch]\nallow_hosts = [\"127.0.0.1\"]\nallow_ports = [{}]\n\
         allow_addresses = [\"127.0.0.1/32\"]\n",
        up.port
    );
    let s = Service::with_config(&config);
    let res = agent(
        &s,
        "try { await fetch(env.url); return 'fetched'; } catch (e) { return `${e.name}: ${e.message}` }",
        json!({"url": format!("https://127.0.0.1:{}/json", up.port)}),
        200,
    );
    let message = res["result"].as_str().unwrap();
    assert!(
        message.starts_with("TypeError: fetch to 127.0.0.1 failed: "),
        "{message}"
    );
    assert!(crate::common::eventually(Duration::from_secs(5), || up
        .connections()
        == 1));
    assert!(
        up.seen().iter().all(|r| r.path != "/json"),
        "no HTTP request was made in clear"
    );
}

#[test]
fn concurrent_agent_executions_share_the_client_safely() {
    let up = Upstream::start();
    let s = service_for(&up, "");
    let url = up.url("/json");
    let addr = s.addr;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let code = "let n = 0; for (let i = 0; i < 3; i++) \
                                n += (await (await fetch(env.url)).json()).n.length; return n";
                    let body = json!({"preset": "agent", "code": code, "env": {"url": url}});
                    let headers = [("Content-Type", "application/json")];
                    let body = body.to_string();
                    crate::common::request(addr, "POST", "/execute", &headers, body.as_bytes())
                })
            })
            .collect();
        for h in handles {
            let res = h.join().unwrap();
            assert_eq!(res.status, 200, "{}", res.body);
            let res = res.json();
            assert_eq!(res["result"], 9, "{res}");
            assert_eq!(res["fetches"].as_array().unwrap().len(), 3);
        }
    });
    assert_eq!(up.seen().len(), 24);
}

#[test]
fn a_fetch_cut_short_by_the_hard_deadline_still_shows_in_the_audit() {
    let up = Upstream::start();
    // A fetch timeout longer than the slow server, and a grace too short for it: the
    // supervisor's hard deadline stops the execution while the fetch is in flight.
    let config = format!(
        "[limits]\nkill_grace_ms = 0\n[fetch]\nallow_hosts = [\"127.0.0.1\"]\n\
         allow_schemes = [\"http\"]\nallow_ports = [{}]\nallow_addresses = [\"127.0.0.1/32\"]\n",
        up.port
    );
    let s = Service::with_config(&config);
    let res = s.execute(
        json!({"preset": "agent", "timeout": 200, "env": {"url": up.url("/slow")},
               "code": "await fetch(env.url)"}),
        422,
    );
    assert_eq!(res["error"]["type"], "TIMEOUT", "{res}");
    let audit = res["fetches"].as_array().unwrap();
    assert_eq!(audit.len(), 1, "{res}");
    assert_eq!(audit[0]["url"], up.url("/slow"));
    assert!(audit[0]["error"].is_string(), "{res}");
}
