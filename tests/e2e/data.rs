//! The `data` preset and the timers through the real binary, in workers locked down with every
//! sandbox layer required (seccomp among them, so the system calls the Web APIs and the timers
//! make are proven allowed).

use serde_json::json;

use crate::common::Service;

const LOCKED: &str =
    "[sandbox]\nrequire = [\"seccomp\", \"landlock\", \"namespaces\", \"rlimits\"]\n";

fn data(s: &Service, code: &str, status: u16) -> serde_json::Value {
    s.execute(json!({"code": code, "preset": "data"}), status)
}

fn assert_locked_down(s: &Service) {
    let status = s.get("/status").json();
    let workers = status["workers"].as_array().expect("workers");
    assert!(!workers.is_empty());
    for w in workers {
        assert_eq!(w["seccomp"], 2, "{w}");
    }
}

#[test]
fn web_crypto_buffer_and_text_in_locked_down_workers() {
    let s = Service::with_config(LOCKED);
    assert_locked_down(&s);
    // A webhook signature check (RFC 4231 test case 2 as the payload and secret).
    let res = s.execute(
        json!({
            "preset": "data",
            "env": {"secret": "Jefe", "body": "what do ya want for nothing?",
                    "signature": "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
            "code": "const enc = new TextEncoder();\n\
                     const key = await crypto.subtle.importKey('raw', enc.encode(env.secret), {name: 'HMAC', hash: 'SHA-256'}, false, ['sign', 'verify']);\n\
                     const mac = Buffer.from(await crypto.subtle.sign('HMAC', key, enc.encode(env.body))).toString('hex');\n\
                     const given = Buffer.from(env.signature.slice(7), 'hex');\n\
                     return {mac, valid: 'sha256=' + mac === env.signature, verified: await crypto.subtle.verify('HMAC', key, given, enc.encode(env.body))}"
        }),
        200,
    );
    assert_eq!(
        res["result"],
        json!({"mac": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "valid": true, "verified": true})
    );
    let res = data(
        &s,
        "Buffer.from(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('abc'))).toString('hex')",
        200,
    );
    assert_eq!(
        res["result"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let res = data(
        &s,
        "const b64 = Buffer.from('héllo, wörld ✓').toString('base64');\n\
         [b64, Buffer.from(b64, 'base64').toString('utf8'), atob(btoa('raw\\u00ff')) === 'raw\\u00ff']",
        200,
    );
    assert_eq!(
        res["result"],
        json!(["aMOpbGxvLCB3w7ZybGQg4pyT", "héllo, wörld ✓", true])
    );
    let res = data(
        &s,
        "new TextDecoder('utf-8', {fatal: true}).decode(new Uint8Array([0xff, 0xfe]))",
        422,
    );
    assert_eq!(res["error"]["type"], "RUNTIME");
    assert_eq!(res["error"]["name"], "TypeError");
    assert!(
        res["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid utf-8")),
        "{res}"
    );
    // Web Crypto failures reject with DOMException names.
    let res = data(
        &s,
        "await crypto.subtle.digest('MD5', new Uint8Array(1))",
        422,
    );
    assert_eq!(res["error"]["type"], "RUNTIME");
    assert_eq!(res["error"]["name"], "NotSupportedError");
    let res = data(&s, "atob('%%%')", 422);
    assert_eq!(res["error"]["name"], "InvalidCharacterError");
    let res = data(&s, "[crypto.randomUUID(), crypto.randomUUID()]", 200);
    let ids: Vec<&str> = res["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    for id in ids {
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(&id[14..15], "4", "{id}");
        assert!("89ab".contains(&id[19..20]), "{id}");
    }
    let res = data(
        &s,
        "const u = new URL('/search?q=a+b', 'https://example.com');\n\
         u.searchParams.append('page', '2');\n\
         [u.href, u.searchParams.get('q'), structuredClone(new Map([['k', new Set([1])]])) instanceof Map]",
        200,
    );
    assert_eq!(
        res["result"],
        json!(["https://example.com/search?q=a+b&page=2", "a b", true])
    );
    assert_locked_down(&s);
}

#[test]
fn timers_sleep_inside_locked_down_workers() {
    let s = Service::with_config(LOCKED);
    for preset in ["compute", "data"] {
        let res = s.execute(
            json!({
                "preset": preset,
                "code": "const t = Date.now(); const log = [];\n\
                         setTimeout(() => log.push('b'), 30);\n\
                         setTimeout(() => log.push('a'), 0);\n\
                         const v = await new Promise((r) => setTimeout(() => r('done'), 60));\n\
                         return {v, log, waited: Date.now() - t >= 55}"
            }),
            200,
        );
        assert_eq!(
            res["result"],
            json!({"v": "done", "log": ["a", "b"], "waited": true}),
            "{preset}"
        );
    }
    // A timer due after the deadline: TIMEOUT, and the service goes on.
    let res = s.execute(
        json!({"code": "await new Promise((r) => setTimeout(r, 10000))", "timeout": 200}),
        422,
    );
    assert_eq!(res["error"]["type"], "TIMEOUT");
    // Timers still pending at the result never run.
    let res = s.execute(
        json!({"code": "setTimeout(() => console.log('late'), 0); 'now'"}),
        200,
    );
    assert_eq!(res["result"], "now");
    assert_eq!(res["logs"], json!([]));
    let res = s.execute(
        json!({"code": "typeof setTimeout", "preset": "minimal"}),
        200,
    );
    assert_eq!(res["result"], "undefined");
    assert_locked_down(&s);
}

#[test]
fn data_globals_do_not_leak_and_prototypes_are_frozen() {
    let s = Service::start();
    let probe = "[typeof Buffer, typeof crypto, typeof TextEncoder, typeof URL, typeof atob, typeof structuredClone]";
    for preset in ["minimal", "compute"] {
        let res = s.execute(json!({"code": probe, "preset": preset}), 200);
        assert_eq!(
            res["result"],
            json!([
                "undefined",
                "undefined",
                "undefined",
                "undefined",
                "undefined",
                "undefined"
            ]),
            "{preset}"
        );
    }
    // Alternate presets on the same workers: a data context never leaves anything behind.
    let res = data(&s, probe, 200);
    assert_eq!(
        res["result"],
        json!(["function", "object", "function", "function", "function", "function"])
    );
    let res = s.execute(json!({"code": probe, "preset": "compute"}), 200);
    assert_eq!(
        res["result"],
        json!([
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined"
        ])
    );
    let res = data(
        &s,
        "'use strict';\n\
         const frozen = [Buffer.prototype, URL.prototype, URLSearchParams.prototype, TextDecoder.prototype, crypto, crypto.subtle, Buffer].every(Object.isFrozen);\n\
         let error = null;\n\
         try { Buffer.prototype.toString = () => 'poisoned'; } catch (e) { error = e.name; }\n\
         [frozen, error, Buffer.from('safe').toString()]",
        200,
    );
    assert_eq!(res["result"], json!([true, "TypeError", "safe"]));
}
