"""`agent-ledger-mcp-guard` end to end: a real MCP client (the SDK's
`ClientSession`) launches the guard, which launches a real MCP server
(`mcp_demo_server.py`, SQLite), against the real ledger server. The demo
server's calls log proves what was forwarded and what was not."""

from __future__ import annotations

import base64
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, List, TextIO, TypeVar

import anyio
import pytest
from conftest import CODE_HASH, free_port, passport_index, sha256_hex, summary, tree_end
from mcp import Client, ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import agent_ledger
from agent_ledger.mcp_guard import LEDGER_REFUSED, canonical_json, default_resource, parse_args

PY_ROOT = Path(__file__).resolve().parents[1]
DEMO_SERVER = Path(__file__).with_name("mcp_demo_server.py")
SECRET = "invoice 7: ACME owes 1250 EUR"
SQL = "SELECT balance FROM accounts WHERE id = 1"
# Bounds every scenario: guard and demo server start, calls, and the
# ledger's retries when it is down (about 5 s per step).
SCENARIO_TIMEOUT_S = 120

T = TypeVar("T")


def public_text(entries: List[dict]) -> str:
    """Everything anyone can read of `entries`: the decoded entries and the leaves."""
    return json.dumps(entries) + "".join(base64.b64decode(e["leaf"]).decode(errors="replace") for e in entries)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Runs an async scenario, bounded."""

    async def bounded() -> T:
        with anyio.fail_after(SCENARIO_TIMEOUT_S):
            return await scenario()

    return anyio.run(bounded)


class Demo:
    """The demo server's files: a note, a database, the calls log."""

    def __init__(self, tmp_path: Path, name: str = "demo") -> None:
        root = tmp_path / name
        root.mkdir()
        self.notes = root / "notes.txt"
        self.notes.write_text(SECRET)
        self.db = root / "accounts.db"
        with sqlite3.connect(self.db) as conn:
            conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
            conn.execute("INSERT INTO accounts VALUES (1, 1250)")
        self.calls_log = root / "calls.jsonl"
        self.guard_log = root / "guard.stderr"

    def calls(self) -> List[dict]:
        """The calls that reached the demo server, in order."""
        if not self.calls_log.exists():
            return []
        return [json.loads(line) for line in self.calls_log.read_text().splitlines()]

    def command(self) -> List[str]:
        return [sys.executable, str(DEMO_SERVER), "--db", str(self.db), "--calls-log", str(self.calls_log)]

    def stderr(self) -> str:
        return self.guard_log.read_text() if self.guard_log.exists() else ""


def guard_args(ledger_url: str, agent_id: str, key_file: Path, demo: Demo, *options: str) -> List[str]:
    """`python -m agent_ledger.mcp_guard …` in front of the demo server, `run_sql` high-risk."""
    return [
        "-m", "agent_ledger.mcp_guard",
        "--ledger", ledger_url, "--agent", agent_id, "--key-file", str(key_file), "--code-hash", CODE_HASH,
        "--high-risk", "run_sql", *options,
        "--", *demo.command(),
    ]


@asynccontextmanager
async def guarded(args: List[str], errlog: TextIO) -> AsyncIterator[ClientSession]:
    """A client session with the guard, launched over stdio (with this
    process's environment, so it imports this `agent_ledger`)."""
    params = StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ), cwd=str(PY_ROOT))
    async with stdio_client(params, errlog=errlog) as (read_stream, write_stream):
        async with ClientSession(read_stream, write_stream) as session:
            await session.initialize()
            yield session


def text_of(result: Any) -> str:
    assert not result.is_error, result
    (content,) = result.content
    return content.text


