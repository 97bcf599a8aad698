#!/usr/bin/env bash
# The warm-path benchmark of BENCHMARKS.md (issue 15): a warm Python and a warm Node.js no-op
# through the FunctionGraph invoke API, on this build and on a BASELINE build side by side
# (`BASELINE=/path/to/an/older/fgs`, e.g. built from an earlier commit in a worktree), each
# measured with `wrk -t1 -cN -d$DURATION` at N = 1, 4 and 64 connections, ROUNDS rounds
# (default 3) with the hosts taking turns; prints every round and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BASELINE:?set BASELINE to the fgs binary to compare with}"
DURATION=${DURATION:-5s}
command -v wrk >/dev/null || { echo "wrk is required (Debian package wrk)" >&2; exit 1; }
cargo build --release --locked
. scripts/bench-lib.sh

start_host() { # PORT NAME BINARY
  "$3" serve --listen "127.0.0.1:$1" --gateway-listen "127.0.0.1:$(($1 + 100))" \
    --data-dir "$work/$2" --auth none 2>"$work/$2.log" &
  pids+=($!)
}
start_host 18211 baseline "$BASELINE"
start_host 18212 this ./target/release/fgs
for port in 18211 18212; do wait_http "http://127.0.0.1:$port/healthz"; done
py=$(printf 'def handler(event, context):\n    return "ok"\n' | base64 -w0)
node=$(printf 'exports.handler = async () => "ok";\n' | base64 -w0)
for port in 18211 18212; do
  for f in "py Python3.9 $py" "node Node.js18.15 $node"; do
    set -- $f
    curl -sf -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$port/v2/bench/fgs/functions" \
      -d "{\"func_name\": \"$1\", \"runtime\": \"$2\", \"handler\": \"index.handler\", \"memory_size\": 128,
           \"timeout\": 3, \"code_type\": \"inline\", \"func_code\": {\"file\": \"$3\"}}" >/dev/null
  done
done
printf 'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n' > "$work/post.lua"
url() { echo "http://127.0.0.1:$1/v2/bench/fgs/functions/urn:fss:cn-north-4:bench:function:default:$2/invocations"; }

for _ in $(seq "${ROUNDS:-3}"); do
  for fn in py node; do
    for c in 1 4 64; do
      for host in "baseline 18211" "this 18212"; do
        set -- $host
        wrk -t1 -c$c -d1s -s "$work/post.lua" "$(url $2 $fn)" >/dev/null
        wrk -t1 -c$c -d"$DURATION" --latency -s "$work/post.lua" "$(url $2 $fn)" > "$work/out.txt"
        grep -q "Non-2xx" "$work/out.txt" && { echo "refused requests" >&2; cat "$work/out.txt" >&2; exit 1; }
        echo "$fn-c$c-$1 $(awk '/Requests\/sec/ {print $2}' "$work/out.txt") $(awk '$1 == "99%" {print $2}' "$work/out.txt")"
      done
    done
  done
done | tee "$work/results"
echo
echo "| function | connections | baseline req/s | this req/s | ratio | this p99 |"
echo "|---|---|---|---|---|---|"
for fn in py node; do
  for c in 1 4 64; do
    b=$(medians "$fn-c$c-baseline" < "$work/results" | awk '{print $3}')
    t=$(medians "$fn-c$c-this" < "$work/results" | awk '{print $3}')
    p99=$(awk -v n="$fn-c$c-this" '$1 == n {print $3}' "$work/results" | tail -1)
    awk -v f="$fn" -v c="$c" -v b="$b" -v t="$t" -v p="$p99" \
      'BEGIN { printf "| %s | %s | %s | %s | %.2f× | %s |\n", f, c, b, t, t / b, p }'
  done
done
