"""Asynchronous invocation: durable accept, records, retries, age, destinations, cancel,
concurrency limits, and survival of a killed host."""

import collections
import concurrent.futures
import json
import re
import signal
import time


from conftest import python_fn, unique
from test_functions_api import error


def invoke_async(host, urn, event=None, data=None):
    body = data if data is not None else json.dumps(event if event is not None else {})
    return host.api("POST", "/functions/%s/invocations-async" % urn, data=body,
                    headers={"Content-Type": "application/json"})


def accept(host, urn, event=None):
    r = invoke_async(host, urn, event)
    assert r.status_code == 202, r.text
    assert set(r.json()) == {"request_id"}
    return r.json()["request_id"]


def records(host, urn, **params):
    r = host.api("GET", "/functions/%s/async-invocations" % urn, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def all_records(host, urn):
    out, marker = [], 0
    while True:
        page = records(host, urn, marker=marker, limit=500)
        out += page["invocations"]
        marker = page["next_marker"]
        if marker >= page["count"]:
            return out


def wait_status(host, urn, request_id, statuses=("SUCCESS", "FAIL", "DISCARD"), within=20):
    deadline = time.time() + within
    while time.time() < deadline:
        found = records(host, urn, request_id=request_id)["invocations"]
        if found and found[0]["status"] in statuses:
            return found[0]
        time.sleep(0.1)
    raise AssertionError("request %s did not reach %s: %s" % (request_id, statuses, found))


def metric(host, urn, code):
    text = host.http.get(host.url + "/metrics").text
    m = re.search(r'fgs_invocations_total\{code="%s",function="%s"\} (\d+)' % (code, re.escape(urn)), text)
    return int(m.group(1)) if m else 0


ECHO = "def handler(event, context):\n    return {'got': event}\n"
FAIL_ALWAYS = "def handler(event, context):\n    raise ValueError('always fails')\n"


def test_accept_and_record(fgs):
    fn = fgs.create(**python_fn(unique("acc"), ECHO))
    rid = accept(fgs, fn["func_urn"], {"k": "v"})
    rec = wait_status(fgs, fn["func_urn"], rid)
    assert rec["status"] == "SUCCESS" and rec["error_code"] == 0 and rec["error_message"] == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", rec["start_time"]) and rec["end_time"]
    page = records(fgs, fn["func_urn"], status="SUCCESS")
    assert page["count"] == 1 and page["next_marker"] == 1
    assert records(fgs, fn["func_urn"], status="FAIL")["count"] == 0
    # The time window: by default the last hour; one that ended before the request is empty.
    assert records(fgs, fn["func_urn"], query_end_time="2020-01-01T00:00:00")["count"] == 0
    assert records(fgs, fn["func_urn"], query_begin_time="2020-01-01T00:00:00")["count"] == 1
    error(fgs.api("GET", "/functions/%s/async-invocations" % fn["func_urn"], params={"query_begin_time": "yesterday"}),
          400, "FSS.1001")
    error(fgs.api("GET", "/functions/%s/async-invocations" % fn["func_urn"], params={"limit": 501}), 400, "FSS.1001")
    error(fgs.api("GET", "/functions/%s/async-invocations" % fn["func_urn"], params={"status": "BOGUS"}), 400, "FSS.1001")
    error(invoke_async(fgs, "no-such-function"), 404, "FSS.1051")


def test_256kb_limit(fgs):
    fn = fgs.create(**python_fn(unique("big"), "def handler(e, c):\n    return len(e)\n"))
    exact = '"' + "x" * (256 * 1024 - 2) + '"'
    assert invoke_async(fgs, fn["func_urn"], data=exact).status_code == 202
    body = error(invoke_async(fgs, fn["func_urn"], data=exact + " "), 413, "FSS.1201")
    assert "262145" in body["error_msg"]


def test_retries_are_counted_exactly(fresh_fgs):
    host = fresh_fgs("--async-retry-delay", "50ms")
    fn = host.create(**python_fn("fails", FAIL_ALWAYS))
    r = host.api("PUT", "/functions/fails/async-invoke-config", json={"max_async_retry_attempts": 2})
    assert r.status_code == 200 and r.json()["max_async_retry_attempts"] == 2
    rec = wait_status(host, fn["func_urn"], accept(host, fn["func_urn"]))
    assert rec["status"] == "FAIL" and rec["error_code"] == 4002
    assert rec["error_message"] == "function invocation exception, error: always fails"
    assert metric(host, fn["func_urn"], "4002") == 3  # the attempt and exactly 2 retries
    flaky_src = """
failures = {}
def handler(event, context):
    rid = context.getRequestID()
    failures[rid] = failures.get(rid, 0) + 1
    if failures[rid] <= 2:
        raise RuntimeError("flaky %d" % failures[rid])
    return failures[rid]
"""
    flaky = host.create(**python_fn("flaky", flaky_src))
    host.api("PUT", "/functions/flaky/async-invoke-config", json={"max_async_retry_attempts": 3})
    rec = wait_status(host, flaky["func_urn"], accept(host, flaky["func_urn"]))
    assert rec["status"] == "SUCCESS"
    assert (metric(host, flaky["func_urn"], "4002"), metric(host, flaky["func_urn"], "0")) == (2, 1)
    # Without a policy, a failure is not retried.
    once = host.create(**python_fn("once", FAIL_ALWAYS))
    assert wait_status(host, once["func_urn"], accept(host, once["func_urn"]))["status"] == "FAIL"
    assert metric(host, once["func_urn"], "4002") == 1


def test_async_config_api(fgs):
    name = unique("cfg")
    fn = fgs.create(**python_fn(name, ECHO))
    error(fgs.api("GET", "/functions/%s/async-invoke-config" % name), 404, "FSS.0404")
    body = {"max_async_event_age_in_seconds": 120, "max_async_retry_attempts": 3, "enable_async_status_log": True,
            "destination_config": {"on_success": {"destination": "FunctionGraph", "param": json.dumps({"func_urn": fn["func_urn"]})}}}
    r = fgs.api("PUT", "/functions/%s/async-invoke-config" % name, json=body)
    assert r.status_code == 200, r.text
    shown = fgs.api("GET", "/functions/%s/async-invoke-config" % name).json()
    assert shown["func_urn"] == fn["func_urn"] and shown["max_async_event_age_in_seconds"] == 120
    assert shown["max_async_retry_attempts"] == 3 and shown["enable_async_status_log"] is True
    assert shown["destination_config"]["on_success"]["destination"] == "FunctionGraph"
    assert shown["created_time"] and shown["last_modified"]
    for bad in [{"max_async_event_age_in_seconds": 0}, {"max_async_event_age_in_seconds": 86401},
                {"max_async_retry_attempts": 4}, {"max_async_retry_attempts": -1},
                {"destination_config": {"on_failure": {"destination": "OBS", "param": "{}"}}},
                {"destination_config": {"on_failure": {"destination": "FunctionGraph", "param": "no json"}}}]:
        error(fgs.api("PUT", "/functions/%s/async-invoke-config" % name, json=bad), 400, "FSS.0400")
    assert fgs.api("DELETE", "/functions/%s/async-invoke-config" % name).status_code == 204
    error(fgs.api("GET", "/functions/%s/async-invoke-config" % name), 404, "FSS.0404")


def collector(host):
    """A function that keeps what it receives; one instance only, so sync calls see it all."""
    src = """
received = []
def handler(event, context):
    if isinstance(event, dict) and event.get("dump"):
        return received
    received.append(event)
    return "kept"
"""
    fn = host.create(**python_fn(unique("sink"), src))
    assert host.api("PUT", "/functions/%s/config-max-instance" % fn["func_name"], json={"max_instance_num": 1}).status_code == 200
    return fn


def dump(host, fn, expect, within=15):
    deadline = time.time() + within
    while time.time() < deadline:
        r = host.invoke(fn["func_urn"], {"dump": True})
        if r.status_code == 200:
            got = json.loads(r.json()["result"])
            if len(got) >= expect:
                return got
        time.sleep(0.1)
    raise AssertionError("destination did not receive %d payloads" % expect)


def test_destinations(fresh_fgs):
    host = fresh_fgs("--async-retry-delay", "50ms")
    sink = collector(host)
    dest = {"destination": "FunctionGraph", "param": json.dumps({"func_urn": sink["func_urn"]})}
    ok = host.create(**python_fn("ok", ECHO))
    bad = host.create(**python_fn("bad", FAIL_ALWAYS))
    for name in ["ok", "bad"]:
        r = host.api("PUT", "/functions/%s/async-invoke-config" % name, json={
            "max_async_retry_attempts": 1, "destination_config": {"on_success": dest, "on_failure": dest}})
        assert r.status_code == 200
    ok_id = accept(host, ok["func_urn"], {"n": 1})
    bad_id = accept(host, bad["func_urn"], {"n": 2})
    payloads = {p["request_context"]["request_id"]: p for p in dump(host, sink, 2)}
    success, failure = payloads[ok_id], payloads[bad_id]
    assert success["request_context"] == {"request_id": ok_id, "function_urn": ok["func_urn"], "condition": "",
                                          "approximate_invoke_count": 1}
    assert json.loads(success["request_payload"]) == {"n": 1}
    assert success["response_context"] == {"status_code": 200, "function_error": ""}
    assert json.loads(success["response_payload"]) == {"got": {"n": 1}}
    assert success["timestamp"]
    assert failure["request_context"]["condition"] == "UnhandledInvocationError"
    assert failure["request_context"]["approximate_invoke_count"] == 2
    assert failure["response_context"]["status_code"] == 500
    assert json.loads(failure["response_payload"])["errorType"] == "ValueError"


def occupy(host, urn, seconds):
    """Runs a sync call of `urn` sleeping `seconds` in the background."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(host.invoke, urn, {"sleep": seconds})
    time.sleep(0.5)
    return future


SLEEPER = "import time\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return 'slept'\n"


def test_max_event_age_discards(fresh_fgs):
    host = fresh_fgs()
    fn = host.create(**python_fn("aged", SLEEPER))
    host.api("PUT", "/functions/aged/config-max-instance", json={"max_instance_num": 1})
    sink = collector(host)
    host.api("PUT", "/functions/aged/async-invoke-config", json={
        "max_async_event_age_in_seconds": 1,
        "destination_config": {"on_failure": {"destination": "FunctionGraph", "param": json.dumps({"func_urn": sink["func_urn"]})}}})
    busy = occupy(host, fn["func_urn"], 2.5)
    rid = accept(host, fn["func_urn"])
    assert records(host, fn["func_urn"], request_id=rid)["invocations"][0]["status"] == "WAIT"
    assert busy.result().json()["result"] == "slept"
    rec = wait_status(host, fn["func_urn"], rid)
    assert rec["status"] == "DISCARD"
    assert dump(host, sink, 1)[0]["request_context"]["condition"] == "EventAgeExceeded"
    assert metric(host, fn["func_urn"], "0") == 1  # only the sync call ran


def test_cancel(fresh_fgs):
    host = fresh_fgs()
    fn = host.create(**python_fn("cancelme", SLEEPER))
    host.api("PUT", "/functions/cancelme/config-max-instance", json={"max_instance_num": 1})
    busy = occupy(host, fn["func_urn"], 2)
    rid = accept(host, fn["func_urn"])
    active = host.api("GET", "/functions/cancelme/active-async-invocations").json()
    assert [i["request_id"] for i in active["invocations"]] == [rid] and active["invocations"][0]["status"] == "WAIT"
    picked = host.api("GET", "/functions/cancelme/active-async-invocations", params={"requests": "nope," + rid}).json()
    assert [i["request_id"] for i in picked["invocations"]] == [rid]
    none = host.api("GET", "/functions/cancelme/active-async-invocations", params={"requests": "nope"}).json()
    assert none["count"] == 0
    error(host.api("GET", "/functions/cancelme/active-async-invocations",
                   params={"requests": ",".join("r%d" % i for i in range(11))}), 400, "FSS.1001")
    r = host.api("POST", "/functions/cancelme/cancel", json={"request_id": rid, "type": "force"})
    assert r.status_code == 200 and r.json() is None
    rec = wait_status(host, fn["func_urn"], rid)
    assert (rec["status"], rec["error_code"], rec["error_message"]) == ("FAIL", 4208, "function invocation canceled")
    # Without `status`, the active list holds every status, as the SDK documents; with one, only it.
    listed = host.api("GET", "/functions/cancelme/active-async-invocations").json()
    assert [(i["request_id"], i["status"]) for i in listed["invocations"]] == [(rid, "FAIL")]
    waiting = host.api("GET", "/functions/cancelme/active-async-invocations", params={"status": "WAIT"}).json()
    assert waiting["count"] == 0
    error(host.api("POST", "/functions/cancelme/cancel", json={"request_id": rid}), 400, "FSS.0400")
    error(host.api("POST", "/functions/cancelme/cancel", json={"request_id": "nope"}), 400, "FSS.0400")
    busy.result()
    time.sleep(0.5)
    assert metric(host, fn["func_urn"], "0") == 1, "the canceled request must not run"


def test_tenant_limit_refuses_sync_and_queues_async(fresh_fgs):
    host = fresh_fgs("--tenant-concurrency", "2")
    fn = host.create(**python_fn("limited", SLEEPER))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(host.invoke, fn["func_urn"], {"sleep": 2}) for _ in range(2)]
        time.sleep(0.7)
        start = time.time()
        r = host.invoke(fn["func_urn"])
        assert time.time() - start < 0.5, "a refused sync call must not wait"
        body = error(r, 429, "FSS.0429")
        assert "2 concurrent executions" in body["error_msg"]
        queued = [accept(host, fn["func_urn"], {"sleep": 0.1}) for _ in range(5)]
        assert "fgs_async_waiting 5" in host.http.get(host.url + "/metrics").text
        assert all(s.result().json()["result"] == "slept" for s in slow)
    assert all(wait_status(host, fn["func_urn"], rid)["status"] == "SUCCESS" for rid in queued)
    quotas = host.api("GET", "/quotas").json()["quotas"]["resources"]
    assert {"type": "fgs_func_qos_limit", "quota": 2, "used": 0, "unit": ""} in quotas
    assert any(q["type"] == "fgs_func_num" and q["used"] == 1 and q["quota"] == 400 for q in quotas)


def test_max_instance_num_is_respected(fresh_fgs, witness):
    host = fresh_fgs()
    fn = host.create(**python_fn("capped", witness.source(sleep=0.3)))
    r = host.api("PUT", "/functions/capped/config-max-instance", json={"max_instance_num": 2})
    assert r.status_code == 200 and r.json()["strategy_config"]["concurrency"] == 2
    ids = [accept(host, fn["func_urn"]) for _ in range(10)]
    assert all(wait_status(host, fn["func_urn"], rid)["status"] == "SUCCESS" for rid in ids)
    assert witness.peak == 2, witness.peak
    assert sorted(witness.seen.values()) == [1] * 10
    for bad in [-2, 1001]:
        error(host.api("PUT", "/functions/capped/config-max-instance", json={"max_instance_num": bad}), 400, "FSS.1026")
    assert host.api("PUT", "/functions/capped/config-max-instance", json={"max_instance_num": 0}).status_code == 200
    error(host.invoke(fn["func_urn"]), 429, "FSS.0429")
    error(invoke_async(host, fn["func_urn"]), 429, "FSS.0429")


def test_nothing_accepted_is_lost_when_the_host_is_killed(fresh_fgs, witness):
    host = fresh_fgs("--tenant-concurrency", "20")
    fn = host.create(**python_fn("durable", witness.source(sleep=0.05), timeout=60))
    urn = fn["func_urn"]
    ids = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda _: accept(host, urn), range(1000)))
    assert len(set(ids)) == 1000
    host.stop(signal.SIGKILL)  # within a second of the last accept
    ran_before = sum(1 for _ in witness.seen)
    again = fresh_fgs("--tenant-concurrency", "20", data_dir=host.data_dir)
    deadline = time.time() + 120
    while time.time() < deadline:
        final = all_records(again, urn)
        if len(final) == 1000 and all(r["status"] == "SUCCESS" for r in final):
            break
        time.sleep(0.5)
    final = all_records(again, urn)
    statuses = collections.Counter(r["status"] for r in final)
    failures = collections.Counter(r["error_message"] for r in final if r["status"] != "SUCCESS")
    assert statuses == {"SUCCESS": 1000}, (statuses, failures.most_common(3))
    assert {r["request_id"] for r in all_records(again, urn)} == set(ids)
    assert set(witness.seen) == set(ids), "every accepted request ran"
    duplicates = sum(n - 1 for n in witness.seen.values())
    # Only requests that were running when the host died (at most 20 at once) may run twice.
    assert duplicates <= 20, duplicates
    print("\ndurability: %d ran before the kill, %d duplicates after restart" % (ran_before, duplicates))


def test_reserved_instances_are_kept_warm(fresh_fgs):
    from conftest import runtime_pids
    host = fresh_fgs("--idle-timeout", "1s", "--tenant-concurrency", "5")
    fn = host.create(**python_fn("reserved", ECHO))
    r = host.api("PUT", "/functions/reserved/reservedinstances", json={"count": 2, "idle_mode": False})
    assert r.status_code == 200 and r.json()["count"] == 2, r.text
    deadline = time.time() + 10
    while len(runtime_pids("reserved")) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert len(runtime_pids("reserved")) == 2, "reserved instances start without any invocation"
    assert host.api("GET", "/functions/reserved/config").json()["reserved_instance_count"] == 2
    time.sleep(2.5)  # well past the idle timeout
    assert len(runtime_pids("reserved")) == 2, "reserved instances are not reaped"
    assert host.invoke(fn["func_urn"], {"a": 1}).status_code == 200
    assert metric(host, fn["func_urn"], "0") == 1
    text = host.http.get(host.url + "/metrics").text
    assert 'fgs_cold_starts_total{function="%s"}' % fn["func_urn"] not in text, "the first call found a warm instance"
    # A code update moves the reservation to the new code: two new instances, warm.
    before = set(runtime_pids("reserved"))
    r = host.api("PUT", "/functions/reserved/code", json={"code_type": "inline", "func_code": {
        "file": __import__("base64").b64encode(b"def handler(e, c):\n    return 'v2'\n").decode()}})
    assert r.status_code == 200
    deadline = time.time() + 10
    while not (len(runtime_pids("reserved")) == 2 and not before & set(runtime_pids("reserved"))) and time.time() < deadline:
        time.sleep(0.1)
    after = set(runtime_pids("reserved"))
    assert len(after) == 2 and not before & after, (before, after)
    assert host.invoke(fn["func_urn"]).json()["result"] == "v2"
    # Counted against the tenant's concurrency (5 here).
    other = host.create(**python_fn("other", ECHO))
    error(host.api("PUT", "/functions/other/reservedinstances", json={"count": 4}), 400, "FSS.1076")
    assert host.api("PUT", "/functions/other/reservedinstances", json={"count": 3}).status_code == 200
    quotas = host.api("GET", "/quotas").json()["quotas"]["resources"]
    assert {"type": "fgs_func_occurs", "quota": 5, "used": 5, "unit": ""} in quotas
    # Releasing the reservation lets the idle reaper stop them.
    assert host.api("PUT", "/functions/reserved/reservedinstances", json={"count": 0}).status_code == 200
    deadline = time.time() + 5
    while runtime_pids("reserved") and time.time() < deadline:
        time.sleep(0.1)
    assert runtime_pids("reserved") == []
    del other


def test_cancel_a_running_request(fresh_fgs, witness):
    host = fresh_fgs()
    fn = host.create(**python_fn("running", witness.source(sleep=30), timeout=60))
    rid = accept(host, fn["func_urn"])
    wait_status(host, fn["func_urn"], rid, statuses=("RUNNING",))
    deadline = time.time() + 10
    while witness.current == 0 and time.time() < deadline:
        time.sleep(0.05)
    start = time.time()
    r = host.api("POST", "/functions/running/cancel", json={"request_id": rid, "type": "force"})
    assert r.status_code == 200 and r.json() is None, r.text
    rec = wait_status(host, fn["func_urn"], rid)
    assert time.time() - start < 3
    assert (rec["status"], rec["error_code"]) == ("FAIL", 4208)
    from conftest import runtime_pids
    deadline = time.time() + 5
    while runtime_pids("running") and time.time() < deadline:
        time.sleep(0.05)
    assert runtime_pids("running") == [], "the canceled request's instance was not stopped"


def test_a_backlog_after_kill_9_starts_instances_within_the_bound_while_cpu_hogs_run(fresh_fgs):
    """500 queued async requests, kill -9, a restart while two CPU hogs run: the dispatcher
    admits 100 at once (the tenant limit) but at most 3 instances start at a time, waiting ones
    take the instances that come back, and every request ends SUCCESS (none FAIL with 4012)."""
    import subprocess
    import sys
    args = ("--max-concurrent-starts", "3")
    host = fresh_fgs(*args)
    fn = host.create(**python_fn(unique("storm"), "import time\ndef handler(event, context):\n"
                                 "    time.sleep(0.05)\n    return 'ok'\n", timeout=30))
    urn = fn["func_urn"]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda _: accept(host, urn), range(500)))
    host.stop(signal.SIGKILL)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        again = fresh_fgs(*args, data_dir=host.data_dir)
        deadline = time.time() + 240
        while time.time() < deadline:
            final = all_records(again, urn)
            if len(final) == 500 and all(r["status"] in ("SUCCESS", "FAIL", "DISCARD") for r in final):
                break
            time.sleep(0.5)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    final = all_records(again, urn)
    statuses = collections.Counter(r["status"] for r in final)
    failures = collections.Counter((r["error_code"], r["error_message"]) for r in final if r["status"] != "SUCCESS")
    assert statuses == {"SUCCESS": 500}, (statuses, failures.most_common(3))
    assert {r["request_id"] for r in final} == set(ids)
    text = again.http.get(again.url + "/metrics").text
    peak = int(re.search(r"^fgs_instance_starts_peak (\d+)", text, re.M).group(1))
    assert 1 <= peak <= 3, peak


def test_one_projects_slow_starts_leave_start_slots_to_the_others(fresh_fgs):
    """With 2 start slots a project holds at most 1: while three of its functions take 4 s each
    to start, another project's cold start goes through the other slot at once."""
    from conftest import OTHER_PROJECT
    host = fresh_fgs("--max-concurrent-starts", "2")
    slow_src = "import time\ntime.sleep(4)\ndef handler(event, context):\n    return 'slow'\n"
    slow = [host.create(**python_fn(unique("slow"), slow_src, timeout=10))["func_urn"] for _ in range(3)]
    r = host.api("POST", "/functions", project=OTHER_PROJECT,
                 json=python_fn(unique("quick"), "def handler(event, context):\n    return 'quick'\n"))
    assert r.status_code == 200, r.text
    quick = r.json()["func_urn"]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        running = [pool.submit(host.invoke, urn) for urn in slow]
        time.sleep(1)
        start = time.time()
        answer = host.invoke(quick, project=OTHER_PROJECT)
        elapsed = time.time() - start
        assert answer.status_code == 200 and answer.json()["result"] == "quick", answer.text
        assert elapsed < 2.5, "the other project waited %.1f s for a start slot" % elapsed
        assert all(f.result().json()["result"] == "slow" for f in running)
