"""The Python SDK against the real server: keys, signed appends with
hidden fields, attestation, rotation, trust, events, tokens, offline
verification, typed errors, and a server that is down."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

import agent_ledger
from agent_ledger import Client, Key, errors

from conftest import CODE_HASH, ROOT, bin_path

VECTORS = ROOT / "tests/vectors/sdk-sealed-entries.json"


def until(condition, timeout_s: float = 20.0) -> bool:
    """Polls `condition` until it holds or `timeout_s` passes (no timing
    is asserted: only that it happens)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def quarantine(ledger, agent_id: str) -> None:
    status, body = ledger.request("POST", f"/v1/agents/{urllib.parse.quote(agent_id, safe='')}/quarantine",
                                  {"note": "python test"}, admin=True)
    assert status == 201, body


# --- keys -------------------------------------------------------------------

def test_keys_are_saved_0600_loaded_and_never_overwritten(tmp_path):
    key = Key.generate()
    path = tmp_path / "k" / "agent.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Key.load(path).public_key == key.public_key
    assert Key.load_or_create(path).public_key == key.public_key
    with pytest.raises(errors.KeyFileError):
        Key.generate().save(path)
    other = Key.generate()
    other.save(path, overwrite=True)
    assert Key.load(path).public_key == other.public_key
    assert repr(key) == f'Key(public_key="{key.public_key}")'  # never the secret
    created = tmp_path / "new.key"
    made = Key.load_or_create(created)
    assert stat.S_IMODE(created.stat().st_mode) == 0o600
    assert Key.load(created).public_key == made.public_key


def test_a_key_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "agent.key"
    Key.generate().save(path)
    os.chmod(path, 0o644)
    with pytest.raises(errors.KeyFileError, match="chmod 600"):
        Key.load(path)
    path.write_text("not a key")
    os.chmod(path, 0o600)
    with pytest.raises(errors.KeyFileError, match="base64"):
        Key.load(path)


# --- byte-for-byte agreement with the Rust SDK --------------------------------

def test_sealed_entries_are_the_rust_sdks_bytes():
    cases = json.loads(VECTORS.read_text())["cases"]
    assert len(cases) >= 3
    for case in cases:
        sealed = agent_ledger.seal_entry(
            Key.from_seed(bytes.fromhex(case["key_seed"])), case["origin"], case["agent"], case["seq"],
            case["entry"], bytes.fromhex(case["rng_seed"]),
        )
        assert sealed == case["sealed"], case["seq"]
    # And a different seed gives different commitments (the seed is used).
    hidden = cases[1]
    other = agent_ledger.seal_entry(Key.from_seed(bytes.fromhex(hidden["key_seed"])), hidden["origin"],
                                    hidden["agent"], hidden["seq"], hidden["entry"], bytes(32))
    assert other["hidden"] != hidden["sealed"]["hidden"]


# --- appends, attestation, verification ---------------------------------------

