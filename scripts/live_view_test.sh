#!/usr/bin/env bash
# End-to-end check of the embedding example: a private redis-server, the
# `live_view` app (which nests the console at /logs), a job started with a
# POST as the app's button does, then the job's page in headless Chromium:
# every line of the job, in order. (The console's own behaviour is tested
# in crates/spanline-web/tests.)
#
# Run with: bash scripts/live_view_test.sh   (needs redis-server, node and chromium)
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

cargo build --quiet --example live_view --features web
app_port=$(free_port)
PORT="$app_port" SPANLINE_REDIS_URL="redis://127.0.0.1:$redis_port" NO_COLOR=1 \
    "${CARGO_TARGET_DIR:-target}/debug/examples/live_view" > "$work/app.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$app_port/health" >/dev/null && break; sleep 0.1; done

# Start a job as the app's button does; the app answers with its page.
job_page=$(curl -s -o /dev/null -w '%{redirect_url}' -X POST "http://127.0.0.1:$app_port/jobs")
case "$job_page" in */logs/jobs/report_*) ;; *) echo "no job page: $job_page" >&2; exit 1 ;; esac
# Let the job finish (about 3 s), then open its page: the backlog is all there.
for _ in $(seq 100); do grep -q "job finished" "$work/app.log" && break; sleep 0.1; done
sleep 0.5 # and its span close

# Headless Chromium, driven by the testkit's DevTools script (no npm packages).
wait_rows='new Promise((ok) => { const t = setInterval(() => { const m = [...document.querySelectorAll("#lines .msg")].map((e) => e.textContent); if (m.length >= 8) { clearInterval(t); ok({ messages: m, state: document.getElementById("state").textContent }); } }, 100); })'
python3 -c 'import json, sys; print(json.dumps({"open": sys.argv[1]})); print(json.dumps({"eval": sys.argv[2]}))' "$job_page" "$wait_rows" \
    | timeout 60 node crates/spanline-testkit/src/cdp.mjs > "$work/page.json"

python3 - "$work/page.json" <<'PY'
import json, sys
replies = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert all("error" not in r for r in replies), replies
page = replies[-1]["value"]
expected = ["job started", "step done", "step done", "slow step", "step done", "step done", "job finished", "job ended"]
assert page["messages"] == expected, f"lines on the page: {page['messages']!r}"
assert page["state"] == "job ended", page["state"]
print(f"live view: the job's {len(expected)} lines on its console page, in order; {page['state']}")
PY
curl -sf "http://127.0.0.1:$app_port/logs" | grep -q 'data-root="/logs"'
echo "the console is nested at /logs"
