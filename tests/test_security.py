"""Security regressions (issue 12): each test is one way a caller or a function could reach
another tenant or the host, found by reading the code and probing the binary, and shows that
the way is closed."""

import io
import json
import os
import shutil
import subprocess
import threading
import time
import zipfile

import pytest

from conftest import PROJECT, ROOT, STORE, b64, free_port, make_zip, node_fn, python_fn, store_sql, unique
from test_code_packages import create_zip
from test_eventstream import kafka  # noqa: F401 (a fixture)
from test_functions_api import HELLO, error
from test_wasm import WASM_DIR

OTHER = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


# --- path safety ---------------------------------------------------------------------------

TRAVERSALS = [
    "../../../runtimes/bootstrap.handler",
    "../../runtimes/bootstrap.handler",
    "/tmp/evil.handler",
    "lib/../../x.handler",
    "a\\..\\b.handler",
    "..bootstrap.handler",
]


def test_traversal_handlers_are_refused_and_write_nothing(fresh_fgs):
    host = fresh_fgs()
    marker = unique("evil")
    for handler in TRAVERSALS:
        for body in (python_fn(unique("trav"), "# " + marker, handler=handler),
                     node_fn(unique("trav"), "// " + marker, handler=handler)):
            error(host.api("POST", "/functions", json=body), 400, "FSS.1003")
        body = python_fn(unique("trav"), HELLO, initializer_handler=handler, initializer_timeout=3)
        error(host.api("POST", "/functions", json=body), 400, "FSS.1404")
    fn = host.create(**python_fn(unique("ok"), HELLO))
    for handler in TRAVERSALS:
        r = host.api("PUT", "/functions/%s/config" % fn["func_urn"],
                     json={"handler": handler, "runtime": "Python3.9", "memory_size": 128, "timeout": 3})
        error(r, 400, "FSS.1003")
    # No file anywhere under the data dir (or next to it) carries the marker, and the shared
    # bootstraps are still the ones fgs ships.
    for root in (host.data_dir, "/tmp"):
        for dirpath, _, names in os.walk(root):
            for n in names:
                path = os.path.join(dirpath, n)
                if n.endswith((".py", ".js", ".handler")) and os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as f:
                        assert marker.encode() not in f.read(), path
            if root == "/tmp":
                break
    for shipped in ("python/bootstrap.py", "nodejs/bootstrap.js"):
        with open(os.path.join(ROOT, "runtime", "bootstraps", shipped), "rb") as f:
            want = f.read()
        with open(os.path.join(host.data_dir, "runtimes", os.path.basename(shipped)), "rb") as f:
            assert f.read() == want


def test_wasm_handler_cannot_name_a_file_outside_the_package(fgs):
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as z:
        z.write(os.path.join(WASM_DIR, "echo.wasm"), "echo.wasm")
    for handler in ["../../../wasm-cache/x.wasm", "/etc/passwd.wasm", "sub/echo.wasm"]:
        body = dict(func_name=unique("wtrav"), runtime="WASM", handler=handler, memory_size=128, timeout=3,
                    code_type="zip", code_filename="c.zip", func_code={"file": b64(package.getvalue())})
        error(fgs.api("POST", "/functions", json=body), 400, "FSS.1003")


def symlink_zip(entries, links):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries:
            z.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
    return buf.getvalue()


def test_symlink_chains_that_leave_the_package_are_refused(fgs):
    """Each link is lexically inside the package; followed one after another they lead out
    (x is the package root, so x/l is l, and l's `..` is the code store)."""
    for package in [
        symlink_zip([("index.py", HELLO)], [("x", "."), ("x/l", "..")]),
        symlink_zip([("index.py", HELLO), ("a/b/f", "")], [("x", "."), ("y", "x/..")]),
        symlink_zip([("index.py", HELLO)], [("d", "a/b"), ("a/b", ".."), ("e", "d/..")]),
    ]:
        body = error(create_zip(fgs, package), 400, "FSS.1011")
        assert "symlink" in body["error_msg"]
    # A chain that stays inside is still fine.
    ok = symlink_zip([("index.py", HELLO), ("lib/util.py", "X = 1\n")], [("l", "lib"), ("m", "l/util.py")])
    assert create_zip(fgs, ok).status_code == 200


