//! `GET /openapi.json` and the document it serves: real answers of every route, successes and
//! refusals, are validated against `docs/openapi.json` (status, media type, documented headers
//! and the JSON Schema of the body) with the `jsonschema` crate.
//!
//! With `OPENAPI_STRICT=1` every object schema that lists its properties also refuses others,
//! so that a field an answer has and the document does not describe fails the test (the
//! document itself lets answers grow, as clients must ignore fields they do not know).

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::{parse_response, request, Response, Service};

const DOCUMENT: &str = include_str!("../../docs/openapi.json");
const TOKEN: &str = "openapi-test-token-42";

/// The document, and a validator per schema location (compiled on first use).
struct Spec {
    doc: Value,
    validators: HashMap<String, jsonschema::Validator>,
    /// Every (method, path, status) validated.
    seen: BTreeSet<(String, String, u16)>,
}

fn strict(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl Spec {
    fn new() -> Spec {
        let mut doc: Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
        if std::env::var_os("OPENAPI_STRICT").is_some() {
            strict(&mut doc["components"]["schemas"]);
        }
        Spec {
            doc,
            validators: HashMap::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Resolves a `$ref` to a response object.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v["$ref"].as_str() {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("{r} does not resolve")),
            None => v,
        }
    }

    /// Checks one real answer against the document.
    fn check(&mut self, method: &str, path: &str, res: &Response) {
        let route = path.split('?').next().unwrap_or(path);
        let op_pointer = format!("/paths/{}/{}", escape(route), method.to_ascii_lowercase());
        let (response, pointer) = match self.doc.pointer(&op_pointer) {
            Some(op) => {
                let status = res.status.to_string();
                let r = op["responses"].get(&status).unwrap_or_else(|| {
                    panic!(
                        "{method} {path}: status {status} is not documented: {}",
                        res.body
                    )
                });
                let pointer = match r["$ref"].as_str() {
                    Some(rf) => rf.trim_start_matches('#').to_string(),
                    None => format!("{op_pointer}/responses/{status}"),
                };
                (self.resolve(r).clone(), pointer)
            }
            None => {
                let name = if self.doc["paths"].get(route).is_some() {
                    assert_eq!(res.status, 405, "{method} {path}: {}", res.body);
                    "MethodNotAllowed"
                } else {
                    assert_eq!(res.status, 404, "{method} {path}: {}", res.body);
                    "NotFound"
                };
                let pointer = format!("/components/responses/{name}");
                (self.doc.pointer(&pointer).unwrap().clone(), pointer)
            }
        };
        for header in response["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(h, _)| h)
        {
            assert!(
                res.header(&header.to_ascii_lowercase()).is_some(),
                "{method} {path} {}: no {header} header",
                res.status
            );
        }
        let media = res
            .header("content-type")
            .and_then(|c| c.split(';').next())
            .unwrap_or("")
            .trim()
            .to_string();
        let content = response["content"].as_object().expect("documented content");
        assert!(
            content.contains_key(&media),
            "{method} {path} {}: media type {media:?} is not documented",
            res.status
        );
        if media == "application/json" {
            let location = format!("{pointer}/content/application~1json/schema");
            let doc = &self.doc;
            let validator = self.validators.entry(location.clone()).or_insert_with(|| {
                let mut root = doc.clone();
                root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
                root["$ref"] = json!(format!("#{location}"));
                jsonschema::options()
                    .should_validate_formats(true)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("{location}: {e}"))
            });
            let body: Value = serde_json::from_str(&res.body)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", res.body));
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method} {path} {} does not match {location}:\n{}\n{}",
                res.status,
                errors.join("\n"),
                res.body
            );
        }
        self.seen
            .insert((method.to_string(), route.to_string(), res.status));
    }

    /// Sends a request, checks its answer and returns it.
    fn call(
        &mut self,
        s: &Service,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let res = s.request(method, path, &headers, body.as_bytes());
        self.check(method, path, &res);
        res
    }
}

/// Writes `raw` as it is and reads the whole answer.
fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse_response(&answer)
}

fn b64(wat: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(wat::parse_str(wat).expect("valid WAT"))
}

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.add))"#;
const TRAP: &str = r#"(module (func (export "boom") unreachable))"#;
const WASI: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))"#;

