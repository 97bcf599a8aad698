#!/usr/bin/env bash
# The gateway benchmark of BENCHMARKS.md, on one host: a warm WASM APIG function (examples/wasm
# apig-hello) through the API gateway (`GET` of its APIG trigger's path) and through the
# invoke API directly (`POST .../invocations`), and a warm Python APIG function through the
# gateway and directly; each measured with `wrk -t1 -c64 -d10s --latency` on loopback, ROUNDS times (default
# 3) taking turns. Prints every round's requests/s, p50/p99, the medians and the ratio
# gateway / direct for WASM (goal: >= 0.8).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/bench-lib.sh
wrk_prerequisites

host=http://127.0.0.1:18093
gateway=http://127.0.0.1:18094
./target/release/fgs serve --listen 127.0.0.1:18093 --gateway-listen 127.0.0.1:18094 \
  --data-dir "$work/data" --auth none 2>"$work/fgs.log" &
pids+=($!)
wait_http $host/healthz
$PY scripts/create-wasm-function.py $host bench hello "$WASM/apig-hello.wasm"
py_code=$(printf 'def handler(event, context):\n    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "hello", "isBase64Encoded": False}\n' | base64 -w0)
curl -sf -X POST -H 'Content-Type: application/json' "$host/v2/bench/fgs/functions" -d "{\"func_name\": \"py\",
  \"runtime\": \"Python3.9\", \"handler\": \"index.handler\", \"memory_size\": 128, \"timeout\": 3,
  \"code_type\": \"inline\", \"func_code\": {\"file\": \"$py_code\"}}" >/dev/null
urn=urn:fss:cn-north-4:bench:function:default
for f in hello:/hello py:/py; do
  curl -sf -X POST -H 'Content-Type: application/json' "$host/v2/bench/fgs/triggers/$urn:${f%%:*}" -d "{
    \"trigger_type_code\": \"APIG\", \"trigger_status\": \"ACTIVE\", \"event_data\": {\"name\": \"bench\",
    \"path\": \"${f#*:}\", \"req_method\": \"GET\", \"auth\": \"NONE\", \"match_mode\": \"NORMAL\",
    \"func_info\": {\"timeout\": 5000}}}" >/dev/null
done
test "$(curl -s $gateway/hello)" = hello
test "$(curl -s $gateway/py)" = hello
printf 'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n' > "$work/post.lua"
printf 'wrk.method = "GET"\n' > "$work/get.lua"

interleave wasm-direct "$host/v2/bench/fgs/functions/$urn:hello/invocations" "$work/post.lua" \
  wasm-gateway "$gateway/hello" "$work/get.lua" \
  python-direct "$host/v2/bench/fgs/functions/$urn:py/invocations" "$work/post.lua" \
  python-gateway "$gateway/py" "$work/get.lua"
ratio wasm-gateway wasm-direct "WASM through the gateway / the invoke API directly"
