"""Synchronous invocation: envelopes, headers, logs, errors, limits, timeouts, instances."""

import base64
import concurrent.futures
import json
import os
import time

import requests

from conftest import PROJECT, b64, custom_fn, python_fn, runtime_pids, unique
from test_functions_api import error

# Every instance has its own TOKEN: equal tokens mean the same (warm) instance.
ECHO = """
import json, os
TOKEN = os.urandom(8).hex()
calls = 0
def handler(event, context):
    global calls
    calls += 1
    return {"event": event, "calls": calls, "instance": TOKEN}
"""


def gone(pids, within=3.0):
    """Whether the host processes `pids` have ended (and been reaped) within `within` seconds."""
    deadline = time.time() + within
    while any(os.path.exists("/proc/%d" % p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    return not any(os.path.exists("/proc/%d" % p) for p in pids)


def create(fgs, source, **over):
    return fgs.create(**python_fn(unique("inv"), source, **over))["func_urn"]


def result(r):
    assert r.status_code == 200, r.text
    return json.loads(r.json()["result"])


def test_v1_envelope_and_headers(fgs):
    urn = create(fgs, ECHO)
    r = fgs.invoke(urn, {"k": "v"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"request_id", "result", "log", "status"}
    assert body["status"] == 200 and body["log"] == ""
    assert json.loads(body["result"])["event"] == {"k": "v"}
    assert r.headers["X-Cff-Request-Id"] == body["request_id"]
    assert r.headers["X-Func-Err-Code"] == "0" and r.headers["X-Is-Func-Err"] == "false"
    assert int(r.headers["X-CFF-Billing-Duration"]) >= 1
    summary = json.loads(r.headers["X-Cff-Invoke-Summary"])
    # initDuration (fgs's) only when the call started an instance.
    assert set(summary) - {"initDuration"} == {"duration", "billingDuration", "memorySize", "memoryUsed"}
    assert summary["memorySize"] == 128 and summary["memoryUsed"] > 0
    assert "X-Cff-Function-Log" not in r.headers


def test_v0_returns_the_result_as_is(fgs):
    urn = create(fgs, "def handler(event, context):\n    return 'plain text ' + event['x']\n")
    r = fgs.invoke(urn, {"x": "y"}, v1=False)
    assert r.status_code == 200 and r.text == "plain text y"
    assert r.headers["X-Cff-Response-Version"] == "v0"
    urn = create(fgs, ECHO)
    assert json.loads(fgs.invoke(urn, {"a": 1}, v1=False).text)["event"] == {"a": 1}


def test_event_forms(fgs):
    urn = create(fgs, ECHO)
    assert result(fgs.invoke(urn, data=""))["event"] == {}
    assert result(fgs.invoke(urn, data="[1, 2]"))["event"] == [1, 2]
    assert result(fgs.invoke(urn, data="not json"))["event"] == "not json"


def test_log_tail(fgs):
    src = "def handler(event, context):\n    print('printed line')\n    context.getLogger().info('logged %s', 42)\n    return 'ok'\n"
    urn = create(fgs, src)
    r = fgs.invoke(urn, tail=True)
    log = r.json()["log"]
    rid = r.json()["request_id"]
    lines = log.strip().split("\n")
    assert lines[0].endswith("Start invoke request '%s', version: latest" % rid)
    assert "printed line" in lines[1]
    assert rid in lines[2] and "INFO logged 42" in lines[2]
    assert "Finish invoke request '%s', duration: " % rid in lines[3] and "billing memory: 128MB" in lines[3]
    header = base64.b64decode(r.headers["X-Cff-Function-Log"]).decode()
    assert header == log


def test_log_tail_is_bounded(fgs):
    src = "def handler(event, context):\n    for i in range(400):\n        print('line %04d ' % i + 'x' * 40)\n    return 'ok'\n"
    urn = create(fgs, src)
    r = fgs.invoke(urn, tail=True)
    log = r.json()["log"]
    assert len(log.encode()) == 4096
    assert "Finish invoke request" in log and "line 0399" in log and "line 0000" not in log
    header = base64.b64decode(r.headers["X-Cff-Function-Log"])
    assert len(header) == 2000 and log.encode().endswith(header)


def test_logs_do_not_leak_between_invocations(fgs):
    src = "def handler(event, context):\n    print('marker-' + event['n'])\n    return 'ok'\n"
    urn = create(fgs, src)
    for n in ["a", "b", "c"]:
        log = fgs.invoke(urn, {"n": n}, tail=True).json()["log"]
        assert log.count("marker-") == 1 and "marker-" + n in log


def test_function_error_form(fgs):
    src = "def handler(event, context):\n    raise ValueError('bad input')\n"
    urn = create(fgs, src)
    r = fgs.invoke(urn, tail=True)
    assert r.status_code == 200
    assert r.headers["X-Func-Err-Code"] == "4002" and r.headers["X-Is-Func-Err"] == "true"
    body = r.json()
    assert body["status"] == 500
    err = json.loads(body["result"])
    assert err["errorType"] == "ValueError"
    assert err["errorMessage"] == "function invocation exception, error: bad input"
    assert isinstance(err["stackTrace"], list) and err["stackTrace"]
    assert "invoke Failed" in body["log"] and "ValueError: bad input" in body["log"]
    v0 = fgs.invoke(urn, v1=False)
    assert json.loads(v0.text)["errorType"] == "ValueError" and v0.headers["X-Is-Func-Err"] == "true"


def test_syntax_error_is_reported_per_invocation(fgs):
    urn = create(fgs, "def handler(event, context)\n    return 1\n")
    r = fgs.invoke(urn)
    assert r.headers["X-Func-Err-Code"] == "4002"
    err = json.loads(r.json()["result"])
    assert err["errorMessage"].startswith("Syntax error in module 'index'")


def test_missing_handler_function(fgs):
    urn = create(fgs, "def other(event, context):\n    return 1\n")
    err = json.loads(fgs.invoke(urn).json()["result"])
    assert "function 'handler' not found" in err["errorMessage"]


def test_request_over_6mb_is_refused(fgs):
    urn = create(fgs, ECHO)
    big = b'"' + b"x" * (6 * 1024 * 1024 - 1) + b'"'
    body = error(fgs.invoke(urn, data=big), 413, "FSS.1201")
    assert str(len(big)) in body["error_msg"]

    def chunks():
        for _ in range(7):
            yield b"x" * (1024 * 1024)

    # Without Content-Length (chunked): refused once the limit is crossed.
    r = fgs.http.post(fgs.url + "/v2/%s/fgs/functions/%s/invocations" % (PROJECT, urn), data=chunks())
    error(r, 413, "FSS.1201")


def test_request_of_exactly_6mb_is_accepted(fgs):
    urn = create(fgs, "def handler(event, context):\n    return str(len(event))\n", memory_size=256)
    event = b'"' + b"x" * (6 * 1024 * 1024 - 2) + b'"'
    r = fgs.invoke(urn, data=event)
    assert r.json()["result"] == str(6 * 1024 * 1024 - 2), r.text[:300]


def test_response_over_6mb(fgs):
    src = "def handler(event, context):\n    return 'x' * event['n']\n"
    urn = create(fgs, src, memory_size=256)
    r = fgs.invoke(urn, {"n": 6 * 1024 * 1024 + 1})
    assert r.headers["X-Func-Err-Code"] == "4008" and r.headers["X-Is-Func-Err"] == "true"
    assert "response body size 6291457 exceeds the limit of 6291456" in json.loads(r.json()["result"])["errorMessage"]
    assert len(fgs.invoke(urn, {"n": 6 * 1024 * 1024}, v1=False).content) == 6 * 1024 * 1024


def test_timeout_kills_instance_and_next_call_works(fgs):
    src = """
import os, time
TOKEN = os.urandom(8).hex()
calls = 0
def handler(event, context):
    global calls
    calls += 1
    if event.get('spin'):
        while True:
            pass
    return {"calls": calls, "instance": TOKEN}
"""
    name = unique("spin")
    urn = fgs.create(**python_fn(name, src, timeout=3))["func_urn"]
    first = result(fgs.invoke(urn))
    pids = runtime_pids(name)
    assert len(pids) == 1
    start = time.time()
    r = fgs.invoke(urn, {"spin": True})
    elapsed = time.time() - start
    assert 2.9 <= elapsed <= 4.0, elapsed
    assert r.headers["X-Func-Err-Code"] == "4010" and r.headers["X-Is-Func-Err"] == "true"
    assert json.loads(r.json()["result"])["errorMessage"] == "call invoke timeout 3s"
    assert gone(pids), "timed-out instance was not killed"
    after = result(fgs.invoke(urn))
    assert after["calls"] == 1 and after["instance"] != first["instance"]


def test_context_methods(fgs):
    src = """
def handler(event, context):
    return {
        "request_id": context.getRequestID(),
        "remaining": context.getRemainingTimeInMilliSeconds(),
        "running": context.getRunningTimeInSeconds(),
        "user": context.getUserData("COLOR"),
        "missing": context.getUserData("NOPE", "dflt"),
        "name": context.getFunctionName(),
        "version": context.getVersion(),
        "memory": context.getMemorySize(),
        "cpu": context.getCPUNumber(),
        "project": context.getProjectID(),
        "package": context.getPackage(),
        "logger": hasattr(context.getLogger(), "info"),
    }
"""
    name = unique("ctx")
    fn = fgs.create(**python_fn(name, src, package="pkg1", timeout=10, memory_size=512, user_data='{"COLOR":"blue"}'))
    r = fgs.invoke(fn["func_urn"])
    ctx = result(r)
    assert ctx["request_id"] == r.headers["X-Cff-Request-Id"]
    assert 9000 < ctx["remaining"] <= 10000 and ctx["running"] == 10
    assert (ctx["user"], ctx["missing"]) == ("blue", "dflt")
    assert (ctx["name"], ctx["version"], ctx["memory"], ctx["cpu"]) == (name, "latest", 512, 600)
    assert (ctx["project"], ctx["package"], ctx["logger"]) == (PROJECT, "pkg1", True)


def test_instance_reuse_keeps_globals(fgs):
    urn = create(fgs, ECHO)
    runs = [result(fgs.invoke(urn)) for _ in range(3)]
    assert [r["calls"] for r in runs] == [1, 2, 3]
    assert len({r["instance"] for r in runs}) == 1


def test_open_files_limit(fgs):
    src = """
import resource
def handler(event, context):
    return {"nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)), "home": __import__("os").environ["HOME"]}
"""
    out = result(fgs.invoke(create(fgs, src)))
    assert out["nofile"] == [1024, 1024] and out["home"] == "/tmp"


def test_concurrent_invocations_get_their_own_instances(fgs):
    src = "import os, time\nTOKEN = os.urandom(8).hex()\ndef handler(event, context):\n    time.sleep(1)\n    return {'instance': TOKEN}\n"
    urn = create(fgs, src)
    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: result(requests.post(
            fgs.url + "/v2/%s/fgs/functions/%s/invocations" % (PROJECT, urn),
            data="{}", headers={"X-CFF-Request-Version": "v1"})), range(4)))
    assert time.time() - start < 2.5
    assert len({r["instance"] for r in results}) == 4
    # Afterwards the four instances are warm: sequential calls reuse them.
    again = {result(fgs.invoke(urn))["instance"] for _ in range(2)}
    assert again <= {r["instance"] for r in results}


def test_code_update_reaches_new_invocations(fgs):
    name = unique("upd")
    fgs.create(**python_fn(name, "import os\nT = os.urandom(8).hex()\ndef handler(e, c):\n    return {'v': 1, 'instance': T}\n"))
    old = result(fgs.invoke(name))
    old_pids = runtime_pids(name)
    r = fgs.api("PUT", "/functions/%s/code" % name, json={
        "code_type": "inline", "func_code": {"file": b64("import os\nT = os.urandom(8).hex()\ndef handler(e, c):\n    return {'v': 2, 'instance': T}\n")}})
    assert r.status_code == 200
    new = result(fgs.invoke(name))
    assert new["v"] == 2 and new["instance"] != old["instance"]
    assert gone(old_pids), "instance of the old code was not retired"
    r = fgs.api("PUT", "/functions/%s/config" % name, json=dict(
        func_name=name, runtime="Python3.9", handler="index.handler", memory_size=256, timeout=3,
        user_data='{"A":"b"}'))
    assert r.status_code == 200
    assert result(fgs.invoke(name))["instance"] != new["instance"]


def test_idle_instances_are_reaped(fresh_fgs):
    host = fresh_fgs("--idle-timeout", "1s")
    fn = host.create(**python_fn("idle", ECHO))
    first = result(host.invoke(fn["func_urn"]))
    pids = runtime_pids("idle")
    assert len(pids) == 1
    assert gone(pids, within=5), "idle instance was not reaped"
    second = result(host.invoke(fn["func_urn"]))
    assert second["calls"] == 1 and second["instance"] != first["instance"]


def test_initializer_runs_once_per_instance(fgs):
    src = """
import os
TOKEN = os.urandom(8).hex()
inits = 0
def init(context):
    global inits
    inits += 1
    context.getLogger().info("initializing %s", context.getFunctionName())
def handler(event, context):
    return {"inits": inits, "instance": TOKEN}
"""
    urn = create(fgs, src, initializer_handler="index.init", initializer_timeout=5)
    first = fgs.invoke(urn, tail=True)
    assert "initializing" in first.json()["log"]
    runs = [json.loads(first.json()["result"])] + [result(fgs.invoke(urn)) for _ in range(2)]
    assert [r["inits"] for r in runs] == [1, 1, 1]
    assert len({r["instance"] for r in runs}) == 1


def test_initializer_failure(fgs):
    src = "def init(context):\n    raise RuntimeError('no database')\ndef handler(e, c):\n    return 1\n"
    urn = create(fgs, src, initializer_handler="index.init", initializer_timeout=5)
    for _ in range(2):
        r = fgs.invoke(urn, tail=True)
        assert r.headers["X-Func-Err-Code"] == "4201" and r.headers["X-Is-Func-Err"] == "true"
        err = json.loads(r.json()["result"])
        assert err["errorType"] == "RuntimeError" and "no database" in err["errorMessage"]
        assert "RuntimeError: no database" in r.json()["log"]


def test_initializer_timeout(fgs):
    src = "import time\ndef init(context):\n    time.sleep(30)\ndef handler(e, c):\n    return 1\n"
    urn = create(fgs, src, initializer_handler="index.init", initializer_timeout=1)
    start = time.time()
    r = fgs.invoke(urn)
    assert time.time() - start < 2.5
    assert r.headers["X-Func-Err-Code"] == "4211"
    assert json.loads(r.json()["result"])["errorMessage"] == "runtime initialization timed out after 1s"


def test_process_exit_is_a_crash(fgs):
    urn = create(fgs, "import os\ndef handler(e, c):\n    os._exit(3)\n")
    r = fgs.invoke(urn)
    assert r.headers["X-Func-Err-Code"] == "4204" and r.headers["X-Is-Func-Err"] == "true"
    assert "exited with code 3" in json.loads(r.json()["result"])["errorMessage"]


def test_signal_names_the_signal(fgs):
    bootstrap = "#!/bin/sh\nkill -SEGV $$\n"
    fn = fgs.create(**custom_fn(unique("segv"), bootstrap))
    r = fgs.invoke(fn["func_urn"])
    assert r.headers["X-Func-Err-Code"] == "4204"
    assert "SIGSEGV" in json.loads(r.json()["result"])["errorMessage"]


def test_unknown_function_and_project_isolation(fgs):
    error(fgs.invoke("does-not-exist"), 404, "FSS.1051")
    urn_name = unique("iso")
    fgs.create(**python_fn(urn_name, ECHO))
    error(fgs.invoke(urn_name, project="someone-else"), 404, "FSS.1051")


def test_instance_memory_header_is_honoured_or_refused(fgs):
    from test_functions_api import HELLO
    """`X-Cff-Instance-Memory` needs FunctionGraph's dynamic memory, which fgs lacks: the
    function's own size runs, any other is refused (sync and async), never ignored."""
    from test_functions_api import error
    fn = fgs.create(**python_fn(unique("mem"), HELLO, memory_size=256))
    r = fgs.invoke(fn["func_urn"], {}, headers={"X-Cff-Instance-Memory": "256"})
    assert r.status_code == 200 and r.headers["X-Func-Err-Code"] == "0", r.text
    for value in ["512", "lots"]:
        body = error(fgs.invoke(fn["func_urn"], {}, headers={"X-Cff-Instance-Memory": value}), 400, "FSS.1007")
        assert "X-Cff-Instance-Memory" in body["error_msg"]
        error(fgs.api("POST", "/functions/%s/invocations-async" % fn["func_urn"], json={},
                      headers={"X-Cff-Instance-Memory": value}), 400, "FSS.1007")


def test_a_cold_start_reports_its_start_up_time(fgs):
    import re
    name = unique("cold")
    fn = fgs.create(**python_fn(name, "import time\ntime.sleep(0.2)\ndef handler(e, c):\n    return 1\n"))
    urn = fn["func_urn"]
    metric = r'^fgs_cold_start_seconds_count\{pooled="false",runtime="Python3.9"\} (\d+)'
    count = lambda: int((re.search(metric, fgs.http.get(fgs.url + "/metrics").text, re.M) or [0, 0])[1])
    before = count()
    cold = json.loads(fgs.invoke(urn).headers["X-Cff-Invoke-Summary"])
    # The module's import (0.2 s) is part of the start-up, not of the handler's duration.
    assert cold["initDuration"] >= 200 and cold["duration"] < 200, cold
    warm = json.loads(fgs.invoke(urn).headers["X-Cff-Invoke-Summary"])
    assert "initDuration" not in warm, warm
    assert count() == before + 1
