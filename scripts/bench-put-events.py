#!/usr/bin/env python3
"""put_events → function: CONNS publishers (default 4) post EVENTS CloudEvents (default 20 000)
in calls of 100 to a channel whose subscription targets a no-op Python function, on a fresh
ephemeral host. Prints the accept rate (events/s, p50/p99 of a call) and the end-to-end rate:
events/s from the first call to the last async invocation's finish (read from
`fgs_invocations_total` on /metrics). Usage: scripts/bench-put-events.py [FGS_BIN] [serve args...]"""

import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

fgs = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "release", "fgs")
extra = sys.argv[2:] or ["--prewarm", "off"]
total = int(os.environ.get("EVENTS", "20000"))
conns = int(os.environ.get("CONNS", "4"))
project = "bench"


def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        text = r.read()
        return json.loads(text) if text else None


proc = subprocess.Popen([fgs, "serve", "--ephemeral", "--listen", "127.0.0.1:0",
                         "--async-queue-per-function", str(total * 2), "--async-queue-per-project", str(total * 2),
                         *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
api = json.loads(proc.stdout.readline())["api"]
try:
    code = base64.b64encode(b"def handler(event, context):\n    return 'ok'\n").decode()
    fn = call("POST", "%s/v2/%s/fgs/functions" % (api, project), {
        "func_name": "noop", "package": "default", "runtime": "Python3.9", "handler": "index.handler",
        "memory_size": 128, "timeout": 3, "code_type": "inline", "func_code": {"file": code}})
    channel = call("POST", "%s/v1/%s/channels" % (api, project), {"name": "bench"})
    call("POST", "%s/v1/%s/subscriptions" % (api, project), {
        "name": "bench", "channel_id": channel["id"],
        "sources": [{"name": "bench.source", "provider_type": "CUSTOM", "filter": {}}],
        "targets": [{"name": "HC.FunctionGraph", "provider_type": "OFFICIAL",
                     "detail": {"urn": fn["func_urn"], "invoke_type": "ASYNC", "agency_name": "fgs"}}]})
    url = "%s/v1/%s/channels/%s/events" % (api, project, channel["id"])
    latencies, lock = [], threading.Lock()

    def publish(worker):
        for start in range(worker * 100, total, conns * 100):
            events = [{"id": "e-%d" % i, "source": "bench.source", "specversion": "1.0", "type": "bench",
                       "datacontenttype": "application/json", "data": {"n": i}}
                      for i in range(start, min(start + 100, total))]
            began = time.perf_counter()
            answer = call("POST", url, {"events": events})
            with lock:
                latencies.append(time.perf_counter() - began)
            assert answer["failed_count"] == 0, answer

    def invoked():
        text = urllib.request.urlopen(api + "/metrics").read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("fgs_invocations_total{") and ":noop:" in line)

    began = time.perf_counter()
    workers = [threading.Thread(target=publish, args=(w,)) for w in range(conns)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    accepted = time.perf_counter() - began
    while invoked() < total:
        time.sleep(0.05)
    delivered = time.perf_counter() - began
    q = lambda v, p: sorted(v)[int(p * (len(v) - 1))]
    print("put_events accepted: %d events in %.2f s = %.0f events/s; a call of 100: p50 %.1f ms, p99 %.1f ms (%d publishers)"
          % (total, accepted, total / accepted, statistics.median(latencies) * 1000, q(latencies, 0.99) * 1000, conns))
    print("delivered to the function (async invocations finished): %.2f s = %.0f events/s" % (delivered, total / delivered))
finally:
    proc.send_signal(signal.SIGTERM)
    proc.wait()
