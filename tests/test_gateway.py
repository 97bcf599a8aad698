"""The API gateway: APIG and DEDICATEDGATEWAY triggers created through the official SDK publish
their API on fgs's gateway listener; requests become the documented APIG event and the
function's answer becomes the HTTP answer, with APIG's and FunctionGraph's codes for every
failure."""

import base64
import json
import os
import threading
import time

import pytest
import requests
from huaweicloudsdkfunctiongraph.v2 import (
    ApigTriggerFuncInfo,
    CreateFunctionTriggerRequest,
    CreateFunctionTriggerRequestBody,
    DeleteFunctionTriggerRequest,
    ShowFunctionTriggerRequest,
    TriggerEventDataRequestBody,
)

from conftest import PROJECT, python_fn, report, unique
from test_sdk_compat import sdk_client

# Answers with the event it was given (and its request id), as JSON.
ECHO = """import json
def handler(event, context):
    return {"statusCode": 200, "isBase64Encoded": False,
            "headers": {"Content-Type": "application/json", "X-Echo": ["one", "two"]},
            "body": json.dumps({"event": event, "request_id": context.getRequestID()})}
"""

# Answers with the request's body, byte for byte.
MIRROR = """def handler(event, context):
    return {"statusCode": 201, "isBase64Encoded": True, "body": event["body"],
            "headers": {"Content-Type": "application/octet-stream"}}
"""

# Answers in the shape the event's query asks for.
SHAPES = """import json, time
def handler(event, context):
    q = event["queryStringParameters"]
    shape = q.get("shape")
    if shape == "string":
        return "just a string"
    if shape == "raise":
        raise ValueError("asked to fail")
    if shape == "sleep":
        time.sleep(float(q["s"]))
        return {"statusCode": 200, "body": "slept"}
    if shape == "redirect":
        return {"statusCode": 302, "headers": {"Location": "/elsewhere"}, "body": ""}
    if shape == "big":
        return {"statusCode": 200, "body": "x" * (7 * 1024 * 1024)}
    if shape == "dict-body":
        return {"statusCode": 200, "body": {"a": 1}}
    return {"statusCode": 200, "body": "ok"}
"""


def apig(path, method="ANY", match_mode="NORMAL", timeout=5000, name="api", **extra):
    data = {"name": name, "type": 1, "path": path, "protocol": "HTTPS", "req_method": method,
            "group_id": "g1", "env_name": "RELEASE", "env_id": "e1", "auth": "NONE",
            "match_mode": match_mode, "backend_type": "FUNCTION",
            "func_info": {"timeout": timeout, "invocation_type": "sync"}}
    data.update(extra)
    return data


def create_trigger(fgs, urn, data, type_code="APIG", project=PROJECT):
    return fgs.api("POST", "/triggers/%s" % urn, project=project,
                   json={"trigger_type_code": type_code, "trigger_status": "ACTIVE", "event_data": data})


def function(fgs, source, **over):
    name = unique("gw")
    return fgs.create(**python_fn(name, source, **over))["func_urn"][: -len(":latest")]


def refused(r, status, code):
    assert (r.status_code, r.json().get("error_code")) == (status, code), r.text