def test_tools_are_listed_and_a_call_is_logged_before_it_is_forwarded(ledger, agent, tmp_path):
    agent_id, key_file, _ = agent
    demo = Demo(tmp_path)
    after = tree_end(ledger)

    async def scenario() -> Any:
        with open(demo.guard_log, "w") as errlog:
            async with guarded(guard_args(ledger.url, agent_id, key_file, demo), errlog) as session:
                tools = await session.list_tools()
                assert sorted(t.name for t in tools.tools) == ["read_file", "run_sql", "transfer"]
                assert demo.calls() == []
                # A tool the upstream does not list is neither logged nor forwarded.
                with pytest.raises(MCPError) as unknown:
                    await session.call_tool("exfiltrate: " + SECRET, {"path": str(demo.notes)})
                assert unknown.value.error.code == LEDGER_REFUSED
                assert unknown.value.error.data["reason"] == "unknown_tool"
                return await session.call_tool("read_file", {"path": str(demo.notes)})

    result = run(scenario)

    assert text_of(result) == SECRET, demo.stderr()
    assert demo.calls() == [{"tool": "read_file", "arguments": {"path": str(demo.notes)}, "token": None}]
    entries = ledger.entries_of(agent_id, after=after)
    assert summary(entries) == [("action", "tool.read_file", "start"), ("action", "tool.read_file", "end")]
    call, answer = (e["entry"] for e in entries)
    call_id = call["data"]["call_id"]
    assert call["resource"] == answer["resource"] == "mcp/read_file"
    assert call["data"] == {"phase": "start", "call_id": call_id}
    assert answer["data"] == {"phase": "end", "call_id": call_id, "is_error": False}
    assert set(call["hidden"]) == {"input_sha256"}
    assert set(answer["hidden"]) == {"output_sha256"}

    # Nothing of the arguments or the result is public, not even a digest
    # anyone could confirm a guess with.
    arguments_digest = sha256_hex(canonical_json({"path": str(demo.notes)}))
    public = public_text(entries)
    for clear in (SECRET, sha256_hex(SECRET), arguments_digest, str(demo.notes)):
        assert clear not in public

    # The agent can still prove what the arguments were.
    client = agent_ledger.Client(ledger.url, agent_id, key_file)
    bundle = client.disclose(entries[0]["index"], {"reveal": ["input_sha256"]})
    assert arguments_digest in json.dumps(bundle)

    indices = [passport_index(ledger, agent_id)] + [e["index"] for e in entries]
    verified = ledger.verify_agent(tmp_path, indices)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_concurrent_calls_are_each_recorded(ledger, agent, tmp_path):
    agent_id, key_file, _ = agent
    demo = Demo(tmp_path)
    after = tree_end(ledger)
    results: List[Any] = []

    async def scenario() -> None:
        with open(demo.guard_log, "w") as errlog:
            async with guarded(guard_args(ledger.url, agent_id, key_file, demo), errlog) as session:

                async def one() -> None:
                    results.append(await session.call_tool("read_file", {"path": str(demo.notes)}))

                async with anyio.create_task_group() as calls:
                    for _ in range(6):
                        calls.start_soon(one)

    run(scenario)

    assert [text_of(r) for r in results] == [SECRET] * 6, demo.stderr()
    assert len(demo.calls()) == 6
    entries = [e["entry"] for e in ledger.entries_of(agent_id, after=after)]
    calls = [e["data"]["call_id"] for e in entries if e["data"]["phase"] == "start"]
    answers = [e["data"]["call_id"] for e in entries if e["data"]["phase"] == "end"]
    assert len(entries) == 12 and len(set(calls)) == 6 and sorted(calls) == sorted(answers)


