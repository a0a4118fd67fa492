"""Signed appends per second through the Python package, one after another
from one thread, next to the Rust SDK's (the `append-rate` example) in the
same run, round by round. Prints one JSON line per measurement and a
summary with the ratio.

    python bench/bench_sdk.py --url http://127.0.0.1:8080 --admin-token TOKEN \\
        --rust-bin $CARGO_TARGET_DIR/release/examples/append-rate --count 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time

import agent_ledger
from agent_ledger import Client, Key


def python_rate(url: str, token: str, count: int, hidden: bool, name: str) -> float:
    key = Key.generate()
    agent_id = f"spiffe://example.org/agent/{name}"
    agent_ledger.register(url, token, {"agent": agent_id, "public_key": key.public_key, "code_hash": "c0" * 32,
                                       "owner": "benchmarks", "purpose": "measures the SDK's append rate"})
    client = Client(url, agent_id, key)
    start = time.perf_counter()
    for i in range(count):
        client.append("read", f"bench/{i}", data={"i": i}, hidden={"amount": i} if hidden else None)
    seconds = time.perf_counter() - start
    print(json.dumps({"sdk": "python", "appends": count, "hidden": hidden, "seconds": seconds, "per_s": count / seconds}), flush=True)
    return count / seconds


def rust_rate(binary: str, url: str, token: str, count: int, hidden: bool) -> float:
    args = [binary, "--url", url, "--admin-token", token, "--count", str(count)] + (["--hidden"] if hidden else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=3600).stdout.strip().splitlines()[-1]
    print(out, flush=True)
    return json.loads(out)["per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--admin-token", required=True)
    p.add_argument("--rust-bin", required=True)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    summary = {}
    for hidden in (False, True):
        count = a.count if not hidden else max(a.count // 10, 10)
        py, rs = [], []
        for r in range(a.rounds):
            # Alternate which goes first, so drift on the machine falls on both.
            if r % 2 == 0:
                py.append(python_rate(a.url, a.admin_token, count, hidden, f"py-rate-{os.getpid()}-{hidden:d}-{r}"))
                rs.append(rust_rate(a.rust_bin, a.url, a.admin_token, count, hidden))
            else:
                rs.append(rust_rate(a.rust_bin, a.url, a.admin_token, count, hidden))
                py.append(python_rate(a.url, a.admin_token, count, hidden, f"py-rate-{os.getpid()}-{hidden:d}-{r}"))
        key = "hidden" if hidden else "plain"
        summary[key] = {"python_per_s": statistics.median(py), "rust_per_s": statistics.median(rs),
                        "ratio": statistics.median(py) / statistics.median(rs)}
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
