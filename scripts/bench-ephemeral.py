#!/usr/bin/env python3
"""Time from exec of `fgs serve --ephemeral --listen 127.0.0.1:0` to its first 200 of /healthz
(the port read from the JSON line it prints once ready), and its idle RSS; RUNS (default 30)
runs, p50 and p90. Usage: scripts/bench-ephemeral.py [FGS_BIN] [extra serve args...]"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

fgs = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "release", "fgs")
extra = sys.argv[2:]
runs = int(os.environ.get("RUNS", "30"))
ready, rss = [], []
for _ in range(runs):
    start = time.perf_counter()
    proc = subprocess.Popen([fgs, "serve", "--ephemeral", "--listen", "127.0.0.1:0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = json.loads(proc.stdout.readline())
    while True:
        try:
            if urllib.request.urlopen(line["api"] + "/healthz", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.001)
    ready.append((time.perf_counter() - start) * 1000)
    time.sleep(1.0)
    with open("/proc/%d/status" % proc.pid) as f:
        rss.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024)
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    if os.path.exists(line["data_dir"]):
        sys.exit("the ephemeral data dir %s was left behind" % line["data_dir"])
q = lambda v, p: sorted(v)[int(p * (len(v) - 1))]
print("exec to first /healthz 200: p50 %.1f ms, p90 %.1f ms (%d runs)" % (statistics.median(ready), q(ready, 0.9), runs))
print("idle RSS 1 s after ready: p50 %.1f MiB, max %.1f MiB" % (statistics.median(rss), max(rss)))
