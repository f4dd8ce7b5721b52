"""The MCP server driven by the official Python SDK over both transports."""

import base64

import anyio
import jsonschema
import pytest
from mcp.shared.exceptions import MCPError

pytestmark = pytest.mark.anyio

# (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
ADD_WASM = bytes.fromhex(
    "0061736d01000000" "01070160027f7f017f" "03020100" "070701036164640000" "0a09010700200020016a0b"
)
# (module (func (export "boom") unreachable))
TRAP_WASM = bytes.fromhex(
    "0061736d01000000" "0104016000" "00" "03020100" "07080104626f6f6d0000" "0a05010300000b"
)


async def tools_by_name(session):
    return {t.name: t for t in (await session.list_tools()).tools}


def check_output(tool, result):
    """The structured content of every result (failures too) matches the tool's output schema."""
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, tool.output_schema)
    assert result.content and result.content[0].type == "text"


async def test_initialize_and_list_tools(connect):
    async with connect() as session:
        tools = await tools_by_name(session)
    assert set(tools) == {"run_javascript", "validate_code", "compile_wasm", "run_wasm"}
    for tool in tools.values():
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema["type"] == "object"
        assert len(tool.description) > 100
    run = tools["run_javascript"]
    assert run.input_schema["required"] == ["code"]
    assert run.input_schema["properties"]["preset"]["enum"] == ["minimal", "compute", "data", "agent"]
    assert "last expression" in run.description and "agent" in run.description


async def test_run_javascript_result_logs_and_stats(connect):
    async with connect() as session:
        tools = await tools_by_name(session)
        r = await session.call_tool(
            "run_javascript", {"code": "console.log('hi', env.n); env.n * 2", "env": {"n": 21}}
        )
    assert not r.is_error
    check_output(tools["run_javascript"], r)
    s = r.structured_content
    assert s["success"] is True and s["result"] == 42
    assert s["logs"][0]["message"] == "hi 21" and s["logs"][0]["level"] == "log"
    assert s["stats"]["preset"] == "compute"
    assert "result: 42" in r.content[0].text and "hi 21" in r.content[0].text


async def test_return_mode_and_presets(connect):
    async with connect() as session:
        r = await session.call_tool("run_javascript", {"code": "return typeof Buffer", "preset": "data"})
        assert r.structured_content["result"] == "function"
        r = await session.call_tool("run_javascript", {"code": "typeof Map", "preset": "minimal"})
        assert r.structured_content["result"] == "undefined"


async def test_a_syntax_error_is_a_failed_run_with_a_position(connect):
    async with connect() as session:
        tools = await tools_by_name(session)
        r = await session.call_tool("run_javascript", {"code": "let x = ;"})
    assert r.is_error
    check_output(tools["run_javascript"], r)
    e = r.structured_content["error"]
    assert e["name"] == "SyntaxError" and e["type"] == "RUNTIME"
    assert e["line"] == 1


async def test_a_thrown_error_is_a_failed_run(connect):
    async with connect() as session:
        tools = await tools_by_name(session)
        r = await session.call_tool(
            "run_javascript", {"code": "console.warn('before');\nthrow new TypeError('boom')"}
        )
    assert r.is_error
    check_output(tools["run_javascript"], r)
    s = r.structured_content
    assert s["error"]["type"] == "RUNTIME" and s["error"]["name"] == "TypeError"
    assert s["error"]["message"] == "boom"
    assert s["logs"][0]["message"] == "before"
    assert "TypeError: boom" in r.content[0].text


async def test_a_timeout_is_a_failed_run(connect):
    async with connect() as session:
        r = await session.call_tool("run_javascript", {"code": "for (;;) {}", "timeout": 200})
    assert r.is_error
    assert r.structured_content["error"]["type"] == "TIMEOUT"


async def test_typescript(connect):
    async with connect() as session:
        r = await session.call_tool(
            "run_javascript",
            {"code": "interface P { x: number }\nconst p: P = { x: 4 };\np.x * 2", "language": "typescript"},
        )
    assert not r.is_error, r.content
    assert r.structured_content["result"] == 8


async def test_malformed_calls_are_json_rpc_errors(connect):
    async with connect() as session:
        with pytest.raises(MCPError) as e:
            await session.call_tool("run_javascript", {"code": "1", "preset": "nope"})
        assert e.value.code == -32602 and 'Unknown preset "nope"' in e.value.message
        assert "compute" in e.value.data["presets"]
        with pytest.raises(MCPError) as e:
            await session.call_tool("run_javascript", {"code": 5})
        assert e.value.code == -32602 and '"code"' in e.value.message
        with pytest.raises(MCPError) as e:
            await session.call_tool("run_javascript", {"code": "1", "timeout": "soon"})
        assert e.value.code == -32602 and "timeout" in e.value.message
        with pytest.raises(MCPError) as e:
            await session.call_tool("run_javascript", {"code": "1", "cdoe": "x"})
        assert e.value.code == -32602 and "cdoe" in e.value.message
        with pytest.raises(MCPError) as e:
            await session.call_tool("run_python", {"code": "1"})
        assert e.value.code == -32602 and "Unknown tool" in e.value.message
        with pytest.raises(MCPError) as e:
            await session.call_tool("run_javascript", {})
        assert e.value.code == -32602 and "code" in e.value.message
        # The session still works after refused calls.
        r = await session.call_tool("run_javascript", {"code": "1 + 1"})
        assert r.structured_content["result"] == 2