def test_a_high_risk_call_attests_and_forwards_its_token(ledger, agent, tmp_path):
    agent_id, key_file, _ = agent
    demo = Demo(tmp_path)
    after = tree_end(ledger)

    async def scenario() -> Any:
        with open(demo.guard_log, "w") as errlog:
            async with guarded(guard_args(ledger.url, agent_id, key_file, demo), errlog) as session:
                return await session.call_tool("run_sql", {"sql": SQL})

    result = run(scenario)

    assert json.loads(text_of(result)) == [[1250]], demo.stderr()
    entries = ledger.entries_of(agent_id, after=after)
    assert summary(entries) == [
        ("attestation", None, None),
        ("token", "tool.run_sql", None),
        ("action", "tool.run_sql", "start"),
        ("action", "tool.run_sql", "end"),
    ]
    attestation, token, call, answer = (e["entry"] for e in entries)
    assert attestation["verdict"]["ok"] is True
    assert token["resource"] == call["resource"] == answer["resource"] == "mcp/run_sql"
    assert token["constraints"] == {"sql_sha256": sha256_hex(SQL)}
    assert call["data"]["token_jti"] == token["jti"]
    assert answer["data"] == {"phase": "end", "call_id": call["data"]["call_id"], "is_error": False}
    assert SQL not in public_text(entries)

    # The upstream got the token in `_meta`, and the log takes it for
    # exactly this action, resource and statement.
    (forwarded,) = demo.calls()
    assert forwarded["arguments"] == {"sql": SQL}
    assert forwarded["token"].startswith("v4.public.")
    status, check = ledger.request("POST", "/v1/tokens/verify", {
        "token": forwarded["token"], "audience": "mcp/run_sql", "action": "tool.run_sql", "sql": SQL,
    })
    assert status == 200 and check["valid"] is True, check

    indices = [passport_index(ledger, agent_id)] + [e["index"] for e in entries]
    verified = ledger.verify_agent(tmp_path, indices)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_quarantined_agent_is_refused_and_nothing_is_forwarded(ledger, agent, tmp_path):
    agent_id, key_file, _ = agent
    demo = Demo(tmp_path)

    async def scenario() -> List[MCPError]:
        refusals = []
        with open(demo.guard_log, "w") as errlog:
            async with guarded(guard_args(ledger.url, agent_id, key_file, demo), errlog) as session:
                status, body = ledger.request(
                    "POST", f"/v1/agents/{urllib.parse.quote(agent_id, safe='')}/quarantine",
                    {"note": "mcp guard tests"}, admin=True,
                )
                assert status == 201, body
                for name, arguments in (("read_file", {"path": str(demo.notes)}), ("run_sql", {"sql": SQL})):
                    with pytest.raises(MCPError) as refused:
                        await session.call_tool(name, arguments)
                    refusals.append(refused.value)
        return refusals

    after = tree_end(ledger)
    refusals = run(scenario)

    for refusal, name in zip(refusals, ("read_file", "run_sql")):
        assert refusal.code == LEDGER_REFUSED
        assert refusal.message.startswith(f"agent-ledger refused {name}: agent_revoked: "), refusal.message
        assert refusal.data == {"tool": name, "reason": "refused", "code": "agent_revoked", "status": 403}
    assert demo.calls() == []
    kinds = {e["entry"]["kind"] for e in ledger.entries_of(agent_id, after=after)}
    assert not kinds & {"action", "token"}


def test_a_call_that_waits_for_a_human_is_refused(ledger, agent, tmp_path):
    agent_id, key_file, _ = agent
    demo = Demo(tmp_path)
    after = tree_end(ledger)

    async def scenario() -> MCPError:
        with open(demo.guard_log, "w") as errlog:
            args = guard_args(ledger.url, agent_id, key_file, demo, "--high-risk", "transfer")
            async with guarded(args, errlog) as session:
                with pytest.raises(MCPError) as refused:
                    await session.call_tool("transfer", {"target": "acct-9", "amount": 100})
                return refused.value

    refusal = run(scenario)

    assert refusal.code == LEDGER_REFUSED
    assert refusal.data["reason"] == "escalation" and refusal.data["code"] is None
    assert ledger.entry(refusal.data["escalation"])["entry"]["kind"] == "escalation"
    assert "waits for a human" in refusal.message
    assert demo.calls() == []
    assert summary(ledger.entries_of(agent_id, after=after)) == [("attestation", None, None)]


def test_a_ledger_that_is_down_refuses_unless_fail_open(own_ledger, tmp_path):
    key_file = tmp_path / "down.key"
    agent_id = own_ledger.register("py-mcp-down", agent_ledger.Key.load_or_create(key_file))
    closed, open_ = Demo(tmp_path, "closed"), Demo(tmp_path, "open")

    async def scenario() -> tuple:
        with open(closed.guard_log, "w") as closed_log, open(open_.guard_log, "w") as open_log:
            async with guarded(guard_args(own_ledger.url, agent_id, key_file, closed), closed_log) as fail_closed, \
                    guarded(guard_args(own_ledger.url, agent_id, key_file, open_, "--fail-open"), open_log) as fail_open:
                await fail_closed.list_tools()
                await fail_open.list_tools()
                own_ledger.kill()
                outcomes: dict = {}

                async def refused() -> None:
                    with pytest.raises(MCPError) as raised:
                        await fail_closed.call_tool("read_file", {"path": str(closed.notes)})
                    outcomes["refused"] = raised.value

                async def forwarded() -> None:
                    outcomes["forwarded"] = await fail_open.call_tool("read_file", {"path": str(open_.notes)})

                # Side by side: each waits out the client's retries (about 5 s).
                async with anyio.create_task_group() as calls:
                    calls.start_soon(refused)
                    calls.start_soon(forwarded)
                return outcomes["refused"], outcomes["forwarded"]

    refusal, forwarded = run(scenario)

    assert refusal.code == LEDGER_REFUSED
    assert refusal.message.startswith("agent-ledger refused read_file: the ledger cannot be reached"), refusal.message
    assert refusal.data == {"tool": "read_file", "reason": "unreachable", "code": None, "status": None}
    assert closed.calls() == []
    assert text_of(forwarded) == SECRET
    assert [c["tool"] for c in open_.calls()] == ["read_file"]
    assert "fail-open" in open_.stderr()


