"""Security regressions (issue 12): each test is one way a caller or a function could reach
another tenant or the host, found by reading the code and probing the binary, and shows that
the way is closed."""

import io
import json
import os
import shutil
import time
import zipfile

from conftest import PROJECT, ROOT, b64, node_fn, python_fn, unique
from test_code_packages import create_zip
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


def two_component_package():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(os.path.join(WASM_DIR, "echo.wasm"), "echo.wasm")
        z.write(os.path.join(WASM_DIR, "init-counter.wasm"), "counter.wasm")
    return b64(buf.getvalue())


def test_each_component_of_a_package_runs_its_own_code(fresh_fgs):
    """Two `.wasm` files in one package: the compile cache must not hand one's code to the other."""
    host = fresh_fgs()
    package = two_component_package()
    common = dict(runtime="WASM", memory_size=128, timeout=3, code_type="zip", code_filename="c.zip",
                  func_code={"file": package})
    echo = host.create(func_name=unique("echo"), handler="echo.wasm", **common)
    counter = host.create(func_name=unique("counter"), handler="counter.wasm", **common)
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
    package = two_component_package()
    common = dict(runtime="WASM", memory_size=128, timeout=3, code_type="zip", code_filename="c.zip",
                  func_code={"file": package})
    echo = host.create(func_name=unique("echo"), handler="echo.wasm", **common)
    counter = host.create(func_name=unique("counter"), handler="counter.wasm", **common)
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
