#!/usr/bin/env bash
# The cluster benchmark of BENCHMARKS.md, all in one run: durable async accepts/s and warm WASM
# invokes/s (the echo example) on one host with SQLite, one host with PostgreSQL, and three
# hosts sharing one PostgreSQL database (a wrk per host, at the same time, summed). PostgreSQL
# is a throwaway cluster (Debian's postgresql, default durability: fsync and synchronous
# commits on), as SQLite's `synchronous=FULL` is.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
wrk_prerequisites
chmod 755 "$work"

PG_BIN=${FGS_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_postgres "$PG_BIN/initdb" -D "$work/pg/data" -U fgs --auth=trust -E UTF8 >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$work/pg/data" -w -l "$work/pg/log" start \
  -o "-p 15432 -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
trap 'as_postgres "$PG_BIN/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null; cleanup' EXIT
for db in one three; do "$PG_BIN/psql" -h 127.0.0.1 -p 15432 -U fgs -d postgres -qc "CREATE DATABASE $db"; done
head -c 32 /dev/urandom > "$work/key" && chmod 600 "$work/key"

# `host NAME PORT [ARGS...]`: an fgs host with its own data dir.
host() {
  local name=$1 port=$2
  shift 2
  ./target/release/fgs serve --listen "127.0.0.1:$port" --gateway-listen "127.0.0.1:$((port + 100))" \
    --data-dir "$work/$name" --secret-key-file "$work/key" --prewarm off "$@" 2>"$work/$name.log" &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/healthz"
}
host sqlite 18300
host pg1 18301 --store postgres://fgs@127.0.0.1:15432/one
host pg3a 18302 --store postgres://fgs@127.0.0.1:15432/three
host pg3b 18303 --store postgres://fgs@127.0.0.1:15432/three
host pg3c 18304 --store postgres://fgs@127.0.0.1:15432/three
for port in 18300 18301 18302; do
  "$PY" scripts/create-wasm-function.py "http://127.0.0.1:$port" bench noop "$WASM/echo.wasm" >/dev/null
done
sleep 1 # the other two hosts of the three read the function from their notices

cat > "$work/async.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"n": 1}'
wrk.headers["Content-Type"] = "application/json"
LUA
cp "$work/async.lua" "$work/sync.lua"
path() { echo "http://127.0.0.1:$1/v2/bench/fgs/functions/noop/$2"; }

# `load NAME KIND PORT...`: wrk -c64 split over the ports at the same time; prints
# "NAME requests/s(sum) p99(worst)".
load() {
  local name=$1 kind=$2 endpoint
  shift 2
  local per=$((64 / $#)) i=0
  [ "$kind" = async ] && endpoint=invocations-async || endpoint=invocations
  for port in "$@"; do
    wrk -t1 -c"$per" -d1s -s "$work/$kind.lua" "$(path "$port" "$endpoint")" >/dev/null &
  done
  wait_bg
  for port in "$@"; do
    wrk -t1 -c"$per" -d"$DURATION" --latency -s "$work/$kind.lua" "$(path "$port" "$endpoint")" \
      > "$work/$name-$i.txt" &
    i=$((i + 1))
  done
  wait_bg
  cat "$work/$name"-*.txt | awk -v n="$name" '
    /Non-2xx/ { bad = 1 }
    /Requests\/sec/ { rps += $2 }
    $1 == "99%" { v = $2; ms = (v ~ /us$/) ? v / 1000 : (v ~ /ms$/) ? v + 0 : v * 1000; if (ms > worst) worst = ms }
    END { if (bad) { print n ": refused requests" > "/dev/stderr"; exit 1 } printf "%s %.0f p99 %.2fms\n", n, rps, worst }'
}
# Waits for the background wrk runs only (not the hosts).
wait_bg() { for job in $(jobs -p); do [[ " ${pids[*]} " == *" $job "* ]] || wait "$job"; done; }

for round in $(seq "${ROUNDS:-3}"); do
  load sqlite-async async 18300
  load pg1-async async 18301
  load pg3-async async 18302 18303 18304
  load sqlite-sync sync 18300
  load pg1-sync sync 18301
  load pg3-sync sync 18302 18303 18304
done | tee "$work/results"
echo
medians sqlite-async pg1-async pg3-async sqlite-sync pg1-sync pg3-sync < "$work/results" | tee "$work/medians"
ratio pg1-async sqlite-async "async accepts, PostgreSQL / SQLite, one host"
ratio pg3-async pg1-async "async accepts, three hosts / one host (PostgreSQL)"
ratio pg1-sync sqlite-sync "warm WASM invokes, PostgreSQL / SQLite, one host"
ratio pg3-sync pg1-sync "warm WASM invokes, three hosts / one host (PostgreSQL)"
