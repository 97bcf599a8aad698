"""Invocation logs: every invocation's log kept per function (sync, async, failed, published
versions), `GET /v2/{project_id}/fgs/functions/{function_urn}/logs` with its filters, paging
and long-poll, its refusals, retention by bytes and by age, logs across a restart, and the
`fgs logs` command (text, JSON, --request-id, --since, --follow, exit codes)."""

import json
import subprocess
import threading
import time

import pytest

from conftest import FGS, PROJECT, python_fn, unique
from test_eventstream import wait_for

SOURCE = """
import json
def handler(event, context):
    print("log line of", event.get("name"))
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("big"):
        print("b" * event["big"])
    return {"name": event.get("name")}
"""


def logs(host, urn, expect=200, project=PROJECT, **query):
    r = host.api("GET", "/functions/%s/logs" % urn, project=project, params=query)
    assert r.status_code == expect, r.text
    return r.json()


def fresh_function(host, **over):
    return host.create(**python_fn(unique("lg"), SOURCE, **over))["func_urn"][: -len(":latest")]


def test_every_invocation_is_logged_with_its_request_id_status_and_duration(fgs):
    urn = fresh_function(fgs)
    ok = fgs.invoke(urn, {"name": "one"}).json()
    failed = fgs.invoke(urn, {"name": "two", "fail": True}).json()
    r = fgs.api("POST", "/functions/%s/invocations-async" % urn, json={"name": "three"})
    assert r.status_code == 202, r.text
    async_id = r.json()["request_id"]
    wait_for(lambda: logs(fgs, urn)["count"] == 3, what="three logs")

    answer = logs(fgs, urn)
    first, second, third = answer["logs"]
    assert answer["next_marker"] == third["seq"] and first["seq"] < second["seq"] < third["seq"]
    assert set(first) == {"seq", "request_id", "function_urn", "version", "invoke_type", "status",
                          "error_code", "duration", "memory_used", "cold_start", "start_time",
                          "end_time", "log"}
    assert (first["request_id"], first["status"], first["error_code"], first["invoke_type"]) == \
        (ok["request_id"], "success", 0, "sync")
    assert first["function_urn"] == urn + ":latest" and first["version"] == "latest"
    assert first["cold_start"] is True and second["cold_start"] is False
    assert first["duration"] > 0 and first["start_time"].endswith("Z")
    assert first["log"].startswith(first["start_time"][:19] + "Z Start invoke request '%s'" % ok["request_id"])
    assert "log line of one\n" in first["log"] and "Finish invoke request" in first["log"]
    assert (second["request_id"], second["status"], second["error_code"]) == \
        (failed["request_id"], "failed", 4002)
    assert "asked to fail" in second["log"] and "(invoke Failed)" in second["log"]
    assert (third["request_id"], third["invoke_type"], third["status"]) == (async_id, "async", "success")

    # Filters: one request; a time window; paging after a marker; the newest N.
    assert [l["request_id"] for l in logs(fgs, urn, request_id=failed["request_id"])["logs"]] == \
        [failed["request_id"]]
    assert logs(fgs, urn, request_id="no-such-request")["logs"] == []
    assert logs(fgs, urn, since=int(time.time() * 1000) + 60_000)["count"] == 0
    assert logs(fgs, urn, until=0)["count"] == 0
    assert [l["seq"] for l in logs(fgs, urn, marker=first["seq"], limit=1)["logs"]] == [second["seq"]]
    assert [l["seq"] for l in logs(fgs, urn, limit=2)["logs"]] == [second["seq"], third["seq"]]
    empty = logs(fgs, urn, marker=third["seq"])
    assert (empty["logs"], empty["count"]) == ([], 0) and empty["next_marker"] >= third["seq"]


def test_a_version_qualified_urn_answers_that_versions_logs(fgs):
    urn = fresh_function(fgs)
    fgs.invoke(urn, {"name": "on-latest"})
    r = fgs.api("POST", "/functions/%s/versions" % urn, json={"version": "v1"})
    assert r.status_code == 200, r.text
    fgs.invoke(urn + ":v1", {"name": "on-v1"})
    wait_for(lambda: logs(fgs, urn)["count"] == 2, what="two logs")
    v1 = logs(fgs, urn + ":v1")["logs"]
    assert [(l["version"], l["function_urn"]) for l in v1] == [("v1", urn + ":v1")]
    assert "on-v1" in v1[0]["log"]
    assert [l["version"] for l in logs(fgs, urn + ":latest")["logs"]] == ["latest"]


