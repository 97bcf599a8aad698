#!/usr/bin/env bash
# The alias benchmark of BENCHMARKS.md: warm synchronous invocation of the WASM echo function
# through an alias (`prod` -> v1 with `{"v2": 50}`: a roll per request, half to each version)
# and of version v1 directly, on one host, each measured with `wrk -t1 -c64 -d10s --latency`
# on loopback, ROUNDS times (default 3) taking turns. Prints every round's requests/s, p50/p99,
# the medians and the ratio alias / direct (goal: >= 0.95, i.e. at most 5 % overhead).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/bench-lib.sh
wrk_prerequisites

host=http://127.0.0.1:18093
./target/release/fgs serve --listen 127.0.0.1:18093 --data-dir "$work/data" --auth none 2>"$work/fgs.log" &
pids+=($!)
wait_http $host/healthz
$PY scripts/create-wasm-function.py $host bench echo "$WASM/echo.wasm"
base=/v2/bench/fgs/functions/urn:fss:cn-north-4:bench:function:default:echo
post() { curl -sf -X POST -H 'Content-Type: application/json' -d "$2" "$host$1" >/dev/null; }
post "$base/versions" '{"version": "v1"}'
# A second version: the same code, another configuration (so latest has changed).
curl -sf -X PUT -H 'Content-Type: application/json' "$host$base/config" \
  -d '{"runtime": "WASM", "handler": "echo.wasm", "memory_size": 128, "timeout": 4}' >/dev/null
post "$base/versions" '{"version": "v2"}'
post "$base/aliases" '{"name": "prod", "version": "v1", "additional_version_weights": {"v2": 50}}'

printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' "'\"hello\"'" > "$work/post.lua"
for q in v1 '!prod'; do
  test "$(curl -s -X POST -H 'Content-Type: application/json' -d '"hello"' "$host$base:$q/invocations")" = '"hello"'
done

interleave direct "$host$base:v1/invocations" "$work/post.lua" \
  alias "$host$base:!prod/invocations" "$work/post.lua"
ratio alias direct "through the alias / version directly"
