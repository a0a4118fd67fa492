#!/usr/bin/env bash
# Python SDK measurements, one run (docs/PERFORMANCE.md, "Python SDK"):
# starts a server on a fresh data directory (RocksDB, synced commits, as
# `make run`), then
#  - signed appends/s through the Python package vs the Rust SDK
#    (ledger-client's append-rate example), alternating rounds;
#  - a LangChain tool call with the ledger callback vs without;
#  - the console's agent table vs the public score listing (1000 agents).
# Needs `make python` first (the virtual environment with the wheel).
# Usage: scripts/python-bench.sh [COUNT] [ROUNDS]
set -euo pipefail
count=${1:-2000}
rounds=${2:-3}
target=${CARGO_TARGET_DIR:-/var/tmp/agent-ledger-target}
bin=$target/release
py=$target/py-venv/bin/python
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins --examples -q
dir=$(mktemp -d /var/tmp/python-bench.XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=python-bench-admin-token-0123456789abcdef
LEDGER_ADMIN_TOKEN=$token LEDGER_LOG=warn "$bin/ledger-server" --listen 127.0.0.1:$port --data-dir "$dir/data" \
  --policy docs/policy.example.toml > "$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$py" ledger-py/bench/bench_sdk.py --url "http://127.0.0.1:$port" --admin-token "$token" \
  --rust-bin "$bin/examples/append-rate" --count "$count" --rounds "$rounds"
"$py" ledger-py/bench/bench_langchain.py --url "http://127.0.0.1:$port" --admin-token "$token" --calls "$((count / 4))"
"$py" ledger-py/bench/bench_console.py --url "http://127.0.0.1:$port" --admin-token "$token" --agents 1000 --requests 200
