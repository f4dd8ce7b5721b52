"""/mcp and `isolate-service mcp` attacked from outside: auth, malformed and oversized
messages, batches, wrong content types, sessions, origins, slow clients, rate limits."""

import json
import os
import select
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx2
import pytest

from conftest import BINARY, TOKEN, Service, write_config

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "outsider", "version": "0"},
    },
}
ACCEPT = "application/json, text/event-stream"


def headers(token=TOKEN, **extra):
    h = {"Accept": ACCEPT, "Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(extra)
    return h


def post(service, body, **kw):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx2.post(service.mcp_url, content=data, headers=kw.pop("headers", headers()), timeout=30, **kw)


def sse_messages(text):
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]


def jsonrpc_error(response):
    body = response.json()
    assert body["jsonrpc"] == "2.0" and "error" in body, body
    return body["error"]


def open_session(service):
    r = post(service, INIT)
    assert r.status_code == 200, r.text
    sid = r.headers["mcp-session-id"]
    h = headers(**{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"})
    n = post(service, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h)
    assert n.status_code == 202, n.text
    return h


def test_missing_and_wrong_tokens(service):
    r = post(service, INIT, headers=headers(token=None))
    assert r.status_code == 401
    r = post(service, INIT, headers=headers(token="wrong-token-0000"))
    assert r.status_code == 403
    r = post(service, INIT, headers=headers(token=TOKEN + "x"))
    assert r.status_code == 403
    r = post(service, INIT, headers=dict(headers(token=None), Authorization="Basic " + TOKEN))
    assert r.status_code == 401
    # Every path that reaches the MCP service is behind the token.
    for path in ["/mcp/", "/mcp//", "/%6dcp"]:
        r = httpx2.post(service.url + path, content=json.dumps(INIT), headers=headers(token=None), timeout=10)
        assert r.status_code in (401, 404), (path, r.status_code)
    r = httpx2.get(service.mcp_url, headers=headers(token=None), timeout=10)
    assert r.status_code == 401
    r = httpx2.delete(service.mcp_url, headers=headers(token=None), timeout=10)
    assert r.status_code == 401


def test_malformed_json_and_batches_get_json_rpc_errors(service):
    r = post(service, b"{not json")
    assert r.status_code == 400 and jsonrpc_error(r)["code"] == -32700
    r = post(service, b"")
    assert r.status_code == 400 and jsonrpc_error(r)["code"] == -32700
    r = post(service, [INIT, INIT])
    assert r.status_code == 400
    e = jsonrpc_error(r)
    assert e["code"] == -32600 and "batch" in e["message"]
    for not_a_message in [{"jsonrpc": "2.0", "id": 3, "no": "method"},
                          {"jsonrpc": "1.0", "id": 3, "method": "initialize"},
                          {"jsonrpc": "2.0", "id": {"an": "object"}, "method": "initialize"},
                          '"a string"', "42", "null"]:
        r = post(service, not_a_message)
        assert r.status_code == 400, (not_a_message, r.status_code, r.text)
        assert jsonrpc_error(r)["code"] == -32600


def test_oversized_messages(service):
    big = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "run_javascript",
           "arguments": {"code": "x" * (12 << 20)}}}
    r = post(service, big)
    assert r.status_code == 413
    assert jsonrpc_error(r)["code"] == -32600
    # Within the message limit but over the body limit of /execute (1 MiB): refused by the tool.
    h = open_session(service)
    call = {"jsonrpc": "2.0", "id": 10, "method": "tools/call",
            "params": {"name": "run_javascript", "arguments": {"code": "'" + "x" * (2 << 20) + "'"}}}
    r = post(service, call, headers=h)
    assert r.status_code == 200, r.text
    (answer,) = sse_messages(r.text) or [r.json()]
    assert answer["id"] == 10 and answer["error"]["code"] == -32602
    assert "more than the limit" in answer["error"]["message"]


def test_wrong_content_type_and_accept(service):
    r = post(service, INIT, headers=headers(**{"Content-Type": "text/plain"}))
    assert r.status_code == 415 and "error" in r.json()
    r = post(service, INIT, headers=headers(Accept="application/json"))
    assert r.status_code == 406 and "error" in r.json()