def test_appends_attests_and_verifies_offline(ledger, agent, tmp_path):
    agent_id, key_file, key = agent
    client = Client(ledger.url, agent_id, key_file, code_hash=CODE_HASH)
    assert client.origin == ledger.origin and client.public_key == key.public_key
    att = client.attest()
    plain = client.append("read", "db/invoices", data={"rows": 42})
    secret = client.append("pay", "invoices/7", data={"currency": "EUR"},
                           hidden={"amount": {"u64": 1250, "prove": [{"le": 10000}]}, "customer": "ACME"})
    assert att.index < plain.index < secret.index

    stored = ledger.entry(plain.index)["entry"]
    assert (stored["kind"], stored["action"], stored["resource"], stored["data"]) == ("action", "read", "db/invoices", {"rows": 42})
    assert stored["agent"] == agent_id and stored["seq"] == 2
    hidden = ledger.entry(secret.index)["entry"]
    assert "ACME" not in json.dumps(hidden) and "1250" not in json.dumps(hidden)
    assert set(hidden["hidden"]) == {"amount", "customer"}

    passport = next(i for i in range(secret.index) if ledger.entry(i)["entry"].get("agent") == agent_id
                    and ledger.entry(i)["entry"]["kind"] == "passport")
    out = ledger.verify_agent(tmp_path, [passport, att.index, plain.index, secret.index])
    assert out.returncode == 0, out.stdout + out.stderr

    # The commitments made here open, and the proof made here verifies,
    # in this package and in ledger-verify.
    bundle = client.disclose(secret.index, {"reveal": ["customer"], "prove": [{"field": "amount", "ge": 1000, "le": 5000}]})
    checked = agent_ledger.verify_disclosure(ledger.log_key, json.dumps(bundle).encode())
    assert checked["revealed"] == [{"field": "customer", "value": "ACME"}]
    assert checked["proven_at_append"] and checked["proven"]
    path = tmp_path / "disclosure.json"
    path.write_text(json.dumps(bundle))
    out = subprocess.run([str(bin_path("ledger-verify")), "disclosure", "--key", ledger.log_key, str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "revealed  customer = ACME" in out.stdout, out.stdout + out.stderr
    forged = json.dumps(bundle).replace('"ACME"', '"EVIL"')
    assert forged != json.dumps(bundle)
    with pytest.raises(agent_ledger.VerificationError):
        agent_ledger.verify_disclosure(ledger.log_key, forged.encode())

    proof = ledger.proof_bundle(plain.index)
    assert agent_ledger.verify_proof_file(ledger.log_key, proof.encode())["index"] == plain.index
    with pytest.raises(agent_ledger.VerificationError):
        agent_ledger.verify_proof_file(ledger.log_key, proof.replace(ledger.origin, "evil.example/log").encode())
    cp = ledger.get("/v1/checkpoint")
    assert agent_ledger.verify_checkpoint(ledger.log_key, cp)["size"] >= secret.index + 1

    score = client.trust()
    assert score["agent"] == agent_id and 0 <= score["score"] <= 100


def test_python_appends_are_what_seal_entry_makes(ledger, agent):
    """A live append carries exactly the members seal_entry gives, signed for
    this log (the commitments differ: the live path draws fresh randomness)."""
    agent_id, key_file, key = agent
    client = Client(ledger.url, agent_id, key_file)
    receipt = client.append("read", "db/x", data={"n": 1})
    stored = ledger.entry(receipt.index)["entry"]
    sealed = agent_ledger.seal_entry(key, ledger.origin, agent_id, 1,
                                     {"kind": "action", "action": "read", "resource": "db/x", "data": {"n": 1}}, bytes(32))
    assert {k: v for k, v in stored.items() if k not in ("integrated_time", "v")} == sealed


def test_rotation_saves_the_new_key_and_signs_with_it(ledger, agent, tmp_path):
    agent_id, key_file, key = agent
    client = Client(ledger.url, agent_id, key_file)
    first = client.append("read", "a")
    rotated = client.rotate()
    assert Key.load(key_file).public_key == client.public_key != key.public_key
    assert not Path(str(key_file) + ".next").exists()
    after = client.append("read", "b")
    # A new client from the same file goes on with the new key.
    again = Client(ledger.url, agent_id, key_file).append("read", "c")
    passport = first.index - 1
    assert ledger.entry(passport)["entry"]["kind"] == "passport"
    out = ledger.verify_agent(tmp_path, [passport, first.index, rotated.index, after.index, again.index])
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_rotation_of_unknown_outcome_stops_the_next_start(ledger, agent, tmp_path):
    agent_id, key_file, key = agent
    client = Client(ledger.url, agent_id, key)
    with pytest.raises(ValueError, match="new key"):
        client.rotate()  # a key generated here would exist nowhere else
    pending = Path(str(key_file) + ".next")
    Key.generate().save(pending)
    with pytest.raises(errors.KeyFileError, match="outcome is unknown"):
        Client(ledger.url, agent_id, key_file)
    # A refused rotation removes the pending key: the old one stays in force.
    pending.unlink()
    impostor = Client(ledger.url, agent_id, key_file)
    quarantine(ledger, agent_id)
    with pytest.raises(errors.ApiError):
        impostor.rotate()
    assert not pending.exists() and Key.load(key_file).public_key == key.public_key


def test_attest_every_attests_on_a_timer(ledger, agent):
    agent_id, key_file, _ = agent
    client = Client(ledger.url, agent_id, key_file, code_hash=CODE_HASH)
    start = client.append("read", "start").index
    def attestations() -> int:
        return [e["entry"]["kind"] for e in ledger.entries_of(agent_id, after=start)].count("attestation")

    with client.attest_every(0.2):
        assert until(lambda: attestations() >= 2)
    stopped = attestations()
    time.sleep(0.5)
    assert attestations() == stopped
    errors_seen = []
    bad = Client(ledger.url, agent_id, key_file, code_hash="ab" * 32)
    loop = bad.attest_every(0.1, on_error=errors_seen.append)
    assert until(lambda: len(errors_seen) >= 1)
    loop.stop()
    assert errors_seen and all(isinstance(e, errors.AttestationFailedError) for e in errors_seen)
    assert errors_seen[0].code == "attestation_failed" and errors_seen[0].status == 422


# --- errors --------------------------------------------------------------------

def test_every_server_error_code_has_its_exception():
    codes = agent_ledger.error_codes()
    assert len(codes) > 50
    for code in codes:
        cls = errors.BY_CODE[code]
        assert cls.code == code and issubclass(cls, errors.ApiError)
        e = errors.api_error(418, code, "m")
        assert type(e) is cls and e.code == code and e.status == 418
    newer = errors.api_error(409, "from_the_future", "m")
    assert type(newer) is errors.ConflictError and newer.code == "from_the_future"


def test_server_errors_are_typed_exceptions_with_their_code(ledger, agent, tmp_path):
    agent_id, key_file, key = agent
    client = Client(ledger.url, agent_id, key_file, code_hash=CODE_HASH)
    with pytest.raises(errors.PredicateFalseError) as e:
        client.append("pay", "x", hidden={"amount": {"u64": 20000, "prove": [{"le": 10000}]}})
    assert e.value.code == "predicate_false" and e.value.status == 422
    with pytest.raises(errors.InvalidHiddenError):
        client.append("pay", "x", hidden={"bad name!": 1})
    with pytest.raises(TypeError):
        client.append("pay", "x", hidden={"flag": True})
    # An impostor's key: the server refuses the signature.
    impostor = Client(ledger.url, agent_id, Key.generate())
    with pytest.raises(errors.BadSignatureError) as e:
        impostor.append("read", "x")
    assert isinstance(e.value, errors.UnauthorizedError) and e.value.status == 401
    with pytest.raises(errors.InvalidAgentIdError):
        Client(ledger.url, "spiffe://example.org/workload/x", key)
    with pytest.raises(errors.ApiError) as e:
        Client(ledger.url, "spiffe://example.org/agent/nobody-registered", key)
    assert e.value.status == 404
    with pytest.raises(ValueError, match="code_hash"):
        Client(ledger.url, agent_id, key_file).attest()
    # Revoked: every action refused with agent_revoked, nothing recorded.
    quarantine(ledger, agent_id)
    before = ledger.entries_of(agent_id)
    with pytest.raises(errors.AgentRevokedError) as e:
        client.append("read", "revoked")
    assert isinstance(e.value, errors.ForbiddenError) and e.value.code == "agent_revoked"
    assert ledger.entries_of(agent_id) == before


def test_a_server_that_is_down_is_retried_then_a_clear_error(own_ledger, tmp_path):
    key = Key.generate()
    agent_id = own_ledger.register("down", key)
    client = Client(own_ledger.url, agent_id, key, retry_attempts=3, retry_initial_s=0.05)
    client.append("read", "before")
    own_ledger.kill()
    with pytest.raises(agent_ledger.LedgerUnavailable, match="unreachable after 3 attempts"):
        client.append("read", "while down")
    # A server that comes back within the retries gets the entry, once;
    # connecting is retried the same way.
    restarter = threading.Timer(0.4, own_ledger.start)
    restarter.start()
    try:
        patient = Client(own_ledger.url, agent_id, key, retry_attempts=20, retry_initial_s=0.1, retry_max_s=0.5)
        receipt = patient.append("read", "after restart")
    finally:
        restarter.join()
    mine = own_ledger.entries_of(agent_id)
    assert [e["entry"]["resource"] for e in mine] == ["before", "after restart"]
    assert receipt.index == mine[-1]["index"]


# --- events, tokens, peers -------------------------------------------------------

def test_events_stream_a_revocation_as_it_happens(ledger, agent):
    agent_id, key_file, _ = agent
    client = Client(ledger.url, agent_id, key_file)
    stream = client.events(types=["revocation"], agent=agent_id)
    got = []
    reader = threading.Thread(target=lambda: got.append(next(stream)), daemon=True)
    reader.start()
    time.sleep(0.2)
    quarantine(ledger, agent_id)
    reader.join(timeout=10)
    assert got and got[0]["type"] == "revocation" and got[0]["agent"] == agent_id
    assert got[0]["entry"]["reason"] == "quarantine"
    assert stream.resume_after == got[0]["index"]
    with pytest.raises(ValueError, match="unknown event type"):
        client.events(types=["nope"])


def test_tokens_and_peer_statements(ledger, agent):
    agent_id, key_file, _ = agent
    client = Client(ledger.url, agent_id, key_file, code_hash=CODE_HASH)
    with pytest.raises(errors.ApiError) as refused:
        client.request_token("tool.run_sql", "sqlite://demo", {"sql": "DELETE FROM t"})
    assert refused.value.code in ("attestation_required", "score_too_low")
    client.attest()
    token = client.request_token("tool.run_sql", "sqlite://demo", {"sql": "DELETE FROM t"})
    assert token["token"].startswith("v4.public.") and token["class"] == "high"
    assert ledger.entry(token["log_index"])["entry"]["jti"] == token["jti"]
    pending = client.request_token("tool.transfer", "bank/1", {"amount_max": 10})
    assert pending["status"] == "pending" and "token" not in pending
    decided = client.wait_for_escalation(pending["escalation"], every_s=0.05, timeout_s=0.2)
    assert decided["status"] == "pending"

    statement = client.statement()
    token_key = json.loads(ledger.get("/v1/tokens/key"))["public_key"]
    claims = agent_ledger.verify_peer(statement, agent_id, token_key=token_key, log_key=ledger.log_key,
                                      min_score=1, max_age_s=60)
    assert claims["subject"] == agent_id and claims["attestation_index"] is not None
    with pytest.raises(agent_ledger.VerificationError):
        agent_ledger.verify_peer(statement, agent_id, token_key=token_key, log_key=ledger.log_key,
                                 min_score=101, max_age_s=60)
