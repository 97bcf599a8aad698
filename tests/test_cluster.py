"""Cluster mode: several hosts sharing one PostgreSQL database (`--store postgres://...`).
Functions, versions, aliases and code live in the database; every host follows the others'
writes through PostgreSQL's notices."""

import json
import os
import time

import pytest
from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionRequest,
    CreateFunctionRequestBody,
    FuncCode,
)

from conftest import Fgs, b64, make_zip, python_fn, report, unique
from test_sdk_compat import sdk_client

SOURCE = """def handler(event, context):
    return {"greeting": %r}
"""


@pytest.fixture
def cluster(postgres, tmp_path):
    """Starts hosts on one new database, each with its own data dir and the same host key."""
    url = postgres.database()
    key = tmp_path / "secret.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    hosts = []

    def start(count=1, *args):
        for _ in range(count):
            data_dir = str(tmp_path / ("host%d" % len(hosts)))
            hosts.append(Fgs(data_dir, ["--store", url, "--secret-key-file", str(key)] + list(args)).start())
        return hosts[-count:]

    start.url = url
    yield start
    for host in hosts:
        host.stop()


def greeting(host, urn):
    r = host.invoke(urn, {})
    if r.status_code != 200:
        return r.status_code, r.json().get("error_code")
    return json.loads(r.json()["result"])["greeting"]


def until(check, expected, timeout):
    """Seconds until `check()` returns `expected` (polling every 5 ms); fails after `timeout`."""
    start = time.time()
    while True:
        got = check()
        if got == expected:
            return time.time() - start
        assert time.time() - start < timeout, "still %r after %.1f s" % (got, timeout)
        time.sleep(0.005)


def test_a_function_created_on_one_host_runs_on_every_host(cluster, postgres):
    a, b, c = cluster(3)
    name = unique("cluster")
    created = sdk_client(a, "ak", "sk").create_function(CreateFunctionRequest(body=CreateFunctionRequestBody(
        func_name=name, package="default", runtime="Python3.9", handler="index.handler",
        memory_size=128, timeout=3, code_type="inline", func_code=FuncCode(file=b64(SOURCE % "hello")))))
    urn = created.func_urn[: -len(":latest")]
    for host in (b, c):
        until(lambda: greeting(host, urn), "hello", 2)

    # Updated on A: served by B within a second.
    started = time.time()
    r = a.api("PUT", "/functions/%s/code" % urn,
              json={"code_type": "inline", "func_code": {"file": b64(SOURCE % "bye")}})
    assert r.status_code == 200, r.text
    until(lambda: greeting(b, urn), "bye", 1)
    report("cluster: code updated on host A served by host B after %.0f ms" % ((time.time() - started) * 1000))

    # Settings changed on B reach A and C; a zip package made on C runs on A.
    r = b.api("PUT", "/functions/%s/config" % urn, json={"func_name": urn.rsplit(":", 1)[1], "memory_size": 256, "timeout": 5,
                                                            "handler": "index.handler", "runtime": "Python3.9"})
    assert r.status_code == 200, r.text
    for host in (a, c):
        until(lambda: host.api("GET", "/functions/%s/config" % urn).json()["memory_size"], 256, 1)
    zipped = make_zip({"index.py": SOURCE % "zipped"})
    r = c.api("PUT", "/functions/%s/code" % urn,
              json={"code_type": "zip", "code_filename": "code.zip", "func_code": {"file": b64(zipped)}})
    assert r.status_code == 200, r.text
    until(lambda: greeting(a, urn), "zipped", 1)

    # A host that joins later, on an empty data dir, has everything: code from the database.
    (d,) = cluster(1)
    assert greeting(d, urn) == "zipped"

    # Deleted on B: gone everywhere.
    assert b.api("DELETE", "/functions/%s" % urn).status_code == 204
    for host in (a, c, d):
        until(lambda: greeting(host, urn), (404, "FSS.1051"), 1)
    # The package stays in the database for other functions of the same digest; the records
    # are gone.
    assert postgres.sql("SELECT count(*) FROM functions", database=cluster.url.rsplit("/", 1)[1]).strip() == "0"


def test_names_are_unique_across_hosts_and_versions_and_aliases_follow(cluster):
    a, b = cluster(2)
    name = unique("cluster")
    body = python_fn(name, SOURCE % "one")
    urn = a.create(**body)["func_urn"][: -len(":latest")]
    # B may not have heard yet; the database refuses the name all the same.
    r = b.api("POST", "/functions", json=body)
    assert (r.status_code, r.json()["error_code"]) == (409, "FSS.1061"), r.text
    r = a.api("POST", "/functions/%s/versions" % urn, json={"version": "v1"})
    assert r.status_code == 200, r.text
    r = a.api("POST", "/functions/%s/aliases" % urn, json={"name": "prod", "version": "v1"})
    assert r.status_code == 200, r.text
    r = a.api("PUT", "/functions/%s/code" % urn,
              json={"code_type": "inline", "func_code": {"file": b64(SOURCE % "two")}})
    assert r.status_code == 200, r.text
    until(lambda: greeting(b, urn + ":prod"), "one", 1)
    until(lambda: greeting(b, urn), "two", 1)
    listed = b.api("GET", "/functions/%s/versions" % urn).json()["versions"]
    assert sorted(v["version"] for v in listed) == ["latest", "v1"]


