"""`fgs serve --ephemeral --listen 127.0.0.1:0`: a fresh host in a temporary data dir that
says where it listens in one JSON line on stdout, serves, and leaves nothing behind."""

import json
import os
import signal
import subprocess
import time

import requests

from conftest import FGS, PROJECT, python_fn, report, unique


def start(*args):
    began = time.perf_counter()
    proc = subprocess.Popen([FGS, "serve", "--ephemeral", "--listen", "127.0.0.1:0", "--prewarm", "off", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready = json.loads(proc.stdout.readline())
    return proc, ready, began


def test_an_ephemeral_host_names_its_ports_serves_and_leaves_nothing(tmp_path):
    proc, ready, began = start()
    try:
        assert set(ready) == {"api", "gateway", "data_dir"}
        assert ready["api"].startswith("http://127.0.0.1:") and ready["gateway"].startswith("http://127.0.0.1:")
        assert requests.get(ready["api"] + "/healthz").status_code == 200
        report("ephemeral host: exec to first /healthz 200 in %.1f ms (see BENCHMARKS.md for p50)"
               % ((time.perf_counter() - began) * 1000))
        assert os.path.isdir(ready["data_dir"]) and ready["data_dir"].startswith("/tmp/fgs-ephemeral-")
        base = "%s/v2/%s/fgs" % (ready["api"], PROJECT)
        created = requests.post(base + "/functions", json=python_fn(
            unique("eph"), "def handler(event, context):\n    return {'got': event}\n"))
        assert created.status_code == 200, created.text
        urn = created.json()["func_urn"]
        r = requests.post("%s/functions/%s/invocations" % (base, urn), json={"a": 1},
                          headers={"X-CFF-Request-Version": "v1"})
        assert r.status_code == 200 and r.json()["result"] == json.dumps({"got": {"a": 1}}), r.text
        # The gateway listens on a port of its own (nothing routed yet: FunctionGraph's 404).
        assert requests.get(ready["gateway"] + "/nothing").status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert not os.path.exists(ready["data_dir"])


def test_two_ephemeral_hosts_at_once_get_their_own_ports_and_data():
    (a, ra, _), (b, rb, _) = start(), start()
    try:
        assert ra["api"] != rb["api"] and ra["gateway"] != rb["gateway"] and ra["data_dir"] != rb["data_dir"]
        for r in (ra, rb):
            assert requests.get(r["api"] + "/healthz").status_code == 200
    finally:
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=20)


def test_ephemeral_and_a_data_dir_are_refused_together(tmp_path):
    r = subprocess.run([FGS, "serve", "--ephemeral", "--data-dir", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "--data-dir" in r.stderr


def test_hosts_started_one_right_after_another_all_start():
    """A host that takes the address block of one that has just exited must not collide with
    the veths the kernel is still removing with that host's namespaces (it did, half the
    time, before veth names counted from the process id)."""
    for _ in range(4):
        proc, ready, _ = start()
        assert requests.get(ready["api"] + "/healthz").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
