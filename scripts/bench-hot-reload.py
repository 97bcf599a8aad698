#!/usr/bin/env python3
"""Hot-reload latency of `fgs serve --manifest fgs.yaml --watch`: EDITS (default 50) saves of a
Python function's code, each timed from the write to the first invocation that returns the new
result (invocations back to back). Prints p50 and p99. Usage: scripts/bench-hot-reload.py [FGS_BIN]"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

FGS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "release", "fgs")
SOURCE = "def handler(event, context):\n    return {'v': %d}\n"


def invoke(api, name):
    req = urllib.request.Request("%s/v2/default/fgs/functions/%s/invocations" % (api, name), data=b"{}",
                                 headers={"Content-Type": "application/json", "X-Cff-Request-Version": "v1"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def measure(edits, extra=()):
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "hello"))
        code = os.path.join(d, "hello", "index.py")
        open(code, "w").write(SOURCE % 0)
        open(os.path.join(d, "fgs.yaml"), "w").write(
            "functions:\n  hello:\n    runtime: Python3.9\n    handler: index.handler\n    code: ./hello\n")
        proc = subprocess.Popen([FGS, "serve", "--ephemeral", "--listen", "127.0.0.1:0", "--prewarm", "off",
                                 "--manifest", os.path.join(d, "fgs.yaml"), "--watch", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            api = json.loads(proc.stdout.readline())["api"]
            invoke(api, "hello")
            times = []
            for v in range(1, edits + 1):
                start = time.perf_counter()
                with open(code, "w") as f:
                    f.write(SOURCE % v)
                while True:
                    answer = invoke(api, "hello")
                    if answer.get("status") == 200 and json.loads(answer["result"]) == {"v": v}:
                        break
                    if time.perf_counter() - start > 10:
                        raise SystemExit("edit %d not live after 10 s" % v)
                times.append((time.perf_counter() - start) * 1000)
                time.sleep(0.05)
            return times
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()


if __name__ == "__main__":
    times = sorted(measure(int(os.environ.get("EDITS", "50"))))
    q = lambda p: times[min(len(times) - 1, int(p * len(times)))]
    print("hot reload, %d edits: save to first new result p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (len(times), q(0.5), q(0.99), times[-1]))
