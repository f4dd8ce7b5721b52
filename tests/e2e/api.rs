//! The API contract: routes, answer shapes and every request error.

use serde_json::json;

use crate::common::Service;

#[test]
fn readme_example_answers_the_average() {
    let s = Service::start();
    let res = s.execute(
        json!({
            "code": "return env.prices.reduce((a,b) => a+b, 0) / env.prices.length",
            "preset": "compute",
            "env": { "prices": [83.50, 84.20, 82.10] },
            "timeout": 5000
        }),
        200,
    );
    assert_eq!(res["success"], true);
    assert_eq!(res["result"].as_f64(), Some(83.26666666666667));
    assert_eq!(res["logs"], json!([]));
    assert!(res["executionId"].as_str().is_some_and(|id| id.len() == 36));
    let stats = &res["stats"];
    assert!(stats["elapsed"].as_f64().is_some());
    assert_eq!(stats["timeout"], 5000);
    assert_eq!(stats["preset"], "compute");
    assert_eq!(stats["logCount"], 0);
    assert!(res["_meta"]["elapsed"]
        .as_str()
        .is_some_and(|e| e.ends_with("ms")));
}

#[test]
fn execution_modes_env_and_console() {
    let s = Service::start();
    let run = |body: serde_json::Value| s.execute(body, 200)["result"].clone();
    assert_eq!(run(json!({"code": "1+1"})), json!(2));
    assert_eq!(
        s.execute(json!({"code": "1"}), 200)["stats"]["timeout"],
        5000,
        "default timeout"
    );
    assert_eq!(run(json!({"code": "await Promise.resolve(3)"})), json!(3));
    assert_eq!(
        run(json!({"code": "const x = await 4; return x * 2"})),
        json!(8)
    );
    assert_eq!(run(json!({"code": "undefined"})), json!(null));
    assert_eq!(
        run(json!({"code": "input.a + env.a", "env": {"a": 2}})),
        json!(4)
    );
    assert_eq!(
        run(json!({"code": "new Map([['k', 1]])"})),
        json!([["k", 1]])
    );
    assert_eq!(
        run(json!({"code": "typeof Date", "preset": "minimal"})),
        json!("undefined")
    );
    let res = s.execute(json!({"code": "console.log('a', {b: 1}); console.warn('w'); console.error(new Error('e').message); 1"}), 200);
    let logs = res["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    assert_eq!(
        (logs[0]["level"].as_str(), logs[0]["message"].as_str()),
        (Some("log"), Some("a {\"b\":1}"))
    );
    assert_eq!(logs[1]["level"], "warn");
    assert_eq!(logs[2]["level"], "error");
    assert!(logs[0]["time"].as_u64().is_some());
    assert_eq!(res["stats"]["logCount"], 3);
}

#[test]
fn runtime_errors_answer_422_with_name_and_position() {
    let s = Service::start();
    let res = s.execute(json!({"code": "let a = 1;\nnull.f()"}), 422);
    assert_eq!(res["success"], false);
    assert_eq!(res["error"]["type"], "RUNTIME");
    assert_eq!(res["error"]["name"], "TypeError");
    assert_eq!(res["error"]["line"], 2);
    assert!(res["executionId"].is_string() && res["stats"]["preset"] == "compute");
    let res = s.execute(json!({"code": "return 1 +"}), 422);
    assert_eq!(
        (res["error"]["type"].as_str(), res["error"]["name"].as_str()),
        (Some("RUNTIME"), Some("SyntaxError"))
    );
    let res = s.execute(
        json!({"code": "console.log('before'); throw new RangeError('nope')"}),
        422,
    );
    assert_eq!(res["error"]["message"], "nope");
    assert_eq!(
        res["logs"][0]["message"], "before",
        "logs survive a failure"
    );
}

