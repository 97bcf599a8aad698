#!/usr/bin/env bash
# The cold-start benchmark of BENCHMARKS.md: a Python function's cold start through the API on
# two hosts side by side, `--network host` (no network namespace: the figure before issue 12)
# and `--network isolated` (a namespace with veth from the pool, the default), as root with the
# namespace sandbox. Each round updates the function's configuration (which retires its
# instances) and times one invocation, alternating hosts; prints p50/p90 per host.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-40}
cargo build --release --locked
. scripts/bench-lib.sh

./target/release/fgs serve --listen 127.0.0.1:18095 --data-dir "$work/host" --network host 2>"$work/host.log" &
pids+=($!)
./target/release/fgs serve --listen 127.0.0.1:18096 --data-dir "$work/isolated" --network isolated 2>"$work/isolated.log" &
pids+=($!)
wait_http http://127.0.0.1:18095/healthz
wait_http http://127.0.0.1:18096/healthz

python3 - "$ROUNDS" <<'PYEOF'
import base64, json, statistics, sys, time, urllib.request
rounds = int(sys.argv[1])
hosts = {"network host": "http://127.0.0.1:18095", "network isolated": "http://127.0.0.1:18096"}
def call(method, url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req).read()
source = base64.b64encode(b"def handler(event, context):\n    return 'ok'\n").decode()
for url in hosts.values():
    call("POST", url + "/v2/bench/fgs/functions", {"func_name": "cold", "runtime": "Python3.9",
         "handler": "index.handler", "memory_size": 128, "timeout": 3, "code_type": "inline",
         "func_code": {"file": source}})
times = {name: [] for name in hosts}
for i in range(rounds):
    for name, url in hosts.items():
        fn = url + "/v2/bench/fgs/functions/cold"
        call("PUT", fn + "/config", {"handler": "index.handler", "runtime": "Python3.9",
             "memory_size": 128, "timeout": 3 + i % 2})
        start = time.perf_counter()
        call("POST", fn + "/invocations", {})
        times[name].append((time.perf_counter() - start) * 1000)
print("| host | cold start p50 | p90 |\n|---|---|---|")
for name, t in times.items():
    t.sort()
    print("| %s | %.1f ms | %.1f ms |" % (name, statistics.median(t), t[int(len(t) * 0.9)]))
PYEOF
