#!/usr/bin/env bash
# The authentication benchmark of BENCHMARKS.md: warm synchronous invocation of the WASM echo
# function on two hosts side by side, one with `--auth none`, one with `--auth required`
# verifying every request's SDK-HMAC-SHA256 signature (headers made by the official SDK's
# signer; the same signed request is replayed, which the 15-minute date window allows), each
# measured with `wrk -t1 -c64 -d10s --latency` on loopback, ROUNDS times (default 3) taking
# turns, so that drift of the machine falls on both alike. Prints every round's requests/s,
# p50/p99, then each host's median and the ratio of the medians (goal: >= 0.9). With BASE_FGS=<an older fgs binary> that binary is measured too, in
# the same measure (the figure before authentication existed).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/bench-lib.sh
wrk_prerequisites

AK=bench-ak SK=bench-sk-0123456789
printf '{"credentials": [{"access_key": "%s", "secret_key": "%s", "projects": ["bench"]}]}' "$AK" "$SK" > "$work/creds.json"
chmod 600 "$work/creds.json"
./target/release/fgs serve --listen 127.0.0.1:18090 --data-dir "$work/open" --auth none 2>"$work/open.log" &
pids+=($!)
./target/release/fgs serve --listen 127.0.0.1:18091 --data-dir "$work/auth" --auth required \
  --credentials "$work/creds.json" 2>"$work/auth.log" &
pids+=($!)
wait_http http://127.0.0.1:18090/healthz
wait_http http://127.0.0.1:18091/healthz
if [ -n "${BASE_FGS:-}" ]; then
  "$BASE_FGS" serve --listen 127.0.0.1:18092 --data-dir "$work/base" 2>"$work/base.log" &
  pids+=($!)
  wait_http http://127.0.0.1:18092/healthz
  $PY scripts/create-wasm-function.py http://127.0.0.1:18092 bench echo "$WASM/echo.wasm"
fi

path=/v2/bench/fgs/functions/urn:fss:cn-north-4:bench:function:default:echo:latest/invocations
$PY scripts/create-wasm-function.py http://127.0.0.1:18090 bench echo "$WASM/echo.wasm"
FGS_AK=$AK FGS_SK=$SK $PY scripts/create-wasm-function.py http://127.0.0.1:18091 bench echo "$WASM/echo.wasm"

# One wrk script per host: the plain request, and the same request with the SDK's headers.
$PY - "$work" "$AK" "$SK" "$path" <<'PYEOF'
import json, sys
sys.path.insert(0, "scripts")
from sdk_sign import sign
work, ak, sk, path = sys.argv[1:5]
def lua(name, headers):
    lines = ['wrk.method = "POST"', "wrk.body = '\"hello\"'"]
    lines += ['wrk.headers[%s] = %s' % (json.dumps(k), json.dumps(v)) for k, v in headers.items()]
    open("%s/%s.lua" % (work, name), "w").write("\n".join(lines) + "\n")
lua("open", {"Content-Type": "application/json"})
lua("auth", sign("POST", "http://127.0.0.1:18091" + path, b'"hello"', ak, sk))
PYEOF
test "$(curl -s -X POST -H 'Content-Type: application/json' -d '"hello"' "http://127.0.0.1:18090$path")" = '"hello"'
test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '"hello"' "http://127.0.0.1:18091$path")" = 401

for round in $(seq "${ROUNDS:-3}"); do
  [ -z "${BASE_FGS:-}" ] || measure base "http://127.0.0.1:18092$path" "$work/open.lua"
  measure auth-none "http://127.0.0.1:18090$path" "$work/open.lua"
  measure auth-aksk "http://127.0.0.1:18091$path" "$work/auth.lua"
done | tee "$work/results"
echo
medians base auth-none auth-aksk < "$work/results" | tee "$work/medians"
awk '{ rps[$1] = $3 } END { printf "AK/SK verified / no auth = %.2fx (medians)\n", rps["auth-aksk"] / rps["auth-none"] }' "$work/medians"
