#!/usr/bin/env bash
# Browser test of the live log view: a private redis-server, the
# `live_view` example, and headless Chromium that opens the job page,
# starts a job and waits for its lines; then the page's DOM is checked:
# every line of the job, in order, and the end of the stream.
#
# Run with: bash scripts/live_view_test.sh   (needs redis-server and chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

cargo build --quiet --example live_view
app_port=$(free_port)
PORT="$app_port" SPANLINE_REDIS_URL="redis://127.0.0.1:$redis_port" SPANLINE_FORMAT=json \
    "${CARGO_TARGET_DIR:-target}/debug/examples/live_view" > "$work/app.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$app_port/health" >/dev/null && break; sleep 0.1; done

# The global feed, read with curl while the job runs.
curl -sN --max-time 8 "http://127.0.0.1:$app_port/global/events" > "$work/global.txt" 2>/dev/null &
pids+=($!)
sleep 0.5

# Virtual time lets the page run until its event stream has ended.
timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --virtual-time-budget=20000 \
    --dump-dom "http://127.0.0.1:$app_port/?autostart=1" > "$work/dom.html" 2>/dev/null

python3 - "$work/dom.html" <<'PY'
import re, sys
dom = open(sys.argv[1]).read()
lines = re.findall(r'<div class="line [A-Z]+">([^<]*)</div>', dom)
messages = [l.split("  ")[2] for l in lines if l.count("  ") >= 2]
expected = ["job started"] + ["step done"] * 5 + ["job finished"]
assert messages == expected, f"lines on the page: {messages!r}"
steps = [int(m.group(1)) for m in re.finditer(r"step=(\d+)", " ".join(lines))]
assert steps == [1, 2, 3, 4, 5], f"steps in order: {steps}"
assert "<title>done</title>" in dom, "the stream ended"
print(f"live view: {len(lines)} lines shown in order, stream closed")
PY
wait "${pids[-1]}" 2>/dev/null || true
grep -q '"message":"job finished"' "$work/global.txt" || { echo "the global feed did not carry the job's lines" >&2; exit 1; }
echo "global feed: $(grep -c '^data:' "$work/global.txt") lines"
