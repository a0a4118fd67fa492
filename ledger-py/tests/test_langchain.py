"""`agent_ledger.langchain` against the real server: an agent loop driven by
a fake chat model calling real tools, and the refusals that must stop a
tool before it runs (escalation, quarantine, ledger down)."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any, List, Optional

import pytest
from conftest import CODE_HASH, passport_index, sha256_hex, summary, tree_end
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import BaseTool, tool

import agent_ledger
from agent_ledger.errors import AgentRevokedError, LedgerUnavailable
from agent_ledger.langchain import (
    LedgerCallbackHandler,
    ToolPolicy,
    ToolRefused,
    canonical_json,
    current_token,
    default_resource,
    resource_of,
    hidden_value,
)

SECRET = "invoice 7: ACME owes 1250 EUR"
SQL = "SELECT balance FROM accounts WHERE id = 1"


class Tools:
    """Real tools over a temporary file and SQLite database, recording
    which ran and the token each high-risk call saw."""

    def __init__(self, tmp_path: Path) -> None:
        self.notes = tmp_path / "notes.txt"
        self.notes.write_text(SECRET)
        self.db = tmp_path / "accounts.db"
        with sqlite3.connect(self.db) as conn:
            conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
            conn.execute("INSERT INTO accounts VALUES (1, 1250)")
        self.ran: List[str] = []
        self.tokens: List[Optional[str]] = []

        @tool
        def read_file(path: str) -> str:
            """Reads a text file."""
            self.ran.append("read_file")
            return Path(path).read_text()

        @tool
        def run_sql(sql: str) -> str:
            """Runs one SQL statement on the accounts database."""
            self.ran.append("run_sql")
            self.tokens.append(current_token())
            with sqlite3.connect(self.db) as conn:
                return json.dumps(conn.execute(sql).fetchall())

        @tool
        def transfer(target: str, amount: int) -> str:
            """Moves money to another account."""
            self.ran.append("transfer")
            return "done"

        self.read_file: BaseTool = read_file
        self.run_sql: BaseTool = run_sql
        self.transfer: BaseTool = transfer

    def by_name(self) -> dict:
        return {t.name: t for t in (self.read_file, self.run_sql, self.transfer)}


def run_agent(model, tools: dict, handler: LedgerCallbackHandler, question: str) -> List[BaseMessage]:
    """The smallest agent loop: call the model, run the tools it asks for,
    until it answers."""
    config: Any = {"callbacks": [handler]}
    messages: List[BaseMessage] = [HumanMessage(question)]
    while True:
        reply = model.invoke(messages, config=config)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        for call in reply.tool_calls:
            messages.append(tools[call["name"]].invoke(call, config=config))


def call(name: str, args: dict, call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


@pytest.fixture
def client(ledger, agent):
    agent_id, key_file, _ = agent
    return agent_ledger.Client(ledger.url, agent_id, key_file, code_hash=CODE_HASH)


def test_an_agent_loop_is_logged_in_order_and_verifies(ledger, agent, client, tmp_path):
    agent_id = agent[0]
    tools = Tools(tmp_path)
    model = FakeMessagesListChatModel(responses=[
        call("read_file", {"path": str(tools.notes)}, "call-1"),
        call("run_sql", {"sql": SQL}, "call-2"),
        AIMessage("ACME owes 1250 EUR and the balance is 1250."),
    ])
    after = tree_end(ledger)
    with LedgerCallbackHandler(client, ToolPolicy(high_risk={"run_sql"}, hidden_fields=["sql"])) as handler:
        messages = run_agent(model, tools.by_name(), handler, "What does ACME owe?")

    assert messages[-1].content.startswith("ACME owes")
    assert tools.ran == ["read_file", "run_sql"]
    assert json.loads(messages[4].content) == [[1250]]
    entries = ledger.entries_of(agent_id, after=after)
    assert summary(entries) == [
        ("action", "llm.call", None),
        ("action", "tool.read_file", "start"),
        ("action", "tool.read_file", "end"),
        ("action", "llm.call", None),
        ("attestation", None, None),
        ("token", "tool.run_sql", None),
        ("action", "tool.run_sql", "start"),
        ("action", "tool.run_sql", "end"),
        ("action", "llm.call", None),
    ]
    llm1, read_start, read_end, llm2, attestation, token, sql_start, sql_end, llm3 = (e["entry"] for e in entries)

    # Tools: resources per the default policy, one run id per call, the
    # digests hidden, the token's id in the start entry.
    assert read_start["resource"] == "tool/read_file"  # the path is not published
    assert read_start["data"]["call_id"] == read_end["data"]["call_id"] != sql_start["data"]["call_id"]
    assert set(read_start["hidden"]) == {"input_sha256"}
    assert set(read_end["hidden"]) == {"output_sha256"}
    assert sql_start["resource"] == sql_end["resource"] == token["resource"] == "tool/run_sql"
    assert set(sql_start["hidden"]) == {"input_sha256", "sql"}
    assert sql_start["data"]["token_jti"] == token["jti"]
    assert attestation["verdict"]["ok"] is True
    assert token["agent"] == agent_id and token["constraints"] == {"sql_sha256": sha256_hex(SQL)}

    # Models: one entry per call, both digests hidden.
    for llm in (llm1, llm2, llm3):
        assert llm["resource"] == "model/FakeMessagesListChatModel"
        assert set(llm["hidden"]) == {"prompt_sha256", "response_sha256"}
        assert set(llm["data"]) == {"call_id"}

    # Nothing of the inputs or outputs is public: not the text, not a digest
    # anyone could confirm a guess with.
    input_digest = sha256_hex(canonical_json({"path": str(tools.notes)}))
    public = json.dumps(entries) + "".join(base64.b64decode(e["leaf"]).decode() for e in entries)
    for clear in (input_digest, sha256_hex(SECRET), SECRET, SQL, sha256_hex(canonical_json({"sql": SQL}))):
        assert clear not in public

    # The agent can still prove what the input was.
    bundle = client.disclose(entries[1]["index"], {"reveal": ["input_sha256"]})
    assert input_digest in json.dumps(bundle)

    indices = [passport_index(ledger, agent_id)] + [e["index"] for e in entries]
    verified = ledger.verify_agent(tmp_path, indices)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_token_is_visible_to_the_high_risk_tool_only_while_it_runs(ledger, client, tmp_path):
    tools = Tools(tmp_path)
    handler = LedgerCallbackHandler(client, ToolPolicy(high_risk={"run_sql"}), log_llm=False)
    assert current_token() is None

    tools.run_sql.invoke({"sql": SQL}, config={"callbacks": [handler]})
    tools.read_file.invoke({"path": str(tools.notes)}, config={"callbacks": [handler]})

    (token,) = tools.tokens
    assert token is not None and token.startswith("v4.public.")
    assert current_token() is None
    # The log takes it for exactly this action, resource and statement.
    status, check = ledger.request("POST", "/v1/tokens/verify", {
        "token": token, "audience": "tool/run_sql", "action": "tool.run_sql", "sql": SQL,
    })
    assert status == 200 and check["valid"] is True, check


def test_an_async_tool_sees_its_token(client):
    seen: List[Optional[str]] = []

    @tool
    async def run_sql(sql: str) -> str:
        """Runs one SQL statement."""
        seen.append(current_token())
        return "[]"

    handler = LedgerCallbackHandler(client, ToolPolicy(high_risk={"run_sql"}))

    async def agent_step() -> Optional[str]:
        await run_sql.ainvoke({"sql": SQL}, config={"callbacks": [handler]})
        return current_token()

    assert asyncio.run(agent_step()) is None
    (token,) = seen
    assert token is not None and token.startswith("v4.public.")


def test_a_failing_tool_is_logged_by_its_error_type_only(ledger, agent, client):
    @tool
    def lookup(customer: str) -> str:
        """Looks a customer up."""
        raise KeyError(f"no customer {customer}")

    after = tree_end(ledger)
    with LedgerCallbackHandler(client) as handler, pytest.raises(KeyError):
        lookup.invoke({"customer": "ACME"}, config={"callbacks": [handler]})

    entries = ledger.entries_of(agent[0], after=after)
    assert summary(entries) == [("action", "tool.lookup", "start"), ("action", "tool.lookup", "error")]
    assert entries[1]["entry"]["data"]["error"] == "KeyError"
    assert "ACME" not in json.dumps(entries)


def test_a_tool_that_waits_for_a_human_never_runs(ledger, agent, client, tmp_path):
    tools = Tools(tmp_path)
    handler = LedgerCallbackHandler(client, ToolPolicy(high_risk={"transfer"}))
    after = tree_end(ledger)

    with pytest.raises(ToolRefused) as refused:
        tools.transfer.invoke({"target": "acct-9", "amount": 100}, config={"callbacks": [handler]})

    assert tools.ran == []
    assert isinstance(refused.value.escalation, int)
    assert ledger.entry(refused.value.escalation)["entry"]["kind"] == "escalation"
    assert current_token() is None
    assert summary(ledger.entries_of(agent[0], after=after)) == [("attestation", None, None)]


def test_a_quarantined_agent_runs_no_tool(ledger, agent, client, tmp_path):
    agent_id = agent[0]
    tools = Tools(tmp_path)
    handler = LedgerCallbackHandler(client, ToolPolicy(high_risk={"run_sql"}))
    status, body = ledger.request(
        "POST", f"/v1/agents/{urllib.parse.quote(agent_id, safe='')}/quarantine", {"note": "langchain tests"}, admin=True
    )
    assert status == 201, body

    for tool_, args in ((tools.read_file, {"path": str(tools.notes)}), (tools.run_sql, {"sql": SQL})):
        with pytest.raises(ToolRefused) as refused:
            tool_.invoke(args, config={"callbacks": [handler]})
        assert refused.value.code == "agent_revoked"
        assert isinstance(refused.value.__cause__, AgentRevokedError)
    assert tools.ran == []


def test_a_ledger_that_is_down_stops_the_tool(own_ledger, tmp_path):
    key = agent_ledger.Key.generate()
    agent_id = own_ledger.register("py-langchain-down", key)
    client = agent_ledger.Client(own_ledger.url, agent_id, key, retry_attempts=2)
    tools = Tools(tmp_path)
    handler = LedgerCallbackHandler(client)
    own_ledger.kill()

    with pytest.raises(ToolRefused) as refused:
        tools.read_file.invoke({"path": str(tools.notes)}, config={"callbacks": [handler]})

    assert isinstance(refused.value.__cause__, LedgerUnavailable)
    assert refused.value.code is None
    assert tools.ran == []


def test_finished_calls_wait_for_the_next_start_and_survive_an_outage(own_ledger, tmp_path):
    """A tool's end entry goes in one batch with the next tool's start; when
    the ledger is down the next tool is refused and the end entry stays
    queued, to be recorded, in order, once the ledger is back."""
    key = agent_ledger.Key.generate()
    agent_id = own_ledger.register("py-langchain-outage", key)
    client = agent_ledger.Client(own_ledger.url, agent_id, key, retry_attempts=2)
    tools = Tools(tmp_path)
    handler = LedgerCallbackHandler(client)
    tools.read_file.invoke({"path": str(tools.notes)}, config={"callbacks": [handler]})
    assert summary(own_ledger.entries_of(agent_id)) == [("action", "tool.read_file", "start")]

    own_ledger.kill()
    with pytest.raises(ToolRefused):
        tools.read_file.invoke({"path": "second"}, config={"callbacks": [handler]})
    own_ledger.start()
    tools.read_file.invoke({"path": str(tools.notes)}, config={"callbacks": [handler]})
    handler.close()

    entries = own_ledger.entries_of(agent_id)
    assert summary(entries) == [("action", "tool.read_file", p) for p in ("start", "end", "start", "end")]
    assert entries[1]["entry"]["data"]["call_id"] == entries[0]["entry"]["data"]["call_id"]
    assert entries[2]["index"] == entries[1]["index"] + 1
    assert tools.ran == ["read_file", "read_file"]


def test_periodic_attestation_stops_with_the_handler(ledger, agent, client):
    after = tree_end(ledger)
    with LedgerCallbackHandler(client, attest_every_s=0.2):
        deadline = time.monotonic() + 20
        while len(ledger.entries_of(agent[0], after=after)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    attested = len(ledger.entries_of(agent[0], after=after))
    time.sleep(0.5)

    assert attested >= 2
    assert len(ledger.entries_of(agent[0], after=after)) == attested


def test_a_policy_refuses_hidden_fields_the_log_would_refuse():
    with pytest.raises(ValueError):
        ToolPolicy(hidden_fields=["no spaces"])
    with pytest.raises(ValueError):
        ToolPolicy(hidden_fields=["input_sha256"])
    with pytest.raises(ValueError):
        ToolPolicy(hidden_fields=[f"f{i}" for i in range(16)])
    with pytest.raises(ValueError):
        hidden_value("note", "x" * 4097)


def test_hidden_values_and_default_resources():
    assert hidden_value("amount", 1250) == {"u64": 1250}
    assert hidden_value("delta", -3) == {"str": "-3"}
    assert hidden_value("flag", True) == {"str": "true"}
    assert hidden_value("rows", {"b": 1, "a": [2]}) == {"str": '{"a":[2],"b":1}'}
    assert default_resource("fetch", {"url": "https://example.org", "path": "/x"}) == "tool/fetch"
    opted_in = ToolPolicy(resource=lambda tool, args: resource_of(args, "path", f"tool/{tool}"))
    assert opted_in.resource_for("fetch", {"path": "/x"}) == "/x"
    assert opted_in.resource_for("fetch", {"path": 7}) == "tool/fetch"
    assert default_resource("fetch", "plain input") == "tool/fetch"