def two_component_functions(host):
    """Two WASM functions of one package holding two components: `echo.wasm` and
    `counter.wasm` (init-counter)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(os.path.join(WASM_DIR, "echo.wasm"), "echo.wasm")
        z.write(os.path.join(WASM_DIR, "init-counter.wasm"), "counter.wasm")
    common = dict(runtime="WASM", memory_size=128, timeout=3, code_type="zip", code_filename="c.zip",
                  func_code={"file": b64(buf.getvalue())})
    return (host.create(func_name=unique("echo"), handler="echo.wasm", **common),
            host.create(func_name=unique("counter"), handler="counter.wasm", **common))


def test_each_component_of_a_package_runs_its_own_code(fresh_fgs):
    """Two `.wasm` files in one package: the compile cache must not hand one's code to the other."""
    host = fresh_fgs()
    echo, counter = two_component_functions(host)
    assert echo["digest"] == counter["digest"]
    assert json.loads(host.invoke(echo["func_urn"], {"e": 1}).json()["result"]) == {"e": 1}
    out = json.loads(host.invoke(counter["func_urn"], {"e": 1}).json()["result"])
    assert out["calls"] == 1, out
    host.stop()
    again = fresh_fgs(data_dir=host.data_dir)
    assert json.loads(again.invoke(echo["func_urn"], {"e": 2}).json()["result"]) == {"e": 2}
    assert json.loads(again.invoke(counter["func_urn"], {"e": 2}).json()["result"])["calls"] == 1


def test_a_forged_compile_cache_entry_is_never_loaded(fresh_fgs):
    """A file in the cache that this host did not write under that name (here: another
    component's valid artifact copied over it) is recompiled, not run."""
    host = fresh_fgs()
    echo, counter = two_component_functions(host)
    cache = os.path.join(host.data_dir, "wasm-cache")
    host.invoke(echo["func_urn"], {})
    echo_art = set(os.listdir(cache))
    host.invoke(counter["func_urn"], {})
    counter_art = set(os.listdir(cache)) - echo_art
    assert len(echo_art) == 1 and len(counter_art) == 1, (echo_art, counter_art)
    host.stop()
    shutil.copy(os.path.join(cache, counter_art.pop()), os.path.join(cache, echo_art.pop()))
    again = fresh_fgs(data_dir=host.data_dir)
    assert json.loads(again.invoke(echo["func_urn"], {"e": 3}).json()["result"]) == {"e": 3}
    with open(again.log.name, "rb") as f:
        assert b"not written by this host" in f.read()


# --- cross-tenant by id ---------------------------------------------------------------------

