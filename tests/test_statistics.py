"""list_function_statistics through the official SDK, from the invocations fgs recorded, and
list_quotas with real usage per project."""

import concurrent.futures

from huaweicloudsdkfunctiongraph.v2 import ListFunctionStatisticsRequest, ListQuotasRequest

from conftest import python_fn, unique
from test_sdk_compat import sdk_client

SOURCE = """import time
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    time.sleep(event.get("sleep", 0))
    return "ok"
"""


def test_statistics_count_what_ran_failed_and_was_refused(fresh_fgs):
    host = fresh_fgs()
    client = sdk_client(host, "fake-ak", "fake-sk")
    created = host.create(**python_fn(unique("stats"), SOURCE, timeout=10))
    urn = created["func_urn"]
    base = urn[: -len(":latest")]
    for event in [{"sleep": 0.05}] * 4 + [{"fail": True}] * 2:
        assert host.invoke(urn, event).status_code == 200
    # Three at once: concurrency_num sees them.
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: host.invoke(urn, {"sleep": 0.5}), range(3)))
    # Throttled: the function is disabled for a moment.
    assert host.api("PUT", "/functions/%s/config-max-instance" % base, json={"max_instance_num": 0}).status_code == 200
    assert host.invoke(urn, {}).status_code == 429
    assert host.api("PUT", "/functions/%s/config-max-instance" % base, json={"max_instance_num": -1}).status_code == 200

    stats = client.list_function_statistics(ListFunctionStatisticsRequest(func_urn=base, period="60"))
    assert len(stats.count) == 60
    timestamps = [p.timestamp for p in stats.count]
    assert timestamps == sorted(timestamps) and timestamps[1] - timestamps[0] == 60_000
    # Everything happened within this minute or the one before it.
    recent = lambda series: [p.value for p in series[-2:] if p.value != -1]
    assert sum(recent(stats.count)) == 9
    assert sum(recent(stats.fail_count)) == 2 and sum(recent(stats.function_error_count)) == 2
    assert sum(recent(stats.system_error_count)) == 0 and sum(recent(stats.reject_count)) == 1
    assert max(recent(stats.max_duration)) >= 500 and min(recent(stats.min_duration)) < 500
    assert max(recent(stats.concurrency_num)) >= 2
    assert all(p.value == -1 for p in stats.count[:-2]), "no data is -1, as documented"
    assert all(p.value == -1 for p in stats.duration[:-2])

    # Hour buckets beyond an hour; one version alone.
    day = host.api("GET", "/functions/%s/statistics/1440" % base).json()
    assert len(day["count"]) == 24
    assert sum(p["value"] for p in day["count"][-2:] if p["value"] != -1) == 9
    assert host.api("POST", "/functions/%s/versions" % base, json={"version": "v1"}).status_code == 200
    assert host.invoke(base + ":v1", {}).status_code == 200
    v1 = host.api("GET", "/functions/%s:v1/statistics/5" % base).json()
    assert sum(p["value"] for p in v1["count"] if p["value"] != -1) == 1
    whole = host.api("GET", "/functions/%s/statistics/5" % base).json()
    assert sum(p["value"] for p in whole["count"] if p["value"] != -1) == 10

    for bad in ("0", "x", "10081"):
        r = host.api("GET", "/functions/%s/statistics/%s" % (base, bad))
        assert (r.status_code, r.json()["error_code"]) == (400, "FSS.0400"), r.text
    r = host.api("GET", "/functions/%s/statistics/5" % (base + "-none"))
    assert (r.status_code, r.json()["error_code"]) == (404, "FSS.1051")


def test_quotas_report_the_projects_own_usage(fresh_fgs):
    host = fresh_fgs()
    client = sdk_client(host, "fake-ak", "fake-sk")
    for _ in range(2):
        host.create(**python_fn(unique("quota"), SOURCE))
    r = host.api("POST", "/functions", project="e" * 32, json=python_fn(unique("other"), SOURCE))
    assert r.status_code == 200
    resources = {q.type: q for q in client.list_quotas(ListQuotasRequest()).quotas.resources}
    assert resources["fgs_func_num"].used == 2 and resources["fgs_func_num"].quota == 400
    assert resources["fgs_func_code_size"].unit == "MB"
    assert resources["fgs_func_qos_limit"].used == 0
    other = host.api("GET", "/quotas", project="e" * 32).json()["quotas"]["resources"]
    assert {q["type"]: q["used"] for q in other}["fgs_func_num"] == 1
