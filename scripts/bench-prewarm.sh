#!/usr/bin/env bash
# The prewarmed-pool benchmark of BENCHMARKS.md (issue 15), as root with the namespace sandbox:
# three hosts side by side in one run, `--prewarm off`, the default lanes
# (`python=1..8,nodejs=1..4`) and lanes sized for a burst (`python=20..24,nodejs=20..24`).
#
# - Cold starts: NEW new functions per runtime and host (default 50), each created and invoked
#   once (the first sync invocation of a never-invoked function, request to response), the
#   hosts taking turns, PAUSE seconds apart (default 0.25: a steady cold-start rate the pool
#   can refill at); p50 and p99 per runtime and host.
# - A burst: 20 new functions invoked at once, per runtime and host; p50 and p99.
# - The bare interpreter (`python3 -c pass`, `node -e 0`) started as many times in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
NEW=${NEW:-50}
PAUSE=${PAUSE:-0.25}
PY=.cache/venv/bin/python
[ -x "$PY" ] || PY=python3
cargo build --release --locked
. scripts/bench-lib.sh

start_host() { # PORT NAME PREWARM
  ./target/release/fgs serve --listen "127.0.0.1:$1" --gateway-listen "127.0.0.1:$(($1 + 100))" \
    --data-dir "$work/$2" --prewarm "$3" --prewarm-memory 4096 2>"$work/$2.log" &
  pids+=($!)
}
start_host 18201 off off
start_host 18202 default python=1..8,nodejs=1..4
start_host 18203 burst python=20..24,nodejs=20..24
for port in 18201 18202 18203; do wait_http "http://127.0.0.1:$port/healthz"; done
sleep 10 # the pools fill

"$PY" - "$NEW" "$PAUSE" <<'PYEOF'
import base64, concurrent.futures, json, statistics, subprocess, sys, time, urllib.request
new, pause = int(sys.argv[1]), float(sys.argv[2])
hosts = {"off": 18201, "default lanes": 18202, "burst lanes": 18203}
runtimes = {
    "Python3.9": ("index.py", b"def handler(event, context):\n    return 'ok'\n"),
    "Node.js18.15": ("index.js", b"exports.handler = async () => 'ok';\n"),
}
count = [0]

def call(port, path, body):
    req = urllib.request.Request("http://127.0.0.1:%d/v2/bench/fgs%s" % (port, path),
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=60).read()

def create(port, runtime):
    count[0] += 1
    name = "cold-%d" % count[0]
    call(port, "/functions", {"func_name": name, "runtime": runtime, "handler": "index.handler",
         "memory_size": 128, "timeout": 10, "code_type": "inline",
         "func_code": {"file": base64.b64encode(runtimes[runtime][1]).decode()}})
    return name

def cold(port, name):
    start = time.perf_counter()
    call(port, "/functions/%s/invocations" % name, {})
    return (time.perf_counter() - start) * 1000

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

def bare(cmd, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return times

rows = []
for runtime in runtimes:
    times = {h: [] for h in hosts}
    for _ in range(new):
        for host, port in hosts.items():
            name = create(port, runtime)
            times[host].append(cold(port, name))
            time.sleep(pause)
    bursts = {}
    for host, port in hosts.items():
        time.sleep(3)  # the pool refills after the steady run
        names = [create(port, runtime) for _ in range(20)]
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            bursts[host] = list(pool.map(lambda n: cold(port, n), names))
    interpreter = ["python3", "-c", "pass"] if runtime.startswith("Python") else ["node", "-e", "0"]
    base = bare(interpreter, new)
    for host in hosts:
        rows.append((runtime, host, statistics.median(times[host]), pct(times[host], 99),
                     statistics.median(bursts[host]), pct(bursts[host], 99), statistics.median(base)))

print("| runtime | host | cold start p50 | p99 | burst of 20: p50 | p99 | bare interpreter p50 | p50 / bare |")
print("|---|---|---|---|---|---|---|---|")
for runtime, host, p50, p99, b50, b99, base in rows:
    print("| %s | %s | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.1f ms | %.2f× |"
          % (runtime, host, p50, p99, b50, b99, base, p50 / base))
PYEOF
for port in 18202 18203; do
  curl -s "http://127.0.0.1:$port/metrics" | grep -E '^fgs_prewarm_(hits|misses)_total' | sed "s/^/:$port /"
done
