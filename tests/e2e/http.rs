//! The HTTP layer under attack: authorisation on every spelling of a path, browser-borne
//! requests (Host and Origin), slow bodies, clients that never read, and answers bounded by
//! the limits whatever the code does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Service;

const USER: &str = "user-token-0123";
const ADMIN: &str = "admin-token-0123";

/// Spellings of `path` that a router may or may not take for it.
fn spellings(path: &str) -> Vec<String> {
    let mut out = vec![
        path.to_string(),
        format!("/{path}"),
        format!("{path}/"),
        format!("{path}?x=1"),
        format!("/.{path}"),
        format!("/x/..{path}"),
    ];
    // Every single character percent-encoded in turn, in both cases of hex.
    for (i, c) in path.char_indices().skip(1) {
        if c == '/' {
            continue;
        }
        let enc = format!("%{:02x}", c as u32);
        out.push(format!("{}{}{}", &path[..i], enc, &path[i + 1..]));
        out.push(format!(
            "{}{}{}",
            &path[..i],
            enc.to_uppercase(),
            &path[i + 1..]
        ));
    }
    out.push(path.replace('s', "%2573"));
    out
}

/// Whether an answer is `/status`'s admin view.
fn is_status_view(body: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|v| v.get("sandbox").is_some())
}

#[test]
fn no_spelling_of_a_protected_path_skips_its_check() {
    let both = Service::with_config(&format!(
        "[auth]\ntoken = \"{USER}\"\nadmin_token = \"{ADMIN}\"\nrate_limit_per_minute = 0\n"
    ));
    let user = format!("Bearer {USER}");
    let admin = format!("Bearer {ADMIN}");
    for path in spellings("/status") {
        for auth in [None, Some(user.as_str())] {
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
            let res = both.request("GET", &path, &headers, b"");
            assert!(
                !is_status_view(&res.body) && res.status != 200,
                "GET {path} with {auth:?} answered {} {}",
                res.status,
                res.body
            );
        }
        // With the admin token, a spelling either reaches /status or no route at all (whose
        // 404 any valid key may read).
        let res = both.request("GET", &path, &[("Authorization", &admin)], b"");
        assert!(
            res.status == 200 && is_status_view(&res.body)
                || res.status == 404 && !is_status_view(&res.body),
            "GET {path} with the admin token answered {} {}",
            res.status,
            res.body
        );
    }
    // The encoded spelling is routed to /status, behind the admin check.
    let res = both.request("GET", "/%73tatus", &[("Authorization", &admin)], b"");
    assert_eq!(res.status, 200, "{}", res.body);
    for path in spellings("/stats").into_iter().chain(spellings("/execute")) {
        let method = if path.contains("stat") { "GET" } else { "POST" };
        let res = both.request(method, &path, &[], b"{\"code\":\"1\"}");
        assert_eq!(
            res.status, 401,
            "{method} {path} without a token: {}",
            res.body
        );
    }

    // Only an admin token: /status needs it under every spelling, other routes are open.
    let admin_only = Service::with_config(&format!("[auth]\nadmin_token = \"{ADMIN}\"\n"));
    for path in spellings("/status") {
        let res = admin_only.request("GET", &path, &[], b"");
        assert!(
            !is_status_view(&res.body),
            "GET {path} without a token answered the admin view"
        );
    }
    assert_eq!(admin_only.get("/%73tatus").status, 401);
    assert_eq!(admin_only.get("/stats").status, 200);
}

#[test]
fn wrong_methods_and_unknown_paths_keep_their_answers() {
    let s = Service::with_config(&format!("[auth]\ntoken = \"{USER}\"\n"));
    let auth = format!("Bearer {USER}");
    let res = s.request("GET", "/execute", &[("Authorization", &auth)], b"");
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("POST"));
    let res = s.request("POST", "/status", &[("Authorization", &auth)], b"");
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET"));
    let res = s.request("GET", "/nope", &[("Authorization", &auth)], b"");
    assert_eq!(res.status, 404);
    let endpoints = res.json()["endpoints"].clone();
    assert!(endpoints
        .as_array()
        .is_some_and(|a| a.contains(&json!("GET /status"))));
    assert_eq!(s.get("/nope").status, 401);
    assert_eq!(s.request("POST", "/execute", &[], b"").status, 401);
    assert_eq!(s.get("/health").status, 200);
}