def test_apig_trigger_through_the_sdk_delivers_the_documented_event(fgs):
    client = sdk_client(fgs, "fake-ak", "fake-sk")
    urn = function(fgs, ECHO)
    created = client.create_function_trigger(CreateFunctionTriggerRequest(
        function_urn=urn, body=CreateFunctionTriggerRequestBody(
            trigger_type_code="APIG", trigger_status="ACTIVE",
            event_data=TriggerEventDataRequestBody(
                name="echo_api", type=1, path="/echo/{id}/items/{rest+}", protocol="HTTPS",
                req_method="ANY", group_id="g1", env_name="RELEASE", env_id="e1", auth="NONE",
                match_mode="NORMAL", backend_type="FUNCTION",
                func_info=ApigTriggerFuncInfo(timeout=5000, invocation_type="sync")))))
    assert created.trigger_type_code == "APIG" and created.trigger_status == "ACTIVE"
    assert created.event_data.sl_domain == "127.0.0.1:%d" % fgs.gateway_port
    assert created.event_data.path == "/echo/{id}/items/{rest+}"
    shown = client.show_function_trigger(ShowFunctionTriggerRequest(
        function_urn=urn, trigger_type_code="APIG", trigger_id=created.trigger_id))
    assert shown.event_data.sl_domain == created.event_data.sl_domain
    base = "http://%s" % created.event_data.sl_domain

    # GET with a query and path parameters (one percent-encoded, one greedy).
    r = requests.get(base + "/echo/a%20b/items/x/y/z?q=1&q=2&lang=en", headers={"X-Custom": "v"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Echo"] == "one, two"
    answer = r.json()
    event = answer["event"]
    assert set(event) == {"body", "isBase64Encoded", "headers", "queryStringParameters",
                          "pathParameters", "httpMethod", "path", "requestContext"}
    assert event["httpMethod"] == "GET"
    assert event["path"] == "/echo/a%20b/items/x/y/z"
    assert event["pathParameters"] == {"id": "a b", "rest": "x/y/z"}
    assert event["queryStringParameters"] == {"q": "1", "lang": "en"}
    assert event["isBase64Encoded"] is True and event["body"] == ""
    assert event["headers"]["x-custom"] == "v"
    assert event["headers"]["host"] == created.event_data.sl_domain
    assert event["headers"]["x-real-ip"] == "127.0.0.1"
    ctx = event["requestContext"]
    assert ctx["apiId"] == created.trigger_id and ctx["stage"] == "RELEASE"
    assert ctx["requestId"] == answer["request_id"] == r.headers["X-Request-Id"]
    assert len(ctx["requestId"]) == 32

    # POST with a JSON body: base64 in the event.
    r = requests.post(base + "/echo/7/items/last", json={"hello": "gateway"})
    event = r.json()["event"]
    assert event["httpMethod"] == "POST"
    assert json.loads(base64.b64decode(event["body"])) == {"hello": "gateway"}
    assert event["headers"]["content-type"] == "application/json"
    assert event["pathParameters"] == {"id": "7", "rest": "last"}

    # Not the API: missing greedy part, other paths.
    refused(requests.get(base + "/echo/7/items"), 404, "APIG.0101")
    refused(requests.get(base + "/nothing/here"), 404, "APIG.0101")

    # Deleted: no longer served.
    client.delete_function_trigger(DeleteFunctionTriggerRequest(
        function_urn=urn, trigger_type_code="APIG", trigger_id=created.trigger_id))
    refused(requests.get(base + "/echo/7/items/x"), 404, "APIG.0101")


def test_binary_bodies_round_trip_byte_for_byte_and_the_6mb_limit(fgs):
    urn = function(fgs, MIRROR)
    r = create_trigger(fgs, urn, apig("/mirror", method="POST"), type_code="DEDICATEDGATEWAY")
    assert r.status_code == 200, r.text
    for size in (0, 1, 255, 100_000, 4 * 1024 * 1024):
        payload = os.urandom(size)
        answer = requests.post(fgs.gateway + "/mirror", data=payload,
                               headers={"Content-Type": "application/octet-stream"})
        assert answer.status_code == 201, answer.text[:200]
        assert answer.content == payload, size
    refused(requests.post(fgs.gateway + "/mirror", data=b"x" * (6 * 1024 * 1024 + 1)), 413, "FSS.1201")
    refused(requests.get(fgs.gateway + "/mirror"), 404, "APIG.0101")


def test_answers_of_every_shape_and_failures(fgs):
    urn = function(fgs, SHAPES, timeout=10)
    assert create_trigger(fgs, urn, apig("/shapes", method="GET", timeout=1000)).status_code == 200
    get = lambda **q: requests.get(fgs.gateway + "/shapes", params=q, allow_redirects=False)
    assert get().text == "ok"
    r = get(shape="redirect")
    assert (r.status_code, r.headers["Location"]) == (302, "/elsewhere")
    assert get(shape="dict-body").json() == {"a": 1}
    refused(get(shape="string"), 500, "FSS.1202")
    r = get(shape="raise")
    assert r.status_code == 500 and r.headers["X-Func-Err-Code"] == "4002"
    assert "asked to fail" in r.json()["errorMessage"]
    # func_info.timeout (1 s) ends the call before the function's own (10 s).
    start = time.time()
    refused(get(shape="sleep", s="3"), 504, "APIG.0201")
    assert time.time() - start < 2.5
    r = get(shape="big")
    assert r.status_code == 500 and r.headers["X-Func-Err-Code"] == "4008"
    assert get().text == "ok"

    # The last failure is shown on the trigger; firings are counted per trigger.
    [trigger] = fgs.api("GET", "/triggers/%s" % urn).json()
    shown = fgs.api("GET", "/triggers/%s/APIG/%s" % (urn, trigger["trigger_id"])).json()
    assert "4008" in shown["last_error"]["message"]
    metrics = requests.get(fgs.url + "/metrics").text
    line = 'fgs_trigger_fires_total{result="failed",trigger="%s",type="APIG"}' % trigger["trigger_id"]
    assert line + " 4" in metrics, [l for l in metrics.splitlines() if trigger["trigger_id"] in l]
    assert 'fgs_trigger_fires_total{result="ok",trigger="%s",type="APIG"} 4' % trigger["trigger_id"] in metrics


def test_match_modes_and_priorities(fgs):
    exact, prefix, param = (function(fgs, ECHO) for _ in range(3))
    assert create_trigger(fgs, prefix, apig("/mm", match_mode="SWA")).status_code == 200
    assert create_trigger(fgs, exact, apig("/mm/fixed", method="GET")).status_code == 200
    assert create_trigger(fgs, param, apig("/mm/{x}", method="GET")).status_code == 200
    ran = lambda path, method="GET": requests.request(method, fgs.gateway + path).json()["event"]["requestContext"]["apiId"]
    ids = {urn: fgs.api("GET", "/triggers/%s" % urn).json()[0]["trigger_id"] for urn in (exact, prefix, param)}
    assert ran("/mm/fixed") == ids[exact]
    assert ran("/mm/other") == ids[param]
    assert ran("/mm/other", "POST") == ids[prefix]
    assert ran("/mm/a/b/c") == ids[prefix]
    assert ran("/mm") == ids[prefix]
    refused(requests.get(fgs.gateway + "/mmx"), 404, "APIG.0101")


def test_gateway_trigger_refusals(fgs):
    urn = function(fgs, ECHO)
    for data in (apig("no-slash"), apig("/a//b"), apig("/a/{p+}/b"), apig("/a/../b"),
                 apig("/a", method="FETCH"), apig("/a", match_mode="FUZZY"),
                 apig("/a", auth="IAM"), apig("/a", auth="APP"), apig("/a", timeout=0),
                 apig("/a", timeout=60001), apig("/a", schedule="1m"),
                 {k: v for k, v in apig("/a").items() if k != "func_info"}):
        refused(create_trigger(fgs, urn, data), 400, "FSS.1107")
    refused(create_trigger(fgs, urn, apig("/a", auth="IAM"), type_code="DEDICATEDGATEWAY"), 400, "FSS.1417")
    r = create_trigger(fgs, urn, apig("/a", auth="IAM"))
    assert "NONE" in r.json()["error_msg"]
    disabled = fgs.api("POST", "/triggers/%s" % urn, json={
        "trigger_type_code": "APIG", "trigger_status": "DISABLED", "event_data": apig("/d")})
    refused(disabled, 400, "FSS.1107")

    # One URL space: the same method and path of another function, or of another project,
    # is refused; another method or match mode is not.
    assert create_trigger(fgs, urn, apig("/taken/{a}", method="GET")).status_code == 200
    other = function(fgs, ECHO)
    refused(create_trigger(fgs, other, apig("/taken/{b}", method="ANY")), 409, "FSS.1147")
    foreign = "f" * 32
    foreign_fn = fgs.api("POST", "/functions", project=foreign, json=python_fn(unique("gw"), ECHO))
    assert foreign_fn.status_code == 200, foreign_fn.text
    foreign_urn = foreign_fn.json()["func_urn"][: -len(":latest")]
    refused(create_trigger(fgs, foreign_urn, apig("/taken/{c}", method="GET"), project=foreign), 409, "FSS.1147")
    assert create_trigger(fgs, other, apig("/taken/{b}", method="POST")).status_code == 200
    assert create_trigger(fgs, other, apig("/taken/{b}", method="GET", match_mode="SWA")).status_code == 200
    [created] = [t for t in fgs.api("GET", "/triggers/%s" % urn).json() if t["event_data"]["path"] == "/taken/{a}"]
    refused(fgs.api("PUT", "/triggers/%s/APIG/%s" % (urn, created["trigger_id"]),
                    json={"trigger_status": "DISABLED"}), 400, "FSS.1107")
    # Deleting the function withdraws its APIs.
    assert fgs.api("DELETE", "/functions/%s" % urn).status_code == 204
    assert requests.get(fgs.gateway + "/taken/1").json()["event"]["requestContext"]["apiId"] != created["trigger_id"]


def test_apis_are_served_again_after_a_restart_and_async_apis_are_accepted(fresh_fgs, witness):
    host = fresh_fgs()
    urn = function(host, ECHO)
    assert create_trigger(host, urn, apig("/kept", method="GET")).status_code == 200
    reporter = function(host, """import json, urllib.request
def handler(event, context):
    body = json.dumps([[event["path"], event["queryStringParameters"]["n"]]]).encode()
    urllib.request.urlopen(urllib.request.Request("%s/events", data=body)).read()
    return "ignored: an async API answers at once"
""" % witness.url)
    data = apig("/later", method="POST")
    data["func_info"]["invocation_type"] = "async"
    assert create_trigger(host, reporter, data).status_code == 200
    host.stop()
    host.start()
    assert requests.get(host.gateway + "/kept").json()["event"]["path"] == "/kept"
    r = requests.post(host.gateway + "/later?n=1", data=b"x")
    assert r.status_code == 202 and len(r.json()["request_id"]) == 36, r.text
    deadline = time.time() + 20
    while time.time() < deadline and ["/later", "1"] not in [list(e) for e in witness.events]:
        time.sleep(0.1)
    assert ["/later", "1"] in [list(e) for e in witness.events]


def test_1000_concurrent_keep_alive_requests_to_a_warm_python_function(fresh_fgs):
    host = fresh_fgs("--tenant-concurrency", "1000", "--host-concurrency", "1000", "--network", "none")
    # A generous timeout: 1000 instances starting at once on two cores take a while.
    urn = function(host, ECHO, timeout=120)
    r = host.api("PUT", "/functions/%s/config-max-instance" % urn, json={"max_instance_num": 1000})
    assert r.status_code == 200, r.text
    assert create_trigger(host, urn, apig("/load", method="GET", timeout=60000)).status_code == 200
    clients, rounds = 1000, 3
    sessions = [requests.Session() for _ in range(clients)]
    failures = []

    def burst(request):
        barrier = threading.Barrier(clients)

        def client(i):
            barrier.wait()
            for n in range(rounds):
                try:
                    failure = request(i, n)
                except Exception as e:  # noqa: BLE001 - every failure is counted
                    failure = repr(e)
                if failure:
                    failures.append((i, n, failure))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        start = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.time() - start

    def direct(i, n):
        r = host.invoke(urn + ":latest", {"warm": i})
        return None if r.status_code == 200 else (r.status_code, r.text[:200])

    def gateway(i, n):
        r = sessions[i].get(host.gateway + "/load", params={"c": i, "n": n}, timeout=120)
        if r.status_code != 200 or r.json()["event"]["queryStringParameters"] != {"c": str(i), "n": str(n)}:
            return (r.status_code, r.text[:200])
        return None

    cold = burst(direct)  # starts 1000 instances
    assert failures == [], failures[:5]
    instances = requests.get(host.url + "/healthz").json()["instances"]
    warm = burst(gateway)
    assert failures == [], failures[:5]
    assert requests.get(host.url + "/healthz").json()["instances"] <= max(instances, clients)
    report("gateway: %d concurrent keep-alive clients x %d requests to a warm Python APIG function "
           "(%d instances): %.1f s, no errors (starting the instances: %.1f s)"
           % (clients, rounds, instances, warm, cold))


HTTP_SERVER = """import hashlib, http.server, json, os, time
INSTANCE = os.urandom(8).hex()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.reply()
    def do_POST(self):
        self.reply()
    def reply(self):
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                body += self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    break
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/web/slow"):
            time.sleep(1)
        out = json.dumps({"method": self.command, "path": self.path, "instance": INSTANCE,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "length": len(body), "sha256": hashlib.sha256(body).hexdigest()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-From", "http-function")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 8000), Handler).serve_forever()
"""


def test_an_http_function_answers_through_the_gateway(fgs):
    from conftest import b64, make_zip
    import concurrent.futures
    import hashlib
    name = unique("web")
    code = make_zip({"bootstrap": "exec python3 -u $RUNTIME_CODE_ROOT/index.py\n", "index.py": HTTP_SERVER})
    fn = fgs.create(func_name=name, package="default", runtime="http", handler="bootstrap",
                    memory_size=128, timeout=5, code_type="zip", code_filename="web.zip",
                    func_code={"file": b64(code)})
    urn = fn["func_urn"][: -len(":latest")]
    assert create_trigger(fgs, urn, apig("/web", match_mode="SWA")).status_code == 200
    r = requests.get(fgs.gateway + "/web/hello?x=1&y=two", headers={"X-Custom": "v"})
    assert r.status_code == 200, r.text
    assert r.headers["X-From"] == "http-function"
    seen = r.json()
    assert (seen["method"], seen["path"]) == ("GET", "/web/hello?x=1&y=two")
    h = seen["headers"]
    assert h["x-custom"] == "v"
    assert h["x-cff-request-id"] == r.headers["X-Request-Id"]
    assert (h["x-cff-func-name"], h["x-cff-package"], h["x-cff-project-id"]) == (name, "default", PROJECT)
    assert (h["x-cff-memory"], h["x-cff-timeout"], h["x-cff-func-version"], h["x-cff-region"]) == \
        ("128", "5", "latest", "cn-north-4")
    payload = os.urandom(3 * 1024 * 1024)
    r = requests.post(fgs.gateway + "/web/upload", data=payload)
    assert r.status_code == 200 and r.json()["length"] == len(payload)
    assert r.json()["sha256"] == hashlib.sha256(payload).hexdigest()
    refused(requests.post(fgs.gateway + "/web/upload", data=b"x" * (6 * 1024 * 1024 + 1)), 413, "FSS.1201")
    # Undeclared (chunked), the body streams through; past 6 MB it is cut off and refused the
    # same way.
    r = requests.post(fgs.gateway + "/web/upload", data=(payload[i:i + 65536] for i in range(0, len(payload), 65536)))
    assert r.status_code == 200 and r.json()["sha256"] == hashlib.sha256(payload).hexdigest()
    chunks = (b"x" * (1024 * 1024) for _ in range(7))
    refused(requests.post(fgs.gateway + "/web/upload", data=chunks), 413, "FSS.1201")
    # Each instance has its own 127.0.0.1:8000: concurrent requests run in several at once.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: requests.get(fgs.gateway + "/web/slow/%d" % i), range(4)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["instance"] for a in answers}) >= 2
    # The invoke API does not take events for an HTTP function.
    assert fgs.invoke(urn + ":latest", {}).status_code == 500


def test_http_functions_need_their_own_network_namespace(fresh_fgs):
    from conftest import b64, make_zip
    host = fresh_fgs("--sandbox", "process")
    code = make_zip({"bootstrap": "exec python3 -u $RUNTIME_CODE_ROOT/index.py\n", "index.py": HTTP_SERVER})
    fn = host.create(func_name=unique("web"), package="default", runtime="http", handler="bootstrap",
                     memory_size=128, timeout=5, code_type="zip", code_filename="web.zip",
                     func_code={"file": b64(code)})
    assert create_trigger(host, fn["func_urn"][: -len(":latest")], apig("/web", match_mode="SWA")).status_code == 200
    r = requests.get(host.gateway + "/web/x")
    refused(r, 502, "APIG.0202")
    assert "network namespace" in r.json()["error_msg"]
