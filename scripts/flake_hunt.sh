#!/usr/bin/env bash
# The flake hunt: run the whole test suite RUNS times in a row while other
# processes keep every core busy, and report each test that failed even once.
#
#   bash scripts/flake_hunt.sh [RUNS] [-- extra cargo test args]
#
# RUNS defaults to 20. It builds once first, so the loop measures tests, not
# the compiler. Failures are kept in $CARGO_TARGET_DIR/flake-hunt/ (one log
# per failed run); the exit status is 0 only when every run was green.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-20}
shift $(( $# > 0 ? 1 : 0 ))
[ "${1:-}" = "--" ] && shift
target=${CARGO_TARGET_DIR:-target}
logs="$target/flake-hunt"
mkdir -p "$logs"

echo "building the tests once"
cargo test --workspace --no-run --quiet "$@" || exit 1

# The load: one busy process per core, for as long as the hunt runs.
load_pids=()
for _ in $(seq "$(nproc)"); do
    (while :; do :; done) &
    load_pids+=("$!")
done
stop_load() { kill "${load_pids[@]}" 2>/dev/null; }
trap stop_load EXIT

failed_runs=0
for run in $(seq "$runs"); do
    started=$(date +%s)
    log="$logs/run-$run.log"
    if cargo test --workspace --quiet "$@" >"$log" 2>&1; then
        echo "run $run/$runs: green ($(( $(date +%s) - started )) s)"
        rm -f "$log"
    else
        failed_runs=$((failed_runs + 1))
        echo "run $run/$runs: FAILED ($(( $(date +%s) - started )) s), log: $log"
        grep -E -- '---- .* stdout ----|^test .* FAILED|panicked at' "$log" | head -20 | sed 's/^/    /'
    fi
done

echo "$failed_runs of $runs runs failed under load"
[ "$failed_runs" -eq 0 ]
