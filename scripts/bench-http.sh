#!/usr/bin/env bash
# The HTTP benchmark of BENCHMARKS.md: warm synchronous invocation of the WASM echo function
# through fgs's FunctionGraph API, side by side with (a) a bare axum hello world and (b)
# `wasmtime serve` running an equivalent wasi:http hello component, each measured with
# `wrk -t1 -c64 -d10s --latency` on loopback. Prints requests/s, p50/p99 and the ratios.
# `WASMTIME=none` leaves wasmtime serve out (it takes a long `cargo install` the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
WASMTIME=${WASMTIME:-.cache/wasmtime-cli/bin/wasmtime}
command -v wrk >/dev/null || { echo "wrk is required (Debian package wrk)" >&2; exit 1; }

cargo build --release --locked
cargo build --release --locked -p fgs-invoker --example axum_hello
(cd examples/wasm && cargo build --release --locked --target wasm32-wasip2)
if [ "$WASMTIME" != none ] && [ ! -x "$WASMTIME" ]; then
  cargo install wasmtime-cli --version 48.0.8 --locked --root .cache/wasmtime-cli
fi
WASM=examples/wasm/target/wasm32-wasip2/release

. scripts/bench-lib.sh

./target/release/fgs serve --listen 127.0.0.1:18080 --data-dir "$work/fgs" 2>"$work/fgs.log" &
pids+=($!)
target/release/examples/axum_hello 127.0.0.1:18081 &
pids+=($!)
if [ "$WASMTIME" != none ]; then
  "$WASMTIME" serve -S cli=y -O pooling-allocator=y --addr 127.0.0.1:18082 "$WASM/http_hello.wasm" 2>"$work/wasmtime.log" &
  pids+=($!)
fi
wait_http http://127.0.0.1:18080/healthz
wait_http http://127.0.0.1:18081/
[ "$WASMTIME" = none ] || wait_http http://127.0.0.1:18082/

python3 scripts/create-wasm-function.py http://127.0.0.1:18080 bench echo "$WASM/echo.wasm"
FGS_URL="http://127.0.0.1:18080/v2/bench/fgs/functions/urn:fss:cn-north-4:bench:function:default:echo:latest/invocations"
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '"hello"'
wrk.headers["Content-Type"] = "application/json"
LUA
test "$(curl -s -X POST -d '"hello"' "$FGS_URL")" = '"hello"'

run() { # name url [wrk args...]
  local name=$1 url=$2; shift 2
  wrk -t1 -c64 -d1s "$@" "$url" >/dev/null   # warm-up
  wrk -t1 -c64 -d"$DURATION" --latency "$@" "$url" > "$work/$name.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/$name.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/$name.txt")
  echo "$name $rps $p50 $p99"
}

{
  run fgs-wasm-echo "$FGS_URL" -s "$work/post.lua"
  run axum-hello http://127.0.0.1:18081/
  [ "$WASMTIME" = none ] || run wasmtime-serve http://127.0.0.1:18082/
} | tee "$work/results"

awk '
  { rps[$1] = $2; p50[$1] = $3; p99[$1] = $4 }
  END {
    printf "\n| server | requests/s | p50 | p99 |\n|---|---|---|---|\n"
    for (s in rps) printf "| %s | %.0f | %s | %s |\n", s, rps[s], p50[s], p99[s]
    if (rps["wasmtime-serve"]) printf "\nfgs / wasmtime serve = %.2fx", rps["fgs-wasm-echo"] / rps["wasmtime-serve"]
    printf "\nfgs / axum hello = %.2fx\n", rps["fgs-wasm-echo"] / rps["axum-hello"]
  }' "$work/results"