/// One raw HTTP/1.1 exchange with exactly these header lines.
fn raw(s: &Service, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut out = format!(
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out).expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn requests_from_web_pages_are_refused_and_programs_are_not() {
    let s = Service::with_config("[server]\nallowed_hosts = [\"sandbox.home.arpa\"]\n");
    let port = s.addr.port();
    let code = br#"{"code":"globalThis.ran = 1; 6*7"}"#;
    let post = |extra: &str| raw(&s, &format!("POST /execute HTTP/1.1\r\n{extra}"), code);

    // curl-like clients, with or without a Content-Type.
    for extra in [
        format!("Host: 127.0.0.1:{port}\r\n"),
        format!("Host: localhost:{port}\r\nContent-Type: text/plain\r\n"),
        format!("Host: [::1]:{port}\r\n"),
        "Host: Sandbox.Home.Arpa\r\n".to_string(),
    ] {
        let (status, body) = post(&extra);
        assert_eq!(status, 200, "{extra:?}: {body}");
    }
    // DNS rebinding: the page's own name in Host.
    for host in ["evil.example", "localhost.evil.example", "127.0.0.1.nip.io"] {
        let (status, body) = post(&format!("Host: {host}:{port}\r\n"));
        assert_eq!(status, 403, "{host}: {body}");
        assert!(body.contains("server.allowed_hosts"), "{body}");
    }
    // Cross-site pages: an Origin that CORS does not allow, or fetch metadata saying so.
    for extra in [
        "Origin: https://evil.example\r\nContent-Type: text/plain\r\n",
        "Origin: null\r\n",
        &format!("Origin: http://localhost:{}\r\n", port + 1),
        "Sec-Fetch-Site: cross-site\r\n",
        "Sec-Fetch-Site: same-site\r\n",
    ] {
        let (status, body) = post(&format!("Host: 127.0.0.1:{port}\r\n{extra}"));
        assert_eq!(status, 403, "{extra:?}: {body}");
        assert!(body.contains("cors.origins"), "{body}");
    }
    // The service's own origin is same-origin.
    let (status, body) = post(&format!(
        "Host: localhost:{port}\r\nOrigin: http://localhost:{port}\r\nSec-Fetch-Site: same-origin\r\n"
    ));
    assert_eq!(status, 200, "{body}");

    // An origin CORS allows is accepted.
    let cors = Service::with_config("[cors]\norigins = [\"https://app.example\"]\n");
    let (status, body) = raw(
        &cors,
        &format!(
            "POST /execute HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: https://app.example\r\n",
            cors.addr.port()
        ),
        code,
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_body_that_trickles_in_gets_408() {
    let s = Service::with_config("[server]\nbody_timeout_ms = 1000\n");
    let mut stream = TcpStream::connect(s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let head = format!(
        "POST /execute HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        s.addr
    );
    stream.write_all(head.as_bytes()).expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(10) {
        let _ = stream.write_all(b" ");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive within 1000 ms"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The service still answers.
    assert_eq!(s.get("/health").status, 200);
}

#[test]
fn a_client_that_never_reads_is_disconnected() {
    let s = Service::with_config(
        "[server]\nwrite_timeout_ms = 1000\n[limits]\nmax_result_bytes = 33554432\n",
    );
    let mut stream = TcpStream::connect(s.addr).expect("connect");
    let body = br#"{"code":"'x'.repeat(30000000)"}"#;
    let head = format!(
        "POST /execute HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(body).expect("write");
    // Read nothing while the answer is produced and the timeout runs out.
    std::thread::sleep(Duration::from_secs(8));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let complete = loop {
        match stream.read(&mut buf) {
            Ok(0) => break false,
            Ok(n) => got += n,
            Err(_) => break false,
        }
        if got > 30_000_000 {
            break true;
        }
    };
    assert!(
        !complete,
        "the whole answer was still there after the write timeout ({got} bytes)"
    );
    assert_eq!(s.get("/health").status, 200);
}

#[test]
fn answers_stay_within_the_bound_whatever_the_code_does() {
    let s = Service::start();
    let stats = s.get("/stats").json();
    let bound = stats["limits"]["maxAnswerBytes"]
        .as_u64()
        .expect("maxAnswerBytes") as usize;
    assert!(bound >= 1 << 20, "{bound}");
    let cases = [
        // Console messages that JSON escaping inflates sixfold.
        "console.log('\\u0001'.repeat(1 << 20))",
        "for (let i = 0; i < 1000; i++) console.log('\\u0001'.repeat(1 << 12))",
        // A thrown error with a huge message, and one with a huge stack line.
        "throw new Error('\\u0001'.repeat(8 << 20))",
        "const e = new Error('x'); e.stack = '\\u0002'.repeat(8 << 20); throw e",
        // A result that escapes to six times its size.
        "'\\u0001'.repeat(1000000)",
        "({['\\u0001'.repeat(1000000)]: 1})",
    ];
    for code in cases {
        let res = s.post("/execute", &json!({ "code": code }).to_string());
        assert!(
            res.body.len() <= bound,
            "{code}: an answer of {} bytes, over the bound of {bound}",
            res.body.len()
        );
        let v = res.json();
        assert!(
            matches!(res.status, 200 | 422),
            "{code}: {} {}",
            res.status,
            &res.body[..res.body.len().min(300)]
        );
        assert!(v["executionId"].is_string(), "{code}");
    }
}
