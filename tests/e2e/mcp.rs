//! `/mcp`: the MCP server over streamable HTTP, behind the API's token (the full protocol is
//! exercised with the official Python SDK in tests/mcp).

use crate::common::Service;

const TOKEN: &str = "mcp-e2e-token-123";

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"0"}}}"#;

fn post(
    s: &Service,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> crate::common::Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    headers.extend_from_slice(extra);
    s.request("POST", path, &headers, body.as_bytes())
}

#[test]
fn mcp_needs_the_token_on_every_path_that_reaches_it() {
    let s = Service::with_config(&format!("[auth]\ntoken = \"{TOKEN}\"\n"));
    assert_eq!(post(&s, "/mcp", None, &[], INIT).status, 401);
    assert_eq!(
        post(&s, "/mcp", Some("wrong-token-000"), &[], INIT).status,
        403
    );
    for path in ["/mcp/", "/%6dcp", "/mcp//", "//mcp"] {
        let status = post(&s, path, None, &[], INIT).status;
        assert!(status == 401 || status == 404, "{path} answered {status}");
    }
    let ok = post(&s, "/mcp", Some(TOKEN), &[], INIT);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.header("mcp-session-id").is_some());
    assert!(ok.body.contains("\"serverInfo\""), "{}", ok.body);
}

#[test]
fn a_tool_call_runs_in_the_pool() {
    let s = Service::start();
    let init = post(&s, "/mcp", None, &[], INIT);
    assert_eq!(init.status, 200, "{}", init.body);
    let sid = init
        .header("mcp-session-id")
        .expect("session id")
        .to_string();
    let session = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    let n = post(
        &s,
        "/mcp",
        None,
        &session,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(n.status, 202, "{}", n.body);
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_javascript","arguments":{"code":"6 * 7"}}}"#;
    let r = post(&s, "/mcp", None, &session, call);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(r#""structuredContent":{"#), "{}", r.body);
    assert!(r.body.contains(r#""result":42"#), "{}", r.body);
    let thrown = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"run_javascript","arguments":{"code":"throw new RangeError('x')"}}}"#;
    let r = post(&s, "/mcp", None, &session, thrown);
    assert!(r.body.contains(r#""isError":true"#), "{}", r.body);
    assert!(r.body.contains(r#""name":"RangeError""#), "{}", r.body);
}

#[test]
fn refusals_are_json_rpc_errors() {
    let s = Service::start();
    let r = post(&s, "/mcp", None, &[], "{oops");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("-32700"), "{}", r.body);
    let r = post(&s, "/mcp", None, &[], &format!("[{INIT}]"));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("batch"), "{}", r.body);
    let r = post(
        &s,
        "/mcp",
        None,
        &[
            ("Mcp-Session-Id", "nope"),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    );
    assert_eq!(r.status, 404);
    assert!(r.body.contains("-32001"), "{}", r.body);
    let r = post(
        &s,
        "/mcp",
        None,
        &[("Origin", "https://evil.example")],
        INIT,
    );
    assert_eq!(r.status, 403);
    assert!(r.body.contains("\"jsonrpc\""), "{}", r.body);
}

#[test]
fn mcp_can_be_switched_off() {
    let s = Service::with_config("[mcp]\nenabled = false\n");
    assert_eq!(post(&s, "/mcp", None, &[], INIT).status, 404);
}
