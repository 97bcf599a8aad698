#!/usr/bin/env bash
# DIS throughput on this machine, one run: send_records of 1 KB records in batches of 500
# (wrk, 16 connections, each request the same 500 records with random partition keys over 8
# partitions, fsync before every answer), then consume_records of what was stored (one wrk
# connection per partition following next_partition_cursor, max_fetch_bytes 4 MB), then the
# host's RSS with STORE_GB (default 10) GB stored. Prints records/s, latencies and RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
DURATION=${DURATION:-20s}
STORE_GB=${STORE_GB:-10}
command -v wrk >/dev/null || { echo "wrk is required (Debian package wrk)" >&2; exit 1; }
cargo build --release --locked
# The data dir on the disk (not a tmpfs): fsync is what is measured.
data=$(mktemp -d -p "${DATA_PARENT:-$PWD/target}" bench-dis.XXXXXX)
trap 'cleanup; rm -rf "$data"' EXIT
port=18570
target/release/fgs serve --listen 127.0.0.1:$port --gateway-listen 127.0.0.1:$((port + 1)) \
  --data-dir "$data" --prewarm off > "$work/fgs.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port/healthz"
base=http://127.0.0.1:$port/v2/bench
curl -sf -XPOST "$base/streams" -H 'content-type: application/json' \
  -d '{"stream_name":"bench","partition_count":8,"stream_type":"ADVANCED"}' >/dev/null

python3 - "$work/body.json" <<'PY'
import base64, json, os, sys
records = [{"data": base64.b64encode(os.urandom(1024)).decode(), "partition_key": os.urandom(8).hex()}
           for _ in range(500)]
json.dump({"stream_name": "bench", "records": records}, open(sys.argv[1], "w"))
PY
cat > "$work/put.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json"); wrk.body = f:read("*a"); f:close()
response = function(status, headers, body)
  if status ~= 200 or not body:find('"failed_record_count":0', 1, true) then
    io.stderr:write("refused: " .. status .. " " .. body:sub(1, 200) .. "\n"); os.exit(1)
  end
end
LUA
for c in ${CONNECTIONS:-2 4 16}; do
  wrk -t2 -c"$c" -d"$DURATION" --latency -s "$work/put.lua" "$base/records" > "$work/put.txt"
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/put.txt")
  printf 'send_records, %2d connections: %.0f requests/s = %.0f records/s of 1 KB; accept latency p50 %s p99 %s\n' "$c" "$rps" \
    "$(echo "$rps * 500" | bc)" "$(awk '$1 == "50%" {print $2}' "$work/put.txt")" "$(awk '$1 == "99%" {print $2}' "$work/put.txt")"
done

cat > "$work/get.lua" <<'LUA'
-- Follows next_partition_cursor (fgs writes it first: the match stops there). The records
-- read are counted by fgs (fgs_dis_get_records_total), not here.
local cursor = os.getenv("CURSOR")
request = function()
  return wrk.format("GET", "/v2/bench/records?max_fetch_bytes=4194304&partition-cursor=" .. cursor)
end
response = function(status, headers, body)
  if status ~= 200 then io.stderr:write("refused: " .. body:sub(1, 200) .. "\n"); os.exit(1) end
  cursor = body:match('^{"next_partition_cursor":"([^"]+)"')
end
LUA
# Every stored record read from the start, each partition by one connection: the time until
# fgs has answered all of them (its fgs_dis_get_records_total) gives the rate.
stored_records=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^fgs_dis_put_records_total/ {print $2}')
stored_records=$(printf '%.0f' "$stored_records")
readers=()
start=$(date +%s.%N)
for p in 0 1 2 3 4 5 6 7; do
  cursor=$(curl -sf "$base/cursors?stream-name=bench&partition-id=$p&cursor-type=TRIM_HORIZON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partition_cursor"])')
  CURSOR=$cursor wrk -t1 -c1 -d120s --latency -s "$work/get.lua" "http://127.0.0.1:$port" > "$work/get-$p.txt" 2> "$work/get-$p.err" &
  readers+=($!)
done
read_total() { printf '%.0f' "$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^fgs_dis_get_records_total/ {print $2}')"; }
until [ "$(read_total)" -ge "$stored_records" ]; do sleep 0.05; done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
kill "${readers[@]}" 2>/dev/null || true
wait "${readers[@]}" 2>/dev/null || true
printf 'consume_records: %s records (8 partitions, one connection each) read in %.2f s = %.0f records/s\n' \
  "$stored_records" "$elapsed" "$(echo "$stored_records / $elapsed" | bc)"

echo "== RSS with $STORE_GB GB stored"
target=$((STORE_GB * 1024 * 1024 * 1024))
while [ "$(du -sb "$data/dis" | cut -f1)" -lt "$target" ]; do
  wrk -t2 -c16 -d10s -s "$work/put.lua" "$base/records" > /dev/null
done
stored=$(du -sb "$data/dis" | cut -f1)
rss=$(ps -o rss= -p "${pids[0]}")
printf 'stored %.1f GB; fgs RSS %.0f MB\n' "$(echo "$stored / 1073741824" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
# After a restart too: the index of every segment is loaded, nothing else.
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
target/release/fgs serve --listen 127.0.0.1:$port --gateway-listen 127.0.0.1:$((port + 1)) \
  --data-dir "$data" --prewarm off > "$work/fgs2.log" 2>&1 &
pids=($!)
start=$(date +%s.%N)
wait_http "http://127.0.0.1:$port/healthz"
printf 'restart with %.1f GB stored: ready in %.2f s, RSS %.0f MB\n' "$(echo "$stored / 1073741824" | bc -l)" \
  "$(echo "$(date +%s.%N) - $start" | bc)" "$(echo "$(ps -o rss= -p "${pids[0]}") / 1024" | bc -l)"
