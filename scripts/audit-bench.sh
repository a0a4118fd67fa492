#!/usr/bin/env bash
# Audit and export measurements, one run (docs/PERFORMANCE.md, "Audit
# archives"): builds a log of N signed actions (H: every H-th with a range
# proof, 0 for none), exports it (ledger-audit export: entries/s, size, peak
# memory), measures the raw costs of the same archive (ledger-audit
# baseline) and audits it with ledger-verify, under /usr/bin/time.
# Usage: scripts/audit-bench.sh N [H] [DIR]
set -euo pipefail
n=${1:-1000000}
hidden=${2:-0}
dir=${3:-/var/tmp/audit-bench-$n-$hidden}
bin=${CARGO_TARGET_DIR:-/var/tmp/agent-ledger-target}/release
rm -rf "$dir" && mkdir -p "$dir"
"$bin/ledger-audit" build --dir "$dir" --entries "$n" --hidden-every "$hidden"
/usr/bin/time -f "  export process: %e s wall, max RSS %M KiB" "$bin/ledger-audit" export --dir "$dir" --out "$dir/archive.alar.zst"
"$bin/ledger-audit" baseline "$dir/archive.alar.zst"
/usr/bin/time -f "  audit process: %e s wall, max RSS %M KiB" "$bin/ledger-verify" --json audit --key "$dir/log.pub" "$dir/archive.alar.zst" \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); x=r.get("result") or r.get("evidence"); print("audit: verified=%s entries=%s %.0f entries/s in %.2f s, %s signatures, %s predicate proofs, %s violations" % (r["verified"], x["entries"], x["entries_per_second"], x["seconds"], x["signatures_checked"], x["predicate_proofs"], x["violation_count"]))'