#[test]
fn the_document_is_served_behind_the_user_token() {
    let s = Service::with_config(&format!("[auth]\ntoken = {TOKEN:?}\n"));
    let res = s.get("/openapi.json");
    assert_eq!(res.status, 401, "{}", res.body);
    assert_eq!(res.json(), json!({"error": "Missing bearer token"}));
    let auth = format!("Bearer {TOKEN}");
    let res = s.request("GET", "/openapi.json", &[("Authorization", &auth)], b"");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(
        res.body, DOCUMENT,
        "the served document is docs/openapi.json"
    );
    let res = s.request(
        "GET",
        "/openapi.json",
        &[("Authorization", "Bearer wrong-token")],
        b"",
    );
    assert_eq!(res.status, 403);
}

#[test]
fn every_route_answers_as_the_document_says() {
    let modules = std::env::temp_dir().join(format!("isolate-openapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&modules);
    std::fs::create_dir_all(modules.join("cache")).unwrap();
    let s = Service::with_config(&format!(
        "[auth]\ntoken = {TOKEN:?}\nrate_limit_per_minute = 0\n\
         [wasm]\nmodule_dir = {:?}\ncache_dir = {:?}\nmax_module_bytes = 4096\n",
        modules.to_str().unwrap(),
        modules.join("cache").to_str().unwrap()
    ));
    let mut spec = Spec::new();
    let t = Some(TOKEN);
    let post = |spec: &mut Spec, path: &str, body: Value| {
        spec.call(&s, "POST", path, t, &body.to_string())
    };

    // Executions: successes, failures of the code, and refusals of the request.
    for (body, status) in [
        (json!({"code": "console.log('hi'); 1 + 1"}), 200),
        (
            json!({"code": "return {a: [1, 'x', null]}", "language": "ts"}),
            200,
        ),
        (
            json!({"preset": "agent", "code": "await fetch('https://example.com').catch(() => 0)"}),
            200,
        ),
        (json!({"code": "throw new TypeError('no')"}), 422),
        (json!({"code": "while (true) {}", "timeout": 50}), 422),
        (json!({"code": "1 +"}), 422),
        (json!({}), 400),
        (json!({"code": "1", "preset": "nope"}), 400),
    ] {
        assert_eq!(
            post(&mut spec, "/execute", body.clone()).status,
            status,
            "{body}"
        );
    }
    for (body, status) in [
        (json!({"code": "return 1"}), 200),
        (json!({"code": "let x = ;"}), 422),
        (json!({"code": 5}), 400),
    ] {
        assert_eq!(
            post(&mut spec, "/validate", body.clone()).status,
            status,
            "{body}"
        );
    }
    for (body, status) in [
        (json!({"code": "return data.n * 2", "data": {"n": 21}}), 200),
        (json!({"code": "throw new Error('x')"}), 422),
        (json!({"code": "return 1", "permissions": ["read"]}), 400),
    ] {
        assert_eq!(
            post(&mut spec, "/deno", body.clone()).status,
            status,
            "{body}"
        );
    }

    // WebAssembly.
    std::fs::write(modules.join("add.wasm"), wat::parse_str(ADD).unwrap()).unwrap();
    for (body, status) in [
        (json!({"bytes": b64(ADD), "id": "add"}), 200),
        (json!({"file": "add.wasm", "id": "add"}), 200),
        (json!({"bytes": b64(TRAP), "id": "add"}), 409),
        (json!({"bytes": b64(TRAP)}), 200),
        (json!({"bytes": b64(WASI), "id": "wasi"}), 200),
        (json!({"bytes": "AGFzbQ=="}), 422),
        (json!({"bytes": "not base64!"}), 400),
        (json!({"file": "missing.wasm"}), 404),
        (
            json!({"bytes": base64::engine::general_purpose::STANDARD.encode([0u8; 5000])}),
            413,
        ),
        (json!({"id": "x"}), 400),
    ] {
        assert_eq!(
            post(&mut spec, "/wasm/compile", body.clone()).status,
            status,
            "{body}"
        );
    }
    let trap = post(&mut spec, "/wasm/compile", json!({"bytes": b64(TRAP)})).json()["moduleId"]
        .as_str()
        .unwrap()
        .to_string();
    for (body, status) in [
        (json!({"moduleId": "add", "args": [2, 3]}), 200),
        (
            json!({"moduleId": "wasi", "stdin": "x", "argv": ["a"]}),
            200,
        ),
        (json!({"moduleId": trap}), 422),
        (json!({"moduleId": "add", "args": ["x"]}), 422),
        (json!({"moduleId": "add", "entry": "nope"}), 422),
        (json!({"moduleId": "unknown"}), 422),
        (json!({"moduleId": "../../etc/passwd"}), 422),
        (json!({}), 400),
    ] {
        assert_eq!(
            post(&mut spec, "/wasm/run", body.clone()).status,
            status,
            "{body}"
        );
    }

    // Reads, the page, the document; refusals of the token; unknown paths and methods.
    for path in [
        "/health",
        "/stats",
        "/status",
        "/metrics",
        "/ui",
        "/ui/app.js",
        "/ui/app.css",
        "/openapi.json",
    ] {
        assert_eq!(spec.call(&s, "GET", path, t, "").status, 200, "{path}");
    }
    assert_eq!(spec.call(&s, "GET", "/health", None, "").status, 200);
    for path in ["/stats", "/status", "/metrics", "/openapi.json"] {
        assert_eq!(spec.call(&s, "GET", path, None, "").status, 401, "{path}");
        assert_eq!(
            spec.call(&s, "GET", path, Some("wrong-token"), "").status,
            403,
            "{path}"
        );
    }
    assert_eq!(spec.call(&s, "POST", "/execute", None, "{}").status, 401);
    assert_eq!(spec.call(&s, "GET", "/nope", t, "").status, 404);
    assert_eq!(spec.call(&s, "GET", "/execute", t, "").status, 405);
    assert_eq!(spec.call(&s, "POST", "/openapi.json", t, "").status, 405);
    let big = format!("{{\"code\": \"{}\"}}", "x".repeat(2 << 20));
    assert_eq!(spec.call(&s, "POST", "/execute", t, &big).status, 413);
    // A Host that is no address of the service's (a DNS-rebinding page): 403.
    let raw = format!(
        "POST /execute HTTP/1.1\r\nHost: attacker.example\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let res = exchange(s.addr, raw.as_bytes());
    spec.check("POST", "/execute", &res);
    assert_eq!(res.status, 403);

    // Every route was seen answering 200.
    for (method, path) in isolate_service::api::routes::endpoints()
        .iter()
        .filter_map(|e| e.split_once(' '))
    {
        assert!(
            spec.seen
                .contains(&(method.to_string(), path.to_string(), 200)),
            "{method} {path} was not validated with a 200 answer"
        );
    }
    drop(s);
    std::fs::remove_dir_all(&modules).unwrap();
}

#[test]
fn limits_answer_as_the_document_says() {
    let mut spec = Spec::new();
    // 429, with Retry-After.
    let s = Service::with_config(&format!(
        "[auth]\ntoken = {TOKEN:?}\nrate_limit_per_minute = 1\n"
    ));
    assert_eq!(spec.call(&s, "GET", "/stats", Some(TOKEN), "").status, 200);
    assert_eq!(spec.call(&s, "GET", "/stats", Some(TOKEN), "").status, 429);
    assert_eq!(
        spec.call(&s, "POST", "/wasm/run", Some(TOKEN), "{}").status,
        429
    );
    drop(s);

    // 503 BUSY: the only slot is taken and nothing may wait.
    let s = Service::with_config(
        "[workers]\nmax_concurrent = 1\nprewarm = 1\nqueue_size = 0\n[server]\nbody_timeout_ms = 200\n",
    );
    let addr = s.addr;
    let slow = std::thread::spawn(move || {
        request(
            addr,
            "POST",
            "/execute",
            &[],
            br#"{"code": "while (true) {}", "timeout": 1500}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        spec.call(&s, "POST", "/execute", None, r#"{"code": "1"}"#)
            .status,
        503
    );
    assert_eq!(
        spec.call(&s, "POST", "/validate", None, r#"{"code": "1"}"#)
            .status,
        503
    );
    spec.check("POST", "/execute", &slow.join().unwrap());

    // 408: a body that never arrives in full.
    let head = format!(
        "POST /execute HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nConnection: close\r\n\r\n{{\"co",
        s.addr
    );
    let res = exchange(s.addr, head.as_bytes());
    assert_eq!(res.status, 408, "{}", res.body);
    spec.check("POST", "/execute", &res);
}