def wait_for_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the guard exited {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the guard did not listen on {port}: {log.read_text()}")


def test_the_guard_serves_streamable_http(ledger, agent, tmp_path):
    agent_id, key_file, _ = agent
    demo = Demo(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    after = tree_end(ledger)
    with open(demo.guard_log, "w") as errlog:
        proc = subprocess.Popen(
            [sys.executable, *guard_args(ledger.url, agent_id, key_file, demo, "--listen", f"127.0.0.1:{port}")],
            stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog, cwd=PY_ROOT,
        )
    try:
        wait_for_port(port, proc, demo.guard_log)

        async def scenario() -> tuple:
            # The handshake era (initialize), as `ClientSession` speaks it.
            async with streamable_http_client(url) as (read_stream, write_stream):
                async with ClientSession(read_stream, write_stream) as session:
                    await session.initialize()
                    tools = await session.list_tools()
                    first = await session.call_tool("read_file", {"path": str(demo.notes)})
            # The high-level client, which negotiates the newest protocol.
            async with Client(url) as client:
                second = await client.call_tool("run_sql", {"sql": SQL})
            return tools, first, second

        tools, first, second = run(scenario)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    assert sorted(t.name for t in tools.tools) == ["read_file", "run_sql", "transfer"]
    assert text_of(first) == SECRET
    assert json.loads(text_of(second)) == [[1250]]
    assert [c["tool"] for c in demo.calls()] == ["read_file", "run_sql"]
    assert summary(ledger.entries_of(agent_id, after=after)) == [
        ("action", "tool.read_file", "start"),
        ("action", "tool.read_file", "end"),
        ("attestation", None, None),
        ("token", "tool.run_sql", None),
        ("action", "tool.run_sql", "start"),
        ("action", "tool.run_sql", "end"),
    ]
    # SIGTERM is a clean shutdown.
    assert proc.returncode == 0, demo.stderr()


def test_the_command_line_needs_exactly_one_upstream():
    base = ["--ledger", "http://127.0.0.1:1", "--agent", "spiffe://example.org/agent/a", "--key-file", "k"]
    with pytest.raises(SystemExit):
        parse_args(base)
    with pytest.raises(SystemExit):
        parse_args([*base, "--upstream-url", "http://127.0.0.1:2/mcp", "--", "server"])
    with pytest.raises(SystemExit):
        parse_args([*base, "--high-risk", "run_sql", "--", "server"])
    with pytest.raises(SystemExit):
        parse_args([*base, "--code-hash", "c0" * 31, "--", "server"])
    options = parse_args([*base, "--listen", "[::1]:8765", "--", "server", "--flag", "--"])
    assert options.upstream_command == ("server", "--flag", "--")
    assert options.listen == ("::1", 8765)


def test_resources_are_public_only_when_the_operator_names_the_argument():
    assert default_resource("fetch", {"url": "https://example.org", "path": "/x"}) == "mcp/fetch"
    assert default_resource("fetch", {"url": "https://example.org", "path": "/x"}, "path") == "/x"
    assert default_resource("fetch", {"url": 7}, "url") == "mcp/fetch"
    assert default_resource("fetch", {}) == "mcp/fetch"
    options = parse_args(["--ledger", "http://l", "--agent", "spiffe://example.org/agent/a", "--key-file", "k",
                          "--resource-arg", "run_sql=db", "--", "server"])
    assert dict(options.resource_args) == {"run_sql": "db"}
    with pytest.raises(SystemExit):
        parse_args(["--ledger", "http://l", "--agent", "spiffe://example.org/agent/a", "--key-file", "k",
                    "--listen", "0.0.0.0:8765", "--", "server"])