async def test_validate_code(connect):
    async with connect() as session:
        tools = await tools_by_name(session)
        ok = await session.call_tool("validate_code", {"code": "const a = 1; a + 1"})
        bad = await session.call_tool("validate_code", {"code": "const a = ;\n", "language": "javascript"})
        ts = await session.call_tool("validate_code", {"code": "let n: number = 1", "language": "typescript"})
    assert not ok.is_error and ok.structured_content == {"valid": True}
    assert not bad.is_error and bad.structured_content["valid"] is False
    check_output(tools["validate_code"], bad)
    assert bad.structured_content["error"]["type"] == "SYNTAX"
    assert bad.structured_content["error"]["line"] == 1
    assert ts.structured_content["valid"] is True


async def test_wasm_round_trip(connect):
    async with connect() as session:
        tools = await tools_by_name(session)
        c = await session.call_tool("compile_wasm", {"bytes": base64.b64encode(ADD_WASM).decode()})
        assert not c.is_error, c.content
        check_output(tools["compile_wasm"], c)
        module = c.structured_content["moduleId"]
        assert {"name": "add", "kind": "function"} in c.structured_content["exports"]
        r = await session.call_tool("run_wasm", {"moduleId": module, "entry": "add", "args": [2, 40]})
        assert not r.is_error, r.content
        check_output(tools["run_wasm"], r)
        assert r.structured_content["result"] == 42
        missing = await session.call_tool("run_wasm", {"moduleId": "0" * 64})
        assert missing.is_error and missing.structured_content["error"]["type"] == "MODULE_NOT_FOUND"
        check_output(tools["run_wasm"], missing)
        bad = await session.call_tool("compile_wasm", {"bytes": base64.b64encode(b"\0asm junk").decode()})
        assert bad.is_error and bad.structured_content["error"]["type"] == "COMPILE_ERROR"
        check_output(tools["compile_wasm"], bad)
        with pytest.raises(MCPError) as e:
            await session.call_tool("compile_wasm", {"bytes": "not base64!"})
        assert e.value.code == -32602


async def test_wasm_trap_is_a_failed_run(connect):
    async with connect() as session:
        c = await session.call_tool("compile_wasm", {"bytes": base64.b64encode(TRAP_WASM).decode()})
        assert not c.is_error, c.content
        r = await session.call_tool("run_wasm", {"moduleId": c.structured_content["moduleId"]})
    assert r.is_error
    assert r.structured_content["error"]["type"] == "WASM_TRAP"
    assert r.structured_content["error"]["name"] == "RuntimeError"


async def test_console_output_as_log_notifications(connect):
    received = []

    async def on_log(params):
        received.append(params)

    async with connect(logging_callback=on_log) as session:
        # No level set: no log messages.
        await session.call_tool("run_javascript", {"code": "console.log('quiet'); 1"})
        await session.set_logging_level("info")
        r = await session.call_tool(
            "run_javascript", {"code": "console.debug('d'); console.log('l'); console.error('e'); 1"}
        )
        assert not r.is_error
        for _ in range(50):
            if len(received) >= 2:
                break
            await anyio.sleep(0.05)
    messages = [(p.level, p.logger, p.data["message"]) for p in received]
    assert messages == [("info", "console", "l"), ("error", "console", "e")]
    assert received[0].data["executionId"] == r.structured_content["executionId"]


async def test_eight_concurrent_calls(connect):
    async with connect() as session:
        results = {}

        async def one(i):
            r = await session.call_tool(
                "run_javascript", {"code": f"await new Promise(r => setTimeout(r, 100)); {i} * 10"}
            )
            results[i] = r

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(one, i)
    assert sorted(results) == list(range(8))
    for i, r in results.items():
        assert not r.is_error, r.content
        assert r.structured_content["result"] == i * 10


async def test_a_cancelled_call_leaves_no_busy_worker(service):
    from conftest import http_session

    async with http_session(service) as session:
        with anyio.move_on_after(1):
            await session.call_tool("run_javascript", {"code": "for (;;) {}", "timeout": 20000})
        # The cancelled run's worker is killed; the pool is idle again well before 20 s.
        for _ in range(100):
            if service.health()["workers"]["busy"] == 0:
                break
            await anyio.sleep(0.1)
        assert service.health()["workers"]["busy"] == 0
        r = await session.call_tool("run_javascript", {"code": "'still serving'"})
        assert r.structured_content["result"] == "still serving"
