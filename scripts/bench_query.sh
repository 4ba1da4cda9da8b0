#!/usr/bin/env bash
# spanline pretty -q against jq on the same file and the same filter, side by
# side in one run: lines per second of each (docs/benchmarks.md, "Reading").
#
#   bash scripts/bench_query.sh [SIZE_MB]      (default 1024)
#
# Writes a file of flat-preset lines (levels, users and tenants varied, one
# line in 500 a match), builds the CLI in release, then times both filters
# (the best of three runs each) over it. Needs jq (Debian's jq).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-1024}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spanline-ci-target}"
command -v jq >/dev/null || { echo "jq is not installed: apt-get install jq" >&2; exit 1; }
file="${TMPDIR:-/tmp}/spanline-bench-${size_mb}mb.jsonl"
if [ ! -s "$file" ]; then
    python3 - "$file" "$size_mb" <<'PY'
import json, sys
path, size = sys.argv[1], int(sys.argv[2]) * 1024 * 1024
levels = ["DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"]
with open(path, "w") as f:
    written, i = 0, 0
    while written < size:
        line = json.dumps({
            "timestamp": "2026-12-06T10:%02d:%02d.%06dZ" % (i // 60000 % 60, i // 1000 % 60, i % 1000000),
            "level": levels[i % 6],
            "message": "request finished" if i % 3 else "cache miss on a key that was evicted",
            "target": "app::http",
            "status": 200 if i % 7 else 503,
            "latency_ms": i % 1000 / 7,
            "request_id": "r-%08d" % i,
            "user_id": 42 if i % 500 == 0 else i % 10000 + 100,
            "tenant": "acme" if i % 2 else "big co",
        }, separators=(",", ":")) + "\n"
        f.write(line)
        written += len(line)
        i += 1
PY
fi
cargo build --release -p spanline-cli --quiet
spanline="$CARGO_TARGET_DIR/release/spanline"
lines=$(wc -l < "$file")
best() {
    local best=""
    for _ in 1 2 3; do
        local start end
        start=$(date +%s.%N)
        "$@" > /dev/null
        end=$(date +%s.%N)
        best=$(python3 -c "b='$best'; t=$end-$start; print(t if not b or t < float(b) else b)")
    done
    echo "$best"
}
printf 'file: %s (%s lines, %s MB)\n' "$file" "$lines" "$size_mb"
t_spanline=$(best "$spanline" pretty --color never -q 'level>=warn and user_id=42' "$file")
# One core too (taskset): a file is read by one worker per core, so this is
# the reader's own speed.
t_one=$(best taskset -c 0 "$spanline" pretty --color never -q 'level>=warn and user_id=42' "$file")
t_jq=$(best jq -c 'select((.level == "WARN" or .level == "ERROR") and .user_id == 42)' "$file")
python3 - "$lines" "$t_spanline" "$t_jq" "$t_one" <<'PY'
import sys
lines, s, j, one = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(f"spanline pretty -q 'level>=warn and user_id=42': {s:.2f} s, {lines / s / 1e6:.2f} M lines/s")
print(f"  the same on one core (taskset -c 0):          {one:.2f} s, {lines / one / 1e6:.2f} M lines/s ({j / one:.1f}x jq)")
print(f"jq -c 'select(...)':                            {j:.2f} s, {lines / j / 1e6:.2f} M lines/s")
print(f"spanline / jq: {j / s:.1f}x")
PY
