"""Fixtures: the real release binary, started on a free port (HTTP) or as a subprocess (stdio),
and MCP sessions made with the official Python SDK."""

import os
import re
import signal
import subprocess
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("ISOLATE_BINARY", ROOT / "target" / "release" / "isolate-service"))
TOKEN = "mcp-test-token-0123456789"

CONFIG = """
[auth]
{token_line}
rate_limit_per_minute = {rate}

[workers]
prewarm = 2
max_concurrent = 8
"""


def write_config(directory, rate=0, token=TOKEN):
    path = Path(directory) / "config.toml"
    token_line = f'token = "{token}"' if token else ""
    path.write_text(CONFIG.format(token_line=token_line, rate=rate))
    return path


def descendants(pid):
    """Every live process below `pid` (the zygote and its workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Service:
    """One isolate-service process serving HTTP on a free port."""

    def __init__(self, rate=0, extra_env=None, token=TOKEN):
        if not BINARY.exists():
            pytest.fail(f"{BINARY} is missing: run cargo build --release first")
        self.dir = tempfile.TemporaryDirectory()
        config = write_config(self.dir.name, rate, token)
        env = dict(os.environ, ISOLATE_PORT="0", ISOLATE_HOST="127.0.0.1", ISOLATE_LOG_LEVEL="warn")
        env.update(extra_env or {})
        self.stderr = open(Path(self.dir.name) / "stderr.log", "w+")
        self.proc = subprocess.Popen(
            [str(BINARY), "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
            text=True,
        )
        deadline = time.time() + 60
        self.url = None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1)
                break
        if self.url is None:
            self.proc.kill()
            self.stderr.seek(0)
            pytest.fail("the service did not start: " + self.stderr.read()[-2000:])
        self.mcp_url = self.url + "/mcp"

    def health(self):
        return httpx2.get(self.url + "/health", timeout=10).json()

    def stop(self):
        below = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("the service did not stop on SIGTERM")
        deadline = time.time() + 10
        while time.time() < deadline and any(alive(p) for p in below):
            time.sleep(0.1)
        left = [p for p in below if alive(p)]
        self.stderr.close()
        self.dir.cleanup()
        assert not left, f"processes left behind after shutdown: {left}"


@pytest.fixture(scope="session")
def service():
    s = Service()
    yield s
    s.stop()


@pytest.fixture
def anyio_backend():
    return "asyncio"


@asynccontextmanager
async def http_session(service, token=TOKEN, logging_callback=None, headers=None):
    h = {"Authorization": f"Bearer {token}"} if token else {}
    h.update(headers or {})
    async with create_mcp_http_client(headers=h) as client:
        async with streamable_http_client(service.mcp_url, http_client=client) as (read, write):
            async with ClientSession(read, write, logging_callback=logging_callback) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def stdio_session(logging_callback=None):
    with tempfile.TemporaryDirectory() as d:
        config = write_config(d)
        params = StdioServerParameters(
            command=str(BINARY),
            args=["mcp", "--config", str(config)],
            env={"ISOLATE_LOG_LEVEL": "warn"},
        )
        with open(Path(d) / "stderr.log", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, logging_callback=logging_callback) as session:
                    await session.initialize()
                    yield session


@pytest.fixture(params=["http", "stdio"])
def connect(request, service):
    """A function that opens an MCP session over the transport under test."""
    if request.param == "http":
        return lambda **kw: http_session(service, **kw)
    return lambda **kw: stdio_session(**kw)