def test_a_host_restarted_after_changes_elsewhere_serves_them(cluster):
    a, b = cluster(2)
    name = unique("cluster")
    created = a.create(**python_fn(name, SOURCE % "before"))
    urn = created["func_urn"][: -len(":latest")]
    until(lambda: greeting(b, urn), "before", 2)
    b.stop()
    r = a.api("PUT", "/functions/%s/code" % urn,
              json={"code_type": "inline", "func_code": {"file": b64(SOURCE % "after")}})
    assert r.status_code == 200, r.text
    b.start()
    assert greeting(b, urn) == "after"


def test_a_store_url_is_checked_and_its_password_never_logged(cluster, postgres, tmp_path):
    host = Fgs(str(tmp_path / "bad"), ["--store", "mysql://x"])
    with pytest.raises(RuntimeError):
        host.start()
    assert "a store is sqlite://PATH or postgres://" in open(host.log.name).read()
    # A wrong password (the cluster trusts every local connection, so a missing database
    # stands in for a refused login): fgs says which store, without the password.
    url = "postgres://fgs:s3cret-pw@127.0.0.1:%d/no_such_database" % postgres.port
    host = Fgs(str(tmp_path / "missing"), ["--store", url])
    with pytest.raises(RuntimeError):
        host.start()
    message = open(host.log.name).read()
    assert "cannot open the store postgres://fgs:***@127.0.0.1" in message, message
    assert "s3cret-pw" not in message


def test_async_requests_spread_over_hosts_survive_a_host_killed_mid_way(cluster, witness):
    """3000 async requests accepted by three hosts, one killed with kill -9 half-way: the others
    take over its requests once its membership expires (10 s), and every request ends SUCCESS.
    Only requests that were running on the killed host (at most its tenant concurrency, 20)
    may run twice."""
    import collections
    import concurrent.futures
    import signal
    from test_async import accept, all_records

    hosts = cluster(3, "--tenant-concurrency", "20")
    fn = hosts[0].create(**python_fn(unique("spread"), witness.source(sleep=0.01), timeout=60))
    urn = fn["func_urn"]
    for host in hosts[1:]:
        until(lambda: host.api("GET", "/functions/%s/config" % urn).status_code, 200, 2)

    def accept_on(hosts, count):
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            return list(pool.map(lambda i: accept(hosts[i % len(hosts)], urn), range(count)))

    ids = accept_on(hosts, 1500)
    killed = hosts[1]
    killed.stop(signal.SIGKILL)
    ids += accept_on([hosts[0], hosts[2]], 1500)
    assert len(set(ids)) == 3000
    started = time.time()
    deadline = started + 120
    while time.time() < deadline:
        final = all_records(hosts[2], urn)
        if len(final) == 3000 and all(r["status"] == "SUCCESS" for r in final):
            break
        time.sleep(0.5)
    final = all_records(hosts[0], urn)
    statuses = collections.Counter(r["status"] for r in final)
    assert statuses == {"SUCCESS": 3000}, statuses
    assert set(witness.seen) == set(ids), "every accepted request ran"
    duplicates = sum(n - 1 for n in witness.seen.values())
    assert duplicates <= 20, duplicates
    report("cluster: 3000 async requests over 3 hosts, one killed half-way: all SUCCESS %.1f s after the "
           "last accept, %d duplicates" % (time.time() - started, duplicates))


def test_a_host_stopped_gracefully_hands_its_requests_over_at_once(cluster, witness):
    a, b = cluster(2, "--tenant-concurrency", "2")
    fn = a.create(**python_fn(unique("handover"), witness.source(sleep=0.2), timeout=60))
    urn = fn["func_urn"]
    from test_async import accept, all_records

    ids = [accept(a, urn) for _ in range(40)]
    a.stop()  # SIGTERM: leaves the cluster; b takes over well before the 10 s expiry
    started = time.time()
    until(lambda: sorted(r["status"] for r in all_records(b, urn)), ["SUCCESS"] * 40, 9)
    assert set(witness.seen) == set(ids)
    report("cluster: 40 async requests of a host stopped with SIGTERM finished on another %.1f s later"
           % (time.time() - started))


def test_a_request_is_canceled_through_any_host(cluster, witness):
    a, b = cluster(2, "--tenant-concurrency", "1")
    fn = a.create(**python_fn(unique("cancel"), witness.source(sleep=1.0), timeout=60))
    urn = fn["func_urn"]
    from test_async import accept, wait_status

    ids = [accept(a, urn) for _ in range(3)]
    until(lambda: b.api("GET", "/functions/%s/config" % urn).status_code, 200, 2)
    # The last one waits on A behind the others; B does not hold it, and asks A.
    r = b.api("POST", "/functions/%s/cancel" % urn, json={"request_id": ids[2]})
    assert r.status_code == 200, r.text
    canceled = wait_status(b, urn, ids[2])
    assert (canceled["status"], canceled["error_code"]) == ("FAIL", 4208), canceled
    assert ids[2] not in witness.seen
    assert wait_status(b, urn, ids[0], within=20)["status"] == "SUCCESS"