def test_sessions(service):
    # A request other than initialize without a session id.
    r = post(service, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
             headers=headers(**{"MCP-Protocol-Version": "2025-06-18"}))
    assert r.status_code >= 400 and "error" in r.json(), (r.status_code, r.text)
    # An unknown session id.
    r = post(service, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
             headers=headers(**{"Mcp-Session-Id": "not-a-session", "MCP-Protocol-Version": "2025-06-18"}))
    assert r.status_code == 404 and jsonrpc_error(r)["code"] == -32001
    # An unknown method in a real session.
    h = open_session(service)
    r = post(service, {"jsonrpc": "2.0", "id": 5, "method": "no/such/method"}, headers=h)
    (answer,) = sse_messages(r.text) or [r.json()]
    assert answer["error"]["code"] == -32601
    assert answer["error"]["message"] == "Method not found: no/such/method"
    # Known methods with malformed params are invalid params, not unknown methods.
    # (params that are not an object make no JSON-RPC request at all.)
    r = post(service, {"jsonrpc": "2.0", "id": 19, "method": "tools/call", "params": 5}, headers=h)
    assert r.status_code == 400 and jsonrpc_error(r)["code"] == -32600
    for i, params in enumerate([None, {"name": "run_javascript", "arguments": [1]}, {"arguments": {}}]):
        call = {"jsonrpc": "2.0", "id": 20 + i, "method": "tools/call"}
        if params is not None:
            call["params"] = params
        r = post(service, call, headers=h)
        (answer,) = sse_messages(r.text) or [r.json()]
        assert answer["error"]["code"] == -32602, (params, answer)
    r = post(service, {"jsonrpc": "2.0", "id": 30, "method": "logging/setLevel", "params": {"level": "loud"}},
             headers=h)
    (answer,) = sse_messages(r.text) or [r.json()]
    assert answer["error"]["code"] == -32602 and "loud" in answer["error"]["message"]
    # Deleting a session, then using it.
    assert httpx2.delete(service.mcp_url, headers=h, timeout=10).status_code in (200, 202, 204)
    r = post(service, {"jsonrpc": "2.0", "id": 6, "method": "tools/list"}, headers=h)
    assert r.status_code == 404


def test_many_concurrent_sessions_are_isolated(service):
    sessions = [open_session(service) for _ in range(10)]
    for i, h in enumerate(sessions):
        call = {"jsonrpc": "2.0", "id": 100 + i, "method": "tools/call",
                "params": {"name": "run_javascript", "arguments": {"code": f"{i} + 1"}}}
        r = post(service, call, headers=h)
        (answer,) = sse_messages(r.text)
        assert answer["id"] == 100 + i
        assert answer["result"]["structuredContent"]["result"] == i + 1
    for h in sessions:
        httpx2.delete(service.mcp_url, headers=h, timeout=10)


def test_foreign_origins_and_hosts_are_refused(service):
    r = post(service, INIT, headers=headers(Origin="https://evil.example"))
    assert r.status_code == 403 and "error" in r.json()
    r = post(service, INIT, headers=headers(Host="evil.example"))
    assert r.status_code == 403 and "error" in r.json()


def test_a_slow_body_does_not_block_others(service):
    host, port = service.url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)))
    slow.sendall(
        (f"POST /mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
         f"Content-Type: application/json\r\nAccept: {ACCEPT}\r\nContent-Length: 100000\r\n\r\n{{").encode()
    )
    try:
        h = open_session(service)
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "run_javascript", "arguments": {"code": "'ok'"}}}
        (answer,) = sse_messages(post(service, call, headers=h).text)
        assert answer["result"]["structuredContent"]["result"] == "ok"
    finally:
        slow.close()


def test_rate_limit_applies_to_mcp():
    s = Service(rate=3)
    try:
        codes = [post(s, INIT).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429, codes
    finally:
        s.stop()


def read_line(proc, timeout=30):
    deadline = time.time() + timeout
    buf = b""
    while time.time() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                break
            buf += chunk
            if chunk == b"\n":
                return json.loads(buf)
    raise AssertionError(f"no answer line (got {buf!r})")


def test_stdio_refuses_bad_lines_and_keeps_serving():
    with tempfile.TemporaryDirectory() as d:
        config = write_config(d)
        stderr = open(Path(d) / "stderr.log", "w+")
        proc = subprocess.Popen(
            [str(BINARY), "mcp", "--config", str(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            env=dict(os.environ, ISOLATE_LOG_LEVEL="info"),
        )
        try:
            def send(raw):
                proc.stdin.write(raw if isinstance(raw, bytes) else json.dumps(raw).encode() + b"\n")
                proc.stdin.flush()

            send(b"{garbage\n")
            assert read_line(proc)["error"]["code"] == -32700
            send(b'{"jsonrpc":"2.0","id":77,"method":"initialize","params":{"pad":"' + b"a" * (12 << 20) + b'"}}\n')
            answer = read_line(proc)
            assert answer["id"] == 77 and answer["error"]["code"] == -32600
            send([INIT])
            assert "batch" in read_line(proc)["error"]["message"]
            send(INIT)
            init = read_line(proc)
            assert init["id"] == 1 and init["result"]["serverInfo"]["name"] == "isolate-service"
            send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            send({"jsonrpc": "2.0", "id": 2, "method": "nope/nope"})
            assert read_line(proc)["error"]["code"] == -32601
            send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"arguments": {}}})
            answer = read_line(proc)
            assert answer["id"] == 4 and answer["error"]["code"] == -32602
            send(b"\xff\xfe not utf-8\n")
            assert read_line(proc)["error"]["code"] == -32700
            send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                  "params": {"name": "run_javascript", "arguments": {"code": "6 * 7"}}})
            answer = read_line(proc)
            assert answer["id"] == 3 and answer["result"]["structuredContent"]["result"] == 42
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0
            # Nothing but protocol lines on stdout; the logs went to stderr.
            assert proc.stdout.read() == b""
            stderr.seek(0)
            assert "serving MCP on stdin and stdout" in stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
            stderr.close()
