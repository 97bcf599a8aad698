#!/usr/bin/env bash
# The async benchmark of BENCHMARKS.md: durable accepts of POST .../invocations-async measured
# with `wrk -t1 -c64 -d10s --latency`, then how fast the accepted requests drain to a no-op
# function (the WASM echo example).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { echo "wrk is required (Debian package wrk)" >&2; exit 1; }
cargo build --release --locked
(cd examples/wasm && cargo build --release --locked --target wasm32-wasip2)

work=$(mktemp -d)
./target/release/fgs serve --listen 127.0.0.1:18090 --data-dir "$work/fgs" 2>"$work/fgs.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18090/healthz && break; sleep 0.1; done

python3 scripts/create-wasm-function.py http://127.0.0.1:18090 bench noop examples/wasm/target/wasm32-wasip2/release/echo.wasm
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"n": 1}'
wrk.headers["Content-Type"] = "application/json"
LUA
URL=http://127.0.0.1:18090/v2/bench/fgs/functions/noop/invocations-async
start=$(date +%s.%N)
wrk -t1 -c64 -d"$DURATION" --latency -s "$work/post.lua" "$URL" | tee "$work/wrk.txt"
accepted_end=$(date +%s.%N)
waiting() { curl -s http://127.0.0.1:18090/metrics | awk '/^fgs_async_waiting / {print $2}'; }
backlog=$(waiting)
while [ "$(waiting)" != "0" ]; do sleep 0.05; done
drained=$(date +%s.%N)
ok=$(curl -s http://127.0.0.1:18090/metrics | awk -F' ' '/^fgs_invocations_total\{code="0"/ {print $2}')
non2xx=$(awk '/Non-2xx/ {print $4}' "$work/wrk.txt")
python3 - "$start" "$accepted_end" "$drained" "$ok" "$backlog" "${non2xx:-0}" <<'PY'
import sys
start, accepted, drained, ok, backlog, non2xx = map(float, sys.argv[1:7])
print(f"\nrequests completed: {ok:.0f} (non-2xx answers: {non2xx:.0f}); backlog when wrk stopped: {backlog:.0f}")
print(f"drain: {ok / (drained - start):.0f} completed/s overall, backlog gone {drained - accepted:.2f}s after the load stopped")
PY
