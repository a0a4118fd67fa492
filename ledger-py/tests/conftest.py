"""Fixtures: the real `ledger-server` binary on loopback, with its own
RocksDB under a temporary directory, and helpers to register agents and
make admin calls. The binaries come from `$CARGO_TARGET_DIR/release`
(`make test` builds them first)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest

import agent_ledger

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/agent-ledger-target")) / "release"
ORIGIN = "test.example/agent-ledger"
TRUST_DOMAIN = "example.org"
ADMIN_TOKEN = "python-tests-admin-token-0123456789abcdef"
CODE_HASH = "c0" * 32

# The example policy with action-token classes: SQL through the MCP guard or
# a LangChain tool needs a fresh attestation and score 60; payments need a
# human.
TOKEN_CLASSES = """
[tokens.default]
min_score = 40
max_lifetime_s = 10
fresh_attestation_s = 0
human_approval = false
single_use = true

[tokens.classes.high]
min_score = 60
max_lifetime_s = 10
fresh_attestation_s = 300
human_approval = false
single_use = true

[tokens.classes.critical]
min_score = 40
max_lifetime_s = 30
fresh_attestation_s = 0
human_approval = true
single_use = true

[[tokens.rules]]
action = "tool.run_sql"
resource = "*"
class = "high"

[[tokens.rules]]
action = "tool.transfer"
resource = "*"
class = "critical"
"""


def bin_path(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: build it first (make build)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LedgerServer:
    """A `ledger-server` process on its own data directory."""

    # More flags for the next start (e.g. `--witness`), set before a restart.
    extra_args: tuple[str, ...] = ()

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.origin = ORIGIN
        self.admin_token = ADMIN_TOKEN
        self.proc: Optional[subprocess.Popen] = None
        policy = data_dir.parent / f"{data_dir.name}-policy.toml"
        policy.write_text((ROOT / "docs/policy.example.toml").read_text() + TOKEN_CLASSES)
        self.policy = policy
        self.start()
        self.log_key = self.get("/v1/log/key").strip()

    def start(self) -> None:
        log = open(self.data_dir.parent / f"{self.data_dir.name}-server.log", "ab")
        self.proc = subprocess.Popen(
            [
                str(bin_path("ledger-server")),
                "--listen", f"127.0.0.1:{self.port}",
                "--origin", ORIGIN,
                "--trust-domain", TRUST_DOMAIN,
                "--data-dir", str(self.data_dir),
                "--policy", str(self.policy),
                *self.extra_args,
            ],
            env={**os.environ, "LEDGER_ADMIN_TOKEN": ADMIN_TOKEN, "LEDGER_LOG": "warn"},
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"ledger-server exited {self.proc.returncode}; see {log.name}")
                time.sleep(0.02)
        raise RuntimeError(f"ledger-server did not come up; see {log.name}")

    def kill(self) -> None:
        """SIGKILL: no chance to flush or clean up."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=20)
            self.proc = None

    def request(self, method: str, path: str, body: Any = None, admin: bool = False,
                content_type: str = "application/json") -> tuple[int, Any]:
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", content_type)
        if admin:
            req.add_header("authorization", f"Bearer {self.admin_token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
                status = resp.status
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            status = e.code
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return resp.read().decode()

    def register(self, name: str, key: "agent_ledger.Key", code_hash: str = CODE_HASH) -> str:
        """Registers `spiffe://example.org/agent/<name>` with `key`; returns its id."""
        agent_id = f"spiffe://{TRUST_DOMAIN}/agent/{name}"
        agent_ledger.register(self.url, self.admin_token, {
            "agent": agent_id, "public_key": key.public_key, "code_hash": code_hash,
            "owner": "python tests", "purpose": "tests the Python SDK",
        })
        return agent_id

    def entry(self, index: int) -> dict:
        return json.loads(self.get(f"/v1/entries/{index}"))

    def entries_of(self, agent_id: str, after: int = -1) -> list[dict]:
        """The decoded entries written by `agent_id` after index `after`, in log order."""
        # Up to the first index not there yet: the checkpoint may trail the
        # entries already acknowledged.
        out = []
        i = after + 1
        while True:
            status, e = self.request("GET", f"/v1/entries/{i}")
            if status == 404:
                return out
            assert status == 200, e
            if e["entry"].get("agent") == agent_id and e["entry"]["kind"] in ("action", "attestation", "rotation", "token"):
                out.append(e)
            i += 1

    def proof_bundle(self, index: int) -> str:
        return self.get(f"/v1/proof/bundle?index={index}")

    def verify_agent(self, tmp: Path, indices: list[int]) -> subprocess.CompletedProcess:
        """`ledger-verify agent` over the tlog-proof bundles of `indices`."""
        files = []
        for i in indices:
            f = tmp / f"{i}.tlog-proof"
            f.write_text(self.proof_bundle(i))
            files.append(str(f))
        return subprocess.run([str(bin_path("ledger-verify")), "agent", "--key", self.log_key, *files],
                              capture_output=True, text=True, timeout=120)

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def sha256_hex(text: str) -> str:
    """The digest the wrappers commit to, recomputed here independently."""
    return hashlib.sha256(text.encode()).hexdigest()


def tree_end(ledger: LedgerServer) -> int:
    """The index of the last entry in the latest checkpoint."""
    return int(ledger.get("/v1/checkpoint").splitlines()[1]) - 1


def passport_index(ledger: LedgerServer, agent_id: str) -> int:
    """The index of `agent_id`'s passport entry."""
    for i in range(tree_end(ledger), -1, -1):
        entry = ledger.entry(i)["entry"]
        if entry["kind"] == "passport" and entry["agent"] == agent_id:
            return i
    raise AssertionError(f"no passport for {agent_id}")


def summary(entries: list) -> list:
    """(kind, action, phase) of each entry."""
    return [(e["entry"]["kind"], e["entry"].get("action"), e["entry"].get("data", {}).get("phase")) for e in entries]


@pytest.fixture(scope="session")
def ledger(tmp_path_factory) -> LedgerServer:
    """One server for the session: tests register agents of their own."""
    server = LedgerServer(tmp_path_factory.mktemp("ledger") / "data")
    yield server
    server.close()


@pytest.fixture
def own_ledger(tmp_path) -> LedgerServer:
    """A server of the test's own, for tests that kill or restart it."""
    server = LedgerServer(tmp_path / "data")
    yield server
    server.close()


_names = iter(range(1_000_000))


@pytest.fixture
def agent(ledger, tmp_path):
    """A registered agent on the session server: (agent_id, key file, Key)."""
    key_file = tmp_path / "agent.key"
    key = agent_ledger.Key.load_or_create(key_file)
    name = f"py-{os.getpid()}-{next(_names)}"
    return ledger.register(name, key), key_file, key