#[test]
fn validate_reports_syntax_errors_with_position() {
    let s = Service::start();
    let res = s.post("/validate", r#"{"code":"return 1 + 1"}"#);
    assert_eq!((res.status, res.json()), (200, json!({"valid": true})));
    let res = s.post("/validate", r#"{"code":"let a = 1;\nlet b = ;"}"#);
    assert_eq!(res.status, 422);
    let body = res.json();
    assert_eq!(body["valid"], false);
    assert_eq!(
        (body["line"].as_u64(), body["column"].as_u64()),
        (Some(2), Some(9))
    );
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    // Validation never runs the code.
    let res = s.post("/validate", r#"{"code":"while (true) {}"}"#);
    assert_eq!(res.status, 200);
    let res = s.post("/validate", r#"{"nope":1}"#);
    assert_eq!(
        (res.status, res.json()),
        (400, json!({"error": "Missing \"code\" field"}))
    );
}

#[test]
fn health_and_stats() {
    let s = Service::start();
    let res = s.get("/health");
    assert_eq!(res.status, 200);
    let h = res.json();
    assert_eq!(h["status"], "ok");
    assert!(h["uptime"].as_f64().is_some() && h["version"].is_string());
    s.execute(json!({"code": "1"}), 200);
    s.execute(json!({"code": "throw 1"}), 422);
    let st = s.get("/stats").json();
    let names: Vec<&str> = st["presets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["minimal", "compute", "data", "agent"]);
    assert!(st["presets"][0]["description"].is_string());
    assert!(st["presets"][2]["description"]
        .as_str()
        .is_some_and(|d| d.contains("Buffer") && d.contains("crypto")));
    assert_eq!(st["executions"]["total"], 2);
    assert_eq!(st["executions"]["succeeded"], 1);
    assert_eq!(st["executions"]["failed"]["RUNTIME"], 1);
    assert!(st["workers"]["maxConcurrent"] == 50 && st["workers"]["zygotePid"].as_u64() > Some(0));
    assert!(st["engine"]["name"].is_string() && st["wasm"].is_object());
}

#[test]
fn unknown_routes_list_the_endpoints() {
    let s = Service::start();
    let res = s.get("/nope");
    assert_eq!(res.status, 404);
    let body = res.json();
    assert_eq!(body["error"], "Not found");
    assert!(body["endpoints"]
        .as_array()
        .unwrap()
        .contains(&json!("POST /execute")));
    let res = s.get("/execute");
    assert_eq!((res.status, res.header("allow")), (405, Some("POST")));
    let res = s.post("/wasm/run", "{}");
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(res.json()["error"], "Missing \"moduleId\" field");
}

#[test]
fn every_request_error_is_named() {
    let s = Service::start();
    let cases: &[(&str, u16, serde_json::Value)] = &[
        ("{bad json", 400, json!({"error": "Invalid JSON body"})),
        ("", 400, json!({"error": "Invalid JSON body"})),
        (
            "[1,2]",
            400,
            json!({"error": "The request body must be a JSON object"}),
        ),
        ("{}", 400, json!({"error": "Missing \"code\" field"})),
        (
            r#"{"code": ""}"#,
            400,
            json!({"error": "Missing \"code\" field"}),
        ),
        (
            r#"{"code": 42}"#,
            400,
            json!({"error": "Invalid \"code\" field: must be a string"}),
        ),
        (
            r#"{"code": "1", "env": [1]}"#,
            400,
            json!({"error": "Invalid \"env\" field: must be an object"}),
        ),
        (
            r#"{"code": "1", "timeout": "5s"}"#,
            400,
            json!({"error": "Invalid \"timeout\" field: must be a number of milliseconds"}),
        ),
        (
            r#"{"code": "1", "timeout": 0}"#,
            400,
            json!({"error": "Invalid \"timeout\" field: must be at least 1 (milliseconds)"}),
        ),
        (
            r#"{"code": "1", "preset": 3}"#,
            400,
            json!({"error": "Invalid \"preset\" field: must be a string"}),
        ),
        (
            r#"{"code": "1", "language": "python"}"#,
            400,
            json!({"error": "Invalid \"language\" field: \"python\" is not supported (supported: \"javascript\", \"typescript\")"}),
        ),
    ];
    for (body, status, expected) in cases {
        let res = s.post("/execute", body);
        assert_eq!(res.status, *status, "{body}: {}", res.body);
        assert_eq!(&res.json(), expected, "{body}");
    }
    let res = s.post("/execute", r#"{"code": "1", "preset": "turbo"}"#);
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["error"], "Unknown preset \"turbo\"");
    assert!(res.json()["presets"].is_array());
    // The timeout is capped, not refused.
    let res = s.execute(json!({"code": "1", "timeout": 99999999}), 200);
    assert_eq!(res["stats"]["timeout"], 30000);
}

#[test]
fn oversized_bodies_get_413() {
    let s = Service::with_config("[server]\nmax_body_bytes = 1024\n");
    let big = json!({"code": format!("'{}'", "x".repeat(2000))}).to_string();
    let res = s.post("/execute", &big);
    assert_eq!(res.status, 413);
    assert_eq!(
        res.json()["error"],
        "Request body exceeds the limit of 1024 bytes"
    );
    // Without a Content-Length, the limit is enforced while streaming.
    let res = s.request(
        "POST",
        "/execute",
        &[("Transfer-Encoding", "chunked")],
        big.as_bytes(),
    );
    assert_eq!(res.status, 413);
    assert_eq!(s.post("/execute", r#"{"code":"1"}"#).status, 200);
}