def wait_status(host, urn, rid, want, project=PROJECT, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = host.api("GET", "/functions/%s/async-invocations?request_id=%s" % (urn, rid), project=project)
        got = [i["status"] for i in r.json().get("invocations", [])]
        if want in got:
            return
        time.sleep(0.05)
    raise AssertionError("%s never became %s (last %s)" % (rid, want, got))


def test_cancel_cannot_reach_another_projects_running_request(fgs):
    slow = fgs.create(**python_fn(unique("slow"), "import time\ndef handler(e, c):\n    time.sleep(2)\n    return 'done'\n",
                                  timeout=10))
    rid = fgs.api("POST", "/functions/%s/invocations-async" % slow["func_urn"], json={}).json()["request_id"]
    wait_status(fgs, slow["func_urn"], rid, "RUNNING")
    r = fgs.api("POST", "/functions", project=OTHER, json=python_fn(unique("other"), HELLO))
    assert r.status_code == 200, r.text
    other = r.json()
    r = fgs.api("POST", "/functions/%s/cancel" % other["func_urn"], project=OTHER, json={"request_id": rid})
    error(r, 400, "FSS.0400")
    wait_status(fgs, slow["func_urn"], rid, "SUCCESS")


# --- secrets at rest and in answers ----------------------------------------------------------

def files_under(root):
    for dirpath, _, names in os.walk(root):
        for n in names:
            path = os.path.join(dirpath, n)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def assert_nowhere(root, secret, log=None):
    """`secret` is in no file under `root` (the SQLite file, its WAL, the code store, the host
    key...) and not in the host's log."""
    for path in list(files_under(root)) + ([log] if log else []):
        with open(path, "rb") as f:
            assert secret.encode() not in f.read(), path


SECRET_READER = """
def handler(event, context):
    return {"password": context.getUserData("PASSWORD"), "plain": context.getUserData("PLAIN")}
"""


def test_encrypted_user_data_is_sealed_at_rest_and_never_returned(fresh_fgs):
    host = fresh_fgs()
    secret = unique("s3cret")
    body = python_fn(unique("enc"), SECRET_READER, user_data=json.dumps({"PLAIN": "visible"}),
                     encrypted_user_data=json.dumps({"PASSWORD": secret}))
    r = host.api("POST", "/functions", json=body)
    assert r.status_code == 200 and secret not in r.text, r.text
    fn = r.json()
    assert json.loads(fn["encrypted_user_data"]) == {"PASSWORD": "******"}
    urn = fn["func_urn"]
    for answer in (host.api("GET", "/functions/%s/config" % urn), host.api("GET", "/functions?maxitems=100"),
                   host.api("GET", "/functions/%s/code" % urn)):
        assert answer.status_code == 200 and secret not in answer.text
    out = json.loads(host.invoke(urn, {}).json()["result"])
    assert out == {"password": secret, "plain": "visible"}
    # Sending back what show returned keeps the secret.
    config = host.api("GET", "/functions/%s/config" % urn).json()
    update = {k: config[k] for k in ("handler", "runtime", "memory_size", "timeout", "user_data",
                                     "encrypted_user_data")}
    r = host.api("PUT", "/functions/%s/config" % urn, json=dict(update, timeout=5))
    assert r.status_code == 200 and secret not in r.text, r.text
    assert json.loads(host.invoke(urn, {}).json()["result"])["password"] == secret
    host.stop()
    assert_nowhere(host.data_dir, secret, host.log.name)
    again = fresh_fgs(data_dir=host.data_dir)
    assert json.loads(again.invoke(urn, {}).json()["result"])["password"] == secret


def test_broker_passwords_are_sealed_and_masked(fresh_fgs):
    from test_eventstream_api import eg, stream

    host = fresh_fgs()
    secret, conn_secret = unique("kafka-pw"), unique("conn-pw")
    sasl = {"enable_sasl_ssl": True, "sasl_mechanism": "PLAIN", "user_name": "u", "password": secret}
    body = stream()
    body["source"]["source_kafka"].update(sasl)
    r = eg(host, "POST", json=body)
    assert r.status_code == 200 and secret not in r.text, r.text
    sid = r.json()["eventStreamingID"]
    shown = eg(host, "GET", "/" + sid)
    assert shown.json()["source"]["source_kafka"]["password"] == "******" and secret not in shown.text
    assert secret not in eg(host, "GET", "").text
    # An update that sends the mask back keeps the password; one that sends a new one changes it.
    r = eg(host, "PUT", "/" + sid, json=dict(body, source=shown.json()["source"]))
    assert r.status_code == 200 and secret not in r.text, r.text
    r = eg(host, "POST", base="/connections", json={
        "name": unique("conn"), "type": "KAFKA",
        "kafka_detail": {"addr": "127.0.0.1:9092", "enable_sasl_ssl": True, "sasl_mechanism": "PLAIN",
                         "user_name": "u", "password": conn_secret}})
    assert r.status_code == 200 and conn_secret not in r.text, r.text
    assert conn_secret not in eg(host, "GET", base="/connections").text
    host.stop()
    assert_nowhere(host.data_dir, secret, host.log.name)
    assert_nowhere(host.data_dir, conn_secret, host.log.name)
    import sqlite3
    db = sqlite3.connect(os.path.join(host.data_dir, "fgs.sqlite3"))
    (definition,) = db.execute("SELECT definition FROM event_streams WHERE id = ?", (sid,)).fetchone()
    stored = json.loads(definition)["source"]["source_kafka"]["password"]
    assert stored.startswith("fgs-sealed:v1:")
    again = fresh_fgs(data_dir=host.data_dir)
    assert eg(again, "GET", "/" + sid).json()["source"]["source_kafka"]["password"] == "******"


# --- network isolation -----------------------------------------------------------------------

PROBE = """
import socket, urllib.request

def can_connect(host, port, timeout=0.3):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        # A connect to a free port can meet itself (TCP simultaneous open): not a listener.
        return s.getsockname() != s.getpeername()
    except OSError:
        return False
    finally:
        s.close()

def listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)

def handler(event, context):
    out = {"listening": listening_ports()}
    out["loopback_open"] = [p for p in range(1, 65536) if can_connect("127.0.0.1", p, 0.05)]
    out["host_reached"] = [[h, p] for h in event["hosts"] for p in event["ports"] if can_connect(h, p)]
    try:
        out["outside"] = urllib.request.urlopen(event["outside"], timeout=3).status
    except Exception as e:
        out["outside"] = repr(e)
    return out
"""


def host_addresses():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    addresses = [line.split()[3].split("/")[0] for line in out.splitlines()]
    return [a for a in addresses if not a.startswith("127.")]


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")


@needs_root
def test_a_function_reaches_nothing_of_the_host_or_other_instances(fresh_fgs, witness):
    """The probe scans its loopback and every host address (fgs listening on all of them)
    while another tenant's function is invoked in a loop; it finds only its own runtime API and
    still reaches an outside address."""
    port = free_port()
    host = fresh_fgs("--listen", "0.0.0.0:%d" % port, "--auth", "none")
    victim = host.api("POST", "/functions", project=OTHER, json=python_fn(unique("victim"), HELLO)).json()
    stop = threading.Event()

    def invoke_forever():
        while not stop.is_set():
            host.invoke(victim["func_urn"], {"secret": "victim-event"}, project=OTHER)

    loops = [threading.Thread(target=invoke_forever) for _ in range(2)]
    for t in loops:
        t.start()
    try:
        probe = host.create(**python_fn(unique("probe"), PROBE, timeout=120, memory_size=256))
        hosts = host_addresses() + ["100.64.0.1"]
        event = {"hosts": hosts, "ports": [port, 9000], "outside": witness.url + "/enter/probe"}
        r = host.invoke(probe["func_urn"], event)
    finally:
        stop.set()
        for t in loops:
            t.join()
    assert r.headers["X-Func-Err-Code"] == "0", r.text
    out = json.loads(r.json()["result"])
    assert out["listening"] == [9000], out
    assert out["loopback_open"] == [9000], out
    # An address can leave the host while the probe runs (the veth of another host's instance
    # reaped meanwhile): then it is routed to the outside like any foreign address, where this
    # machine's network may well answer. Only addresses still the host's count.
    still = set(host_addresses() + ["100.64.0.1"])
    assert [h for h in out["host_reached"] if h[0] in still] == [], out
    assert out["outside"] == 200, out
    assert witness.seen["probe"] == 1


@needs_root
def test_network_none_has_no_way_out(fresh_fgs, witness):
    host = fresh_fgs("--network", "none")
    assert "network: none" in host.http.get(host.url + "/healthz").json()["sandbox"]["enforced"]
    probe = host.create(**python_fn(unique("probe"), PROBE, timeout=120, memory_size=256))
    out = json.loads(host.invoke(probe["func_urn"], {"hosts": host_addresses(), "ports": [host.port],
                                                      "outside": witness.url + "/enter/none"}).json()["result"])
    assert out["loopback_open"] == [9000] and out["host_reached"] == []
    assert out["outside"] != 200 and witness.seen["none"] == 0


# --- bounds ----------------------------------------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


def test_the_async_queue_is_bounded_and_nothing_accepted_is_lost(fresh_fgs):
    from test_async import all_records, invoke_async, wait_status

    host = fresh_fgs("--async-queue-per-function", "20")
    fn = host.create(**python_fn(unique("slowq"), "import time\ndef handler(e, c):\n    time.sleep(0.1)\n    return 1\n",
                                 timeout=10))
    assert host.api("PUT", "/functions/%s/config-max-instance" % fn["func_urn"],
                    json={"max_instance_num": 1}).status_code == 200
    accepted, refused = [], 0
    for _ in range(40):
        r = invoke_async(host, fn["func_urn"], {"n": 1})
        if r.status_code == 202:
            accepted.append(r.json()["request_id"])
        else:
            error(r, 429, "FSS.0429")
            assert "async requests of this function are waiting" in r.json()["error_msg"]
            refused += 1
    assert 20 <= len(accepted) <= 22 and refused >= 18, (len(accepted), refused)
    # Refused requests are not buffered: many more leave the host's memory where it was.
    before = rss_kb(host.proc.pid)
    event = {"pad": "x" * 200_000}
    for _ in range(300):
        r = invoke_async(host, fn["func_urn"], event)
        if r.status_code == 202:
            accepted.append(r.json()["request_id"])
    assert rss_kb(host.proc.pid) - before < 30_000
    for rid in accepted:
        assert wait_status(host, fn["func_urn"], rid, within=60)["status"] == "SUCCESS"
    assert len(all_records(host, fn["func_urn"])) == len(accepted)


def test_a_function_that_is_its_own_destination_stops(fresh_fgs):
    from test_async import accept, all_records

    host = fresh_fgs()
    fn = host.create(**python_fn(unique("loop"), HELLO))
    dest = {"destination": "FunctionGraph", "param": json.dumps({"func_urn": fn["func_urn"]})}
    r = host.api("PUT", "/functions/%s/async-invoke-config" % fn["func_urn"],
                 json={"destination_config": {"on_success": dest}})
    assert r.status_code == 200, r.text
    accept(host, fn["func_urn"])
    deadline = time.time() + 20
    while time.time() < deadline and len(all_records(host, fn["func_urn"])) < 5:
        time.sleep(0.1)
    time.sleep(2)
    found = all_records(host, fn["func_urn"])
    assert len(found) == 5 and all(r["status"] == "SUCCESS" for r in found), found


def test_admission_comes_before_the_body_and_the_host_cap_holds(fresh_fgs):
    host = fresh_fgs("--tenant-concurrency", "5", "--host-concurrency", "2")
    slow = "import time\ndef handler(e, c):\n    time.sleep(8)\n    return 1\n"
    projects = [PROJECT, OTHER, "0123456789abcdef0123456789abcdef"]
    fns = []
    for p, source in zip(projects, [slow, slow, HELLO]):
        r = host.api("POST", "/functions", project=p, json=python_fn(unique("slow"), source, timeout=10))
        assert r.status_code == 200, r.text
        fns.append(r.json())
    running = [threading.Thread(target=host.invoke, args=(fn["func_urn"],), kwargs={"project": p})
               for fn, p in zip(fns[:2], projects[:2])]
    for t in running:
        t.start()
    try:
        deadline = time.time() + 10
        while time.time() < deadline and host.http.get(host.url + "/healthz").json()["instances"] < 2:
            time.sleep(0.05)
        r = host.invoke(fns[2]["func_urn"], project=projects[2])
        body = error(r, 429, "FSS.0429")
        assert "2 concurrent executions are running on this host" in body["error_msg"]
        # A 7 MB event is refused for want of capacity, not read (it would be 413 FSS.1201).
        r = host.invoke(fns[2]["func_urn"], data=b"x" * (7 * 1024 * 1024), project=projects[2])
        error(r, 429, "FSS.0429")
    finally:
        for t in running:
            t.join()


def test_finished_async_records_are_pruned_after_their_retention(fresh_fgs):
    from test_async import accept, records, wait_status

    host = fresh_fgs("--async-record-retention", "1s")
    fn = host.create(**python_fn(unique("pruned"), HELLO))
    rid = accept(host, fn["func_urn"])
    assert wait_status(host, fn["func_urn"], rid)["status"] == "SUCCESS"
    deadline = time.time() + 10
    while time.time() < deadline and records(host, fn["func_urn"], request_id=rid)["invocations"]:
        time.sleep(0.2)
    assert records(host, fn["func_urn"], request_id=rid)["invocations"] == []
    assert store_sql(host.data_dir, "SELECT COUNT(*) FROM async_requests WHERE request_id = ?", (rid,)) == [["0"]]


def test_deleting_another_projects_stream_leaves_it_running(fgs, kafka):
    from test_eventstream import collector, create_stream, operate, produce, received, status, topic, values, wait_for
    from test_eventstream_api import eg

    name = topic(kafka)
    fn = collector(fgs)
    sid = create_stream(fgs, kafka, name, fn)
    operate(fgs, sid, "START")
    produce(kafka, name, [{"n": 1}])
    wait_for(lambda: values(received(fgs, fn)) == [{"n": 1}], what="the first record")
    r = eg(fgs, "DELETE", "/" + sid, project=OTHER)
    assert r.status_code == 404 and r.json()["error_code"] == "EG.00014040", r.text
    assert status(fgs, sid) == "RUNNING"
    produce(kafka, name, [{"n": 2}])
    wait_for(lambda: values(received(fgs, fn)) == [{"n": 1}, {"n": 2}], what="the record after the foreign DELETE")


@pytest.mark.skipif(STORE == "postgres", reason="the data of an older fgs exists only as SQLite files")
def test_data_of_an_older_fgs_is_sealed_and_migrated_at_start(fresh_fgs):
    """Rows as an fgs before issue 12 wrote them (secrets in clear, a journal without the
    destination depth) are sealed and migrated when the host starts, and still work."""
    import sqlite3
    from test_async import wait_status
    from test_eventstream_api import eg, stream

    host = fresh_fgs()
    secret, kafka_secret = unique("old-secret"), unique("old-kafka")
    fn = host.create(**python_fn(unique("old"), SECRET_READER, encrypted_user_data=json.dumps({"PASSWORD": "x"})))
    body = stream()
    body["source"]["source_kafka"].update({"enable_sasl_ssl": True, "sasl_mechanism": "PLAIN", "user_name": "u",
                                           "password": "x"})
    sid = eg(host, "POST", json=body).json()["eventStreamingID"]
    host.stop()
    path = os.path.join(host.data_dir, "fgs.sqlite3")
    db = sqlite3.connect(path)
    (record,) = db.execute("SELECT record FROM functions WHERE func_name = ?", (fn["func_name"],)).fetchone()
    record = json.loads(record)
    record["encrypted_user_data"] = json.dumps({"PASSWORD": secret})
    db.execute("UPDATE functions SET record = ? WHERE func_name = ?", (json.dumps(record), fn["func_name"]))
    (definition,) = db.execute("SELECT definition FROM event_streams WHERE id = ?", (sid,)).fetchone()
    definition = json.loads(definition)
    definition["source"]["source_kafka"]["password"] = kafka_secret
    db.execute("UPDATE event_streams SET definition = ? WHERE id = ?", (json.dumps(definition), sid))
    db.execute("ALTER TABLE async_requests DROP COLUMN depth")
    db.execute("INSERT INTO async_requests (request_id, project_id, package, func_name, func_id, event, status,"
               " accepted_ms) VALUES ('old-request', ?, 'default', ?, ?, x'7b7d', 'WAIT', ?)",
               (PROJECT, fn["func_name"], record["func_id"], int(time.time() * 1000)))
    db.commit()
    db.close()

    again = fresh_fgs(data_dir=host.data_dir)
    assert json.loads(again.invoke(fn["func_urn"], {}).json()["result"])["password"] == secret
    assert wait_status(again, fn["func_urn"], "old-request")["status"] == "SUCCESS"
    assert eg(again, "GET", "/" + sid).json()["source"]["source_kafka"]["password"] == "******"
    again.stop()
    assert_nowhere(host.data_dir, secret)
    assert_nowhere(host.data_dir, kafka_secret)


def test_a_stored_digest_that_is_not_a_sha512_never_becomes_a_path(fresh_fgs):
    """A code digest read back from the database is a path in the code store: one that is not
    a SHA-512 (a row another writer of a shared database changed) skips its function."""
    host = fresh_fgs()
    fn = host.create(**python_fn(unique("digest"), "def handler(event, context):\n    return 1\n"))
    host.stop()
    ((record,),) = store_sql(host.data_dir, "SELECT record FROM functions WHERE func_name = ?", (fn["func_name"],))
    record = json.loads(record)
    record["digest"] = "../../../../usr/lib"
    store_sql(host.data_dir, "UPDATE functions SET record = ? WHERE func_name = ?", (json.dumps(record), fn["func_name"]))
    again = fresh_fgs(data_dir=host.data_dir)
    r = again.invoke(fn["func_urn"], {})
    assert (r.status_code, r.json()["error_code"]) == (404, "FSS.1051"), r.text
    with open(again.log.name, "rb") as f:
        assert b"is not a SHA-512" in f.read()


# --- identity ---------------------------------------------------------------------------------

WHO_AM_I = """
import os, time

def handler(event, context):
    outside = open("/proc/self/uid_map").read().split()
    time.sleep(event.get("hold", 0))
    return {"uid": os.getuid(), "gid": os.getgid(), "uid_map": outside}
"""


@needs_root
def test_no_two_instances_share_a_host_identity(fgs):
    """Every instance sees FunctionGraph's uid 1003, but is a host uid of its own: a user
    namespace maps 1003 to an id no other live instance holds, so two tenants' processes can
    never signal, trace or read each other as the same user."""
    fns = [fgs.api("POST", "/functions", project=project, json=python_fn(unique("who"), WHO_AM_I)).json()
           for project in (PROJECT, OTHER)]
    results, seen_on_host = [], []

    def invoke(fn, project):
        results.append(json.loads(fgs.invoke(fn["func_urn"], {"hold": 2}, project=project).json()["result"]))

    calls = [threading.Thread(target=invoke, args=(fn, p)) for fn, p in zip(fns, (PROJECT, OTHER)) for _ in range(2)]
    for t in calls:
        t.start()
    time.sleep(1.2)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = open("/proc/%s/status" % pid).read()
        except OSError:
            continue
        uid = int(next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1])
        if uid >= 1_000_000_000:
            seen_on_host.append(uid)
    for t in calls:
        t.join()
    assert len(results) == 4
    host_ids = set()
    for out in results:
        assert (out["uid"], out["gid"]) == (1003, 1003)
        inside, outside, count = (int(x) for x in out["uid_map"])
        assert (inside, count) == (1003, 1) and outside >= 1_000_000_000
        host_ids.add(outside)
    assert len(host_ids) == 4, "four live instances, four host identities: %s" % results
    assert host_ids <= set(seen_on_host), (host_ids, seen_on_host)


