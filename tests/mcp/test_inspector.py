"""The MCP Inspector's command-line mode (from the npm registry) against /mcp.

Its CLI (0.15) has no option for request headers, so it talks to an instance without a token
(the default configuration, listening on 127.0.0.1 only). Set MCP_INSPECTOR=0 to skip."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import Service


@pytest.mark.skipif(os.environ.get("MCP_INSPECTOR") == "0", reason="MCP_INSPECTOR=0")
def test_inspector_cli_lists_and_calls_tools():
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx is not installed")
    s = Service(token=None)
    try:
        def inspector(*args):
            out = subprocess.run(
                [npx, "-y", "@modelcontextprotocol/inspector@0.15", "--cli", s.mcp_url,
                 "--transport", "http", *args],
                capture_output=True, text=True, timeout=600,
            )
            assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
            return json.loads(out.stdout)

        listed = inspector("--method", "tools/list")
        names = {t["name"] for t in listed["tools"]}
        assert names == {"run_javascript", "validate_code", "compile_wasm", "run_wasm"}
        called = inspector("--method", "tools/call", "--tool-name", "run_javascript",
                           "--tool-arg", "code=6*7")
        assert called["structuredContent"]["result"] == 42
    finally:
        s.stop()
