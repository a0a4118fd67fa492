"""The console's agent table (`GET /v1/console/agents`: status, passport and
last attestation of every agent) next to the public score listing it
extends (`GET /v1/trust`), over the same agents in the same run, requests
alternated. Prints one JSON line per route and a summary with the ratio.

    python bench/bench_console.py --url http://127.0.0.1:8080 --admin-token TOKEN \\
        --agents 1000 --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request

import agent_ledger
from agent_ledger import Client, Key


def timed_get(url: str, token: str) -> tuple[float, int]:
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
    return time.perf_counter() - start, len(body)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--admin-token", required=True)
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--requests", type=int, default=200)
    a = p.parse_args()
    # Half the agents attest, so half the rows read an attestation entry.
    for i in range(a.agents):
        key = Key.generate()
        agent_id = f"spiffe://example.org/agent/console-{os.getpid()}-{i}"
        agent_ledger.register(a.url, a.admin_token, {"agent": agent_id, "public_key": key.public_key, "code_hash": "c0" * 32,
                                                     "owner": "benchmarks", "purpose": "fills the console's table"})
        if i % 2 == 0:
            Client(a.url, agent_id, key, code_hash="c0" * 32).attest()
    routes = {"trust": f"{a.url}/v1/trust", "console": f"{a.url}/v1/console/agents"}
    times: dict[str, list[float]] = {name: [] for name in routes}
    sizes: dict[str, int] = {}
    for _ in range(a.requests):
        for name, url in routes.items():
            seconds, size = timed_get(url, a.admin_token)
            times[name].append(seconds)
            sizes[name] = size
    summary = {}
    for name, samples in times.items():
        samples.sort()
        row = {"route": name, "agents": a.agents, "requests": len(samples), "bytes": sizes[name],
               "median_ms": statistics.median(samples) * 1000, "p90_ms": samples[int(len(samples) * 0.9)] * 1000}
        print(json.dumps(row), flush=True)
        summary[name] = row["median_ms"]
    print(json.dumps({"summary": "console agents vs trust listing", "median_ratio": summary["console"] / summary["trust"]}), flush=True)


if __name__ == "__main__":
    main()
