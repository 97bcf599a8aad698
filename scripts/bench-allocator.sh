#!/usr/bin/env bash
# The allocator benchmark of BENCHMARKS.md: warm synchronous invocation of the WASM echo
# function on fgs built with mimalloc (the default) and with glibc's allocator
# (`--no-default-features`, built into target/system-alloc), two hosts side by side, each
# measured with `wrk -t1 -c64 -d10s --latency` on loopback, ROUNDS times (default 3) taking
# turns. Prints every round, the medians and the ratio mimalloc / glibc.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/bench-lib.sh
wrk_prerequisites
cargo build --release --locked -p fgs-invoker --no-default-features --target-dir target/system-alloc

printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' "'\"hello\"'" > "$work/post.lua"
port=18280
for host in mimalloc:target/release/fgs glibc:target/system-alloc/release/fgs; do
  name=${host%%:*}
  "${host#*:}" serve --listen 127.0.0.1:$port --gateway-listen 127.0.0.1:$((port + 1)) \
    --data-dir "$work/$name" --auth none 2>"$work/$name.log" &
  pids+=($!)
  wait_http http://127.0.0.1:$port/healthz
  $PY scripts/create-wasm-function.py http://127.0.0.1:$port bench echo "$WASM/echo.wasm"
  printf -v "url_$name" '%s' "http://127.0.0.1:$port/v2/bench/fgs/functions/urn:fss:cn-north-4:bench:function:default:echo:latest/invocations"
  port=$((port + 10))
done
interleave glibc "$url_glibc" "$work/post.lua" mimalloc "$url_mimalloc" "$work/post.lua"
ratio mimalloc glibc "mimalloc / glibc"