def test_a_wasm_function_has_no_network(fgs):
    """A component runs inside fgs's own process: it gets no sockets at all, so neither fgs's
    API (listening, as the test shows) nor anything else is one connect away."""
    import socket
    from test_wasm import wasm_fn

    target = "127.0.0.1:%d" % fgs.port
    socket.create_connection(("127.0.0.1", fgs.port)).close()
    fn = wasm_fn(fgs, "net-probe", timeout=10)
    out = json.loads(fgs.invoke(fn["func_urn"], data=target.encode()).json()["result"])
    assert all(v.startswith("error") for v in out.values()), out


@needs_root
def test_isolated_network_without_nft_stops_the_host_at_start(tmp_path):
    """Without nftables the firewall of `--network isolated` cannot be installed: fgs refuses
    to start rather than run instances that could reach the host."""
    from conftest import FGS

    nft = shutil.which("nft") or "/usr/sbin/nft"
    script = 'mount --bind /dev/null "$1" && shift && exec "$@"'
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", nft,
                          FGS, "serve", "--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:%d" % free_port(),
                          "--sandbox", "auto", "--network", "isolated"], capture_output=True, timeout=30)
    assert out.returncode != 0, out
    assert b"`nft` (nftables) is needed for --network isolated" in out.stderr, out.stderr[-2000:]


