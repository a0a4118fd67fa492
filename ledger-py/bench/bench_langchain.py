"""What `LedgerCallbackHandler` adds to a LangChain tool call, and how many
signed appends per second `Client.append` makes from Python.

Registers a fresh agent on a running server, then calls a trivial real tool
`--calls` times without the handler (the baseline) and `--calls` times with
it (one round trip per call: the start entry, in one batch with the previous
call's end entry), in interleaved rounds after
a warm-up so both see the same server and machine state. Prints JSON: the
median and p99 per call of each, the milliseconds the handler adds per call
and the ratio; then `--calls` sequential appends without and with a hidden
field (the handler's entries carry one).

    python bench/bench_langchain.py --url http://127.0.0.1:8080 --admin-token "$LEDGER_ADMIN_TOKEN"
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from typing import Any, Callable, Dict, List

from langchain_core.tools import tool

import agent_ledger
from agent_ledger.langchain import LedgerCallbackHandler

ROUNDS = 10
WARM_UP_CALLS = 20


@tool
def word_count(text: str) -> int:
    """Counts the words of a text."""
    return len(text.split())


def register_agent(url: str, admin_token: str, trust_domain: str) -> agent_ledger.Client:
    """A new agent with a key of its own, so the run starts at sequence 0."""
    key = agent_ledger.Key.generate()
    agent_id = f"spiffe://{trust_domain}/agent/bench-langchain-{os.getpid()}-{time.time_ns()}"
    agent_ledger.register(url, admin_token, {
        "agent": agent_id, "public_key": key.public_key, "code_hash": "b0" * 32,
        "owner": "bench_langchain.py", "purpose": "measures the LangChain handler",
    })
    client = agent_ledger.Client(url, agent_id, key, code_hash="b0" * 32)
    # Attested, so that thousands of actions do not bring its trust below
    # the revocation threshold mid-run.
    client.attest()
    return client


def timed_calls(run: Callable[[int], Any], count: int) -> List[float]:
    """Seconds of each of `count` calls of `run(i)`."""
    times = []
    for i in range(count):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return times


def stats_ms(times: List[float]) -> Dict[str, float]:
    ordered = sorted(times)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return {"median_ms": round(statistics.median(ordered) * 1e3, 4), "p99_ms": round(p99 * 1e3, 4)}


def bench_tool(client: agent_ledger.Client, calls: int) -> Dict[str, Any]:
    """The tool alone against the tool under the handler, round by round."""
    handler = LedgerCallbackHandler(client, log_llm=False)
    variants: Dict[str, Callable[[int], Any]] = {
        "plain": lambda i: word_count.invoke({"text": f"call {i} of the benchmark"}),
        "logged": lambda i: word_count.invoke({"text": f"call {i} of the benchmark"}, config={"callbacks": [handler]}),
    }
    for run in variants.values():
        timed_calls(run, WARM_UP_CALLS)
    client.attest()
    times: Dict[str, List[float]] = {name: [] for name in variants}
    per_round = max(1, calls // ROUNDS)
    while len(times["logged"]) < calls:
        for name, run in variants.items():
            times[name] += timed_calls(run, min(per_round, calls - len(times[name])))
    plain, logged = stats_ms(times["plain"]), stats_ms(times["logged"])
    return {
        "tool_calls": calls,
        "plain": plain,
        "logged": logged,
        "added_ms_per_call": round(logged["median_ms"] - plain["median_ms"], 4),
        "ratio": round(logged["median_ms"] / plain["median_ms"], 1),
    }


def bench_appends(client: agent_ledger.Client, count: int) -> Dict[str, Any]:
    """Sequential signed appends, without and with one hidden field."""
    def plain(i: int) -> Any:
        return client.append("bench.append", "bench/appends", data={"i": i})

    def hidden(i: int) -> Any:
        return client.append("bench.append", "bench/appends", data={"i": i}, hidden={"digest": {"str": f"{i:064x}"}})

    out: Dict[str, Any] = {"appends": count}
    for name, run in (("plain", plain), ("hidden", hidden)):
        client.attest()
        seconds = sum(timed_calls(run, count))
        out[f"{name}_per_s"] = round(count / seconds, 1)
    out["hidden_ratio"] = round(out["plain_per_s"] / out["hidden_per_s"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--admin-token", default=os.environ.get("LEDGER_ADMIN_TOKEN"),
                        help="the server's admin token (default: $LEDGER_ADMIN_TOKEN)")
    parser.add_argument("--trust-domain", default="example.org", help="the server's trust domain")
    parser.add_argument("--calls", type=int, default=500, help="tool calls per variant, and appends")
    args = parser.parse_args()
    if not args.admin_token:
        parser.error("--admin-token (or LEDGER_ADMIN_TOKEN) is required to register the agent")
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    client = register_agent(args.url, args.admin_token, args.trust_domain)
    # Thousands of identical actions read as drift and lower the agent's
    # trust; fresh attestations keep it above the revocation threshold (a
    # measured call may wait for one: it shows in p99, not the median).
    with client.attest_every(1.0):
        result = {"agent": client.agent_id, **bench_tool(client, args.calls), **bench_appends(client, args.calls)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
