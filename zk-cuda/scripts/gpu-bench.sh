#!/usr/bin/env bash
# The GPU measurement of the range provers, in two steps, because a GPU
# machine may have no compiler and no registry access:
#
#   zk-cuda/scripts/gpu-bench.sh prepare   # here: build with --features cuda
#   zk-cuda/scripts/gpu-bench.sh run       # on the GPU machine, from the repo root
#
# `prepare` installs the CUDA compiler (scripts/install-nvcc.sh), builds
# `prover-bench` and the GPU test binary with the `cuda` feature (kernels
# embedded as PTX) and copies both to zk-cuda/gpu-bin/ (git-ignored), the
# folder to carry to the GPU machine.
#
# `run` prints the machine (nvidia-smi, CPU count), runs the GPU tests (the
# CUDA engine against the CPU engine on the same inputs), then
# `prover-bench` (dalek and the precomputed prover on all cores, the CPU
# lockstep prover, and the CUDA lockstep prover at B = 64, 256, 1024, every
# backend first checked byte for byte against dalek), then hidden appends
# over HTTP against the server with `--prover-backend precomputed` and
# `cuda`, writing everything to ${OUT:-zk-cuda/gpu-bin}/gpu-bench.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=zk-cuda/gpu-bin

case "${1:-}" in
prepare)
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/agent-ledger-target}"
    bash zk-cuda/scripts/install-nvcc.sh >/dev/null
    cargo build --release -p zk-cuda --features cuda --bin prover-bench
    test_bin="$(cargo test --release -p zk-cuda --features cuda --test gpu --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])' | tail -n 1)"
    mkdir -p "$BIN"
    cp "$CARGO_TARGET_DIR/release/prover-bench" "$BIN/prover-bench"
    cp "$test_bin" "$BIN/gpu-tests"
    # The server with `--prover-backend cuda` and the load generator, for
    # hidden appends over HTTP on the GPU machine. Building the server with
    # `cuda` rebuilds ledger-core; the plain build is restored after.
    cargo build --release -p ledger-server --features cuda --bin ledger-server
    cp "$CARGO_TARGET_DIR/release/ledger-server" "$BIN/ledger-server"
    cargo build --release -p ledger-server --bin ledger-server -p ledger-benches --bin ledger-load
    cp "$CARGO_TARGET_DIR/release/ledger-load" "$BIN/ledger-load"
    ls -l "$BIN"
    ;;
run)
    out="${OUT:-$BIN}"
    mkdir -p "$out"
    {
        echo "## machine"
        date -u
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
        echo "cpus: $(nproc)"
        grep -m1 'model name' /proc/cpuinfo || true
        echo
        echo "## gpu tests"
        ZK_CUDA_REQUIRE_GPU=1 "$BIN/gpu-tests" --test-threads 1 2>&1 || echo "gpu tests FAILED"
        echo
        echo "## prover-bench"
        "$BIN/prover-bench" --proofs "${PROOFS:-2048}" --batches "${BATCHES:-64,256,1024}" --rounds "${ROUNDS:-5}" 2>&1
        if [ -x "$BIN/ledger-server" ] && [ -x "$BIN/ledger-load" ]; then
            echo
            echo "## hidden appends over HTTP (ledger-load --hidden), same run"
            for backend in precomputed cuda; do
                data="$(mktemp -d)"
                "$BIN/ledger-server" --data-dir "$data" --listen 127.0.0.1:18080 --prover-backend "$backend" >"$data/server.log" 2>&1 &
                pid=$!
                for _ in $(seq 100); do
                    (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break
                    sleep 0.1
                done
                grep -m1 'prover pool ready' "$data/server.log" || true
                LEDGER_ADMIN_TOKEN="$(cat "$data/admin.token")" "$BIN/ledger-load" --url http://127.0.0.1:18080 \
                    -c "${CLIENTS:-256}" -t "${SECONDS_PER_PHASE:-5}" --no-baseline --hidden 2>&1 | grep -E 'append|hidden' || true
                kill "$pid"
                wait "$pid" 2>/dev/null || true
                rm -rf "$data"
            done
        fi
    } | tee "$out/gpu-bench.txt"
    ;;
*)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