# --- seccomp and uploads ----------------------------------------------------------------------

SYSCALLS = """
import ctypes, os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def attempt(number, *args):
    ret = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    return [ret, ctypes.get_errno()]

def handler(event, context):
    CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
    params = (ctypes.c_uint32 * 30)()
    clone_args = (ctypes.c_uint64 * 11)()
    clone_args[0] = CLONE_NEWUSER
    return {
        "unshare_user": attempt(272, CLONE_NEWUSER),
        "unshare_mount": attempt(272, CLONE_NEWNS),
        "unshare_net": attempt(272, CLONE_NEWNET),
        "io_uring_setup": attempt(425, 8, ctypes.addressof(params)),
        "clone3_newuser": attempt(435, ctypes.addressof(clone_args), 88),
        "bpf": attempt(321, 0, 0, 0),
        "perf_event_open": attempt(298, 0, 0, -1, -1, 0),
        "keyctl": attempt(250, 0, 0, 0, 0, 0),
        "getpid_works": attempt(39),
    }
"""


@needs_root
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the probe uses x86_64 syscall numbers")
def test_the_seccomp_allowlist_denies_namespaces_io_uring_and_kernel_interfaces(fgs):
    """The calls a function has no use for fail inside a real instance (the unit test proves
    the filter in a child; this proves it is the one instances get)."""
    fn = fgs.create(**python_fn(unique("sys"), SYSCALLS))
    out = json.loads(fgs.invoke(fn["func_urn"]).json()["result"])
    assert out.pop("getpid_works")[0] == 2, out  # PID 2 in its own namespace: the probe is sound
    for call, (ret, errno) in out.items():
        assert ret == -1 and errno in (1, 38), (call, ret, errno)  # EPERM or ENOSYS


def test_concurrent_identical_uploads_each_publish_a_whole_tree(fgs):
    """Eight functions created at once from the same zip share one content-addressed tree: each
    upload unpacks on its own and renames into place, so none can see a partial tree."""
    import concurrent.futures
    files = {"index.py": "from lib import value\n\ndef handler(event, context):\n    return value()\n"}
    files.update({"lib/__init__.py": "from .deep import value\n", "lib/deep.py": "def value():\n    return 'whole'\n"})
    files.update({"pad/%03d.txt" % i: "x" * 4096 for i in range(200)})
    package = b64(make_zip(files))

    def create(_):
        return fgs.create(**python_fn(unique("same"), "", code_type="zip", code_filename="code.zip",
                                      func_code={"file": package}))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        fns = list(pool.map(create, range(8)))
    assert len({f["digest"] for f in fns}) == 1
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda f: fgs.invoke(f["func_urn"]).json()["result"], fns))
    assert results == ["whole"] * 8, results