def test_bad_log_queries_are_refused_and_projects_see_only_their_own(fgs):
    urn = fresh_function(fgs)
    for query in ({"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"wait": 31}, {"marker": -1},
                  {"since": "yesterday"}, {"until": -5}):
        answer = logs(fgs, urn, expect=400, **query)
        assert answer["error_code"] == "FSS.1001", (query, answer)
    missing = urn.rsplit(":", 1)[0] + ":no-such-function"
    assert logs(fgs, missing, expect=404)["error_code"] == "FSS.1051"
    # Another project's caller cannot name this function: its URN is not theirs (400), and
    # the same name in their project is another (missing) function (404).
    name = urn.rsplit(":", 1)[1]
    assert logs(fgs, urn, expect=400, project="other-project")["error_code"] == "FSS.1309"
    assert logs(fgs, name, expect=404, project="other-project")["error_code"] == "FSS.1051"


def test_a_waiting_query_answers_when_the_next_log_comes(fgs):
    urn = fresh_function(fgs)
    fgs.invoke(urn, {"name": "before"})
    wait_for(lambda: logs(fgs, urn)["count"] == 1, what="the first log")
    marker = logs(fgs, urn)["next_marker"]
    started = time.monotonic()
    assert logs(fgs, urn, marker=marker, wait=1)["count"] == 0
    assert 0.9 < time.monotonic() - started < 5, "an empty wait lasts its seconds"

    answers = []
    waiter = threading.Thread(target=lambda: answers.append(
        (logs(fgs, urn, marker=marker, wait=20), time.monotonic())))
    waiter.start()
    time.sleep(0.5)
    sent = time.monotonic()
    fgs.invoke(urn, {"name": "awaited"})
    waiter.join(timeout=25)
    answer, at = answers[0]
    assert [("awaited" in l["log"]) for l in answer["logs"]] == [True]
    assert at - sent < 5, "the waiting query answered as the log came, not at the end of its wait"


def test_long_logs_are_cut_and_the_byte_budget_keeps_the_newest(fresh_fgs):
    host = fresh_fgs("--log-max-bytes", "400000")
    urn = fresh_function(host)
    r = host.invoke(urn, {"name": "big", "big": 200_000}).json()
    wait_for(lambda: logs(host, urn)["count"] == 1, what="the big log")
    big = logs(host, urn)["logs"][0]["log"]
    assert len(big.encode()) <= 64 * 1024 + 400
    assert big.startswith(logs(host, urn)["logs"][0]["start_time"][:19] + "Z Start invoke request '%s'" % r["request_id"])
    assert "bytes cut ...]\n" in big and big.rstrip("\n").endswith("billing memory: 128MB")

    ids = [host.invoke(urn, {"name": "n%d" % i, "big": 30_000}).json()["request_id"] for i in range(30)]
    wait_for(lambda: logs(host, urn, limit=1)["logs"][-1]["request_id"] == ids[-1], what="the last log")
    kept = [l["request_id"] for l in logs(host, urn, limit=1000)["logs"]]
    assert kept == ids[-len(kept):], "the newest are kept, in order"
    assert 8 <= len(kept) < 14, "about 400 kB of 30 kB logs: %d kept" % len(kept)


def test_logs_expire_with_their_age_and_outlive_a_restart(fresh_fgs):
    host = fresh_fgs("--log-retention", "5s")
    urn = fresh_function(host)
    host.invoke(urn, {"name": "kept"})
    wait_for(lambda: logs(host, urn)["count"] == 1, what="the log")
    host.stop()
    host.start()
    assert "kept" in logs(host, urn)["logs"][0]["log"], "logs outlive a restart"
    wait_for(lambda: logs(host, urn)["count"] == 0, within=15, what="the log to expire")


def fgs_cli(*args, timeout=60):
    return subprocess.run([FGS, *args], capture_output=True, text=True, timeout=timeout)


def test_fgs_logs_prints_filters_and_follows(fgs):
    urn = fresh_function(fgs)
    name = urn.rsplit(":", 1)[1]
    endpoint = ["--endpoint", fgs.url, "--project", PROJECT]
    ids = [fgs.invoke(urn, {"name": "cli-%d" % i}).json()["request_id"] for i in range(3)]
    wait_for(lambda: logs(fgs, urn)["count"] == 3, what="three logs")

    out = fgs_cli("logs", name, *endpoint)
    assert out.returncode == 0, out.stderr
    starts = [line for line in out.stdout.splitlines() if "Start invoke request" in line]
    assert [s.split("'")[1] for s in starts] == ids
    assert "log line of cli-1" in out.stdout

    one = fgs_cli("logs", name, "--request-id", ids[1], "--output", "json", *endpoint)
    assert [json.loads(line)["request_id"] for line in one.stdout.splitlines()] == [ids[1]]
    assert fgs_cli("logs", name, "--since", "10m", "--limit", "2", *endpoint).stdout.count("Start invoke") == 2
    assert fgs_cli("logs", name, "--since", "2099-01-01T00:00:00Z", *endpoint).stdout == ""

    missing = fgs_cli("logs", "no-such-function", *endpoint)
    assert missing.returncode == 1 and "FSS.1051" in missing.stderr and missing.stdout == ""
    bad = fgs_cli("logs", name, "--since", "long ago", *endpoint)
    assert bad.returncode == 2 and "--since" in bad.stderr

    follower = subprocess.Popen([FGS, "logs", name, "--follow", "--since", "1s", "--output", "json", *endpoint],
                                stdout=subprocess.PIPE, text=True)
    stop = threading.Timer(30, follower.kill)
    stop.start()
    try:
        time.sleep(1.5)
        later = fgs.invoke(urn, {"name": "followed"}).json()["request_id"]
        seen = []
        while later not in seen:
            line = follower.stdout.readline()
            assert line, "the follower ended before the new log: %s" % seen
            seen.append(json.loads(line)["request_id"])
        assert seen[-1] == later and set(seen) <= set(ids + [later])
    finally:
        stop.cancel()
        follower.kill()
        follower.wait()
