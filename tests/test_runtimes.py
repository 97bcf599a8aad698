"""Node.js and custom runtimes, the shipped examples, persistence, health and metrics."""

import json
import os

from conftest import EXAMPLES, b64, custom_fn, make_zip, node_fn, python_fn, unique, zip_dir


def result(r):
    assert r.status_code == 200, r.text
    assert r.headers["X-Func-Err-Code"] == "0", r.text
    return json.loads(r.json()["result"])


def test_node_async_handler(fgs):
    src = """
let calls = 0;
const TOKEN = require('crypto').randomBytes(8).toString('hex');
exports.handler = async (event, context) => {
  calls += 1;
  await new Promise((r) => setTimeout(r, 10));
  return { event, calls, rid: context.getRequestID(), name: context.getFunctionName(),
           user: context.getUserData('K'), memory: context.getMemorySize(), instance: TOKEN };
};
"""
    name = unique("node")
    fn = fgs.create(**node_fn(name, src, user_data='{"K":"v"}'))
    r = fgs.invoke(fn["func_urn"], {"x": 1})
    out = result(r)
    assert out["event"] == {"x": 1} and out["calls"] == 1 and out["rid"] == r.headers["X-Cff-Request-Id"]
    assert (out["name"], out["user"], out["memory"]) == (name, "v", 128)
    again = result(fgs.invoke(fn["func_urn"]))
    assert again["calls"] == 2 and again["instance"] == out["instance"]


def test_node_callback_handler_and_string_result(fgs):
    src = "exports.handler = function (event, context, callback) {\n  setTimeout(() => callback(null, 'hi ' + event.who), 5);\n};\n"
    fn = fgs.create(**node_fn(unique("cb"), src))
    r = fgs.invoke(fn["func_urn"], {"who": "there"}, v1=False)
    assert r.text == "hi there"


def test_node_errors(fgs):
    thrown = fgs.create(**node_fn(unique("throw"), "exports.handler = async () => { throw new TypeError('nope'); };\n"))
    r = fgs.invoke(thrown["func_urn"])
    assert r.headers["X-Func-Err-Code"] == "4002" and r.headers["X-Is-Func-Err"] == "true"
    err = json.loads(r.json()["result"])
    assert err["errorType"] == "TypeError" and err["errorMessage"] == "function invocation exception, error: nope"
    cb = fgs.create(**node_fn(unique("cberr"), "exports.handler = (e, c, callback) => callback(new Error('cb failed'));\n"))
    err = json.loads(fgs.invoke(cb["func_urn"]).json()["result"])
    assert "cb failed" in err["errorMessage"]


def test_node_initializer(fgs):
    src = """
let inits = 0;
exports.init = (context, callback) => { inits += 1; callback(null, ''); };
exports.handler = async () => ({ inits });
"""
    fn = fgs.create(**node_fn(unique("ninit"), src, initializer_handler="index.init", initializer_timeout=5))
    assert [result(fgs.invoke(fn["func_urn"]))["inits"] for _ in range(3)] == [1, 1, 1]
    bad = fgs.create(**node_fn(unique("nbad"), "exports.init = async () => { throw new Error('init boom'); };\nexports.handler = async () => 1;\n",
                               initializer_handler="index.init", initializer_timeout=5))
    r = fgs.invoke(bad["func_urn"])
    assert r.headers["X-Func-Err-Code"] == "4201" and "init boom" in r.json()["result"]


def test_node_timeout(fgs):
    fn = fgs.create(**node_fn(unique("nto"), "exports.handler = () => new Promise(() => {});\n", timeout=3))
    r = fgs.invoke(fn["func_urn"])
    assert r.headers["X-Func-Err-Code"] == "4010"


def test_custom_runtime_error_endpoint(fgs):
    bootstrap = """#!/bin/sh
API="http://$RUNTIME_API_ADDR/v1/runtime/invocation"
while true; do
  ID=$(curl -s -D - -o /dev/null "$API/request" | grep -i x-cff-request-id | cut -d: -f2 | tr -d ' \\r')
  curl -s -o /dev/null -X POST -d '{"errorType":"Custom","errorMessage":"custom failure"}' "$API/error/$ID"
done
"""
    fn = fgs.create(**custom_fn(unique("cerr"), bootstrap))
    r = fgs.invoke(fn["func_urn"])
    assert r.headers["X-Func-Err-Code"] == "4002"
    assert json.loads(r.json()["result"]) == {"errorType": "Custom", "errorMessage": "custom failure"}


def test_custom_runtime_environment(fgs):
    bootstrap = """#!/bin/sh
API="http://$RUNTIME_API_ADDR/v1/runtime/invocation"
while true; do
  ID=$(curl -s -D - -o /dev/null "$API/request" | grep -i x-cff-request-id | cut -d: -f2 | tr -d ' \\r')
  printf '{"name":"%s","version":"%s","package":"%s","project":"%s","memory":"%s","cpu":"%s","timeout":"%s","handler":"%s","userdata":%s,"code_root_is_cwd":"%s","mine":"%s"}' \\
    "$RUNTIME_FUNC_NAME" "$RUNTIME_FUNC_VERSION" "$RUNTIME_PACKAGE" "$RUNTIME_PROJECT_ID" "$RUNTIME_MEMORY" \\
    "$RUNTIME_CPU" "$RUNTIME_TIMEOUT" "$RUNTIME_HANDLER" "$RUNTIME_USERDATA" "$([ "$RUNTIME_CODE_ROOT" = "$(pwd)" ] && echo yes)" "$MINE" |
    curl -s -o /dev/null -X POST --data-binary @- "$API/response/$ID"
done
"""
    name = unique("cenv")
    fn = fgs.create(**custom_fn(name, bootstrap, memory_size=256, timeout=7, user_data='{"MINE":"x"}'))
    out = result(fgs.invoke(fn["func_urn"]))
    assert out["name"] == name and out["version"] == "latest" and out["package"] == "default"
    assert (out["memory"], out["cpu"], out["timeout"], out["handler"]) == ("256", "400", "7", "bootstrap.handler")
    assert out["userdata"] == {"MINE": "x"} and out["mine"] == "x" and out["code_root_is_cwd"] == "yes"


def test_custom_runtime_without_bootstrap(fgs):
    body = custom_fn(unique("nobs"), "")
    body["func_code"] = {"file": b64(make_zip({"readme.txt": "no bootstrap here"}))}
    fn = fgs.create(**body)
    r = fgs.invoke(fn["func_urn"])
    assert r.headers["X-Func-Err-Code"] == "4202"
    assert json.loads(r.json()["result"])["errorMessage"] == "runtime bootstrap file is not found"


def test_example_python(fgs):
    body = python_fn(unique("ex-py"), "", code_type="zip", code_filename="python-hello.zip",
                     func_code={"file": b64(zip_dir(os.path.join(EXAMPLES, "python-hello")))},
                     initializer_handler="index.initializer", initializer_timeout=3, user_data='{"GREETING":"Hi"}')
    fn = fgs.create(**body)
    out = result(fgs.invoke(fn["func_urn"], {"name": "fgs"}))
    assert out["statusCode"] == 200
    assert json.loads(out["body"])["message"] == "Hi, fgs!"
    assert json.loads(result(fgs.invoke(fn["func_urn"]))["body"])["invocations"] == 2


def test_example_nodejs(fgs):
    body = node_fn(unique("ex-node"), "", code_type="zip", code_filename="nodejs-hello.zip",
                   func_code={"file": b64(zip_dir(os.path.join(EXAMPLES, "nodejs-hello")))})
    fn = fgs.create(**body)
    out = result(fgs.invoke(fn["func_urn"], {"name": "node"}))
    assert json.loads(out["body"])["message"] == "Hello, node!"


def test_example_custom_bootstrap(fgs):
    body = custom_fn(unique("ex-custom"), "")
    body["func_code"] = {"file": b64(zip_dir(os.path.join(EXAMPLES, "custom-bootstrap")))}
    fn = fgs.create(**body)
    r = fgs.invoke(fn["func_urn"], {"n": 1}, tail=True)
    out = result(r)
    assert out["runtime"] == "custom" and out["event"] == {"n": 1}
    assert out["request_id"] == r.headers["X-Cff-Request-Id"]
    assert "custom runtime handling %s" % out["request_id"] in r.json()["log"]


def test_functions_survive_a_restart(fresh_fgs):
    first = fresh_fgs()
    fn = first.create(**python_fn("persisted", "def handler(e, c):\n    return 'still here'\n", user_data='{"A":"1"}'))
    first.stop()
    second = fresh_fgs(data_dir=first.data_dir)
    cfg = second.api("GET", "/functions/persisted/config").json()
    assert cfg["func_id"] == fn["func_id"] and cfg["user_data"] == '{"A":"1"}' and cfg["digest"] == fn["digest"]
    assert second.invoke("persisted").json()["result"] == "still here"
    assert second.api("GET", "/functions").json()["count"] == 1


def test_relative_data_dir(fresh_fgs):
    """The default `--data-dir ./fgs-data` is relative to where fgs was started."""
    host = fresh_fgs(data_dir="./fgs-data", cwd=fresh_fgs.tmp)
    fn = host.create(**python_fn("rel", "def handler(e, c):\n    return 'relative ok'\n"))
    assert host.invoke(fn["func_urn"]).json()["result"] == "relative ok"
    assert os.path.isfile(os.path.join(fresh_fgs.tmp, "fgs-data", "fgs.sqlite3"))


def test_health_and_metrics(fgs):
    health = fgs.http.get(fgs.url + "/healthz").json()
    assert health["status"] == "ok"
    assert health["sandbox"]["mode"] == ("namespace" if os.geteuid() == 0 else "process-group")
    fn = fgs.create(**python_fn(unique("met"), "def handler(e, c):\n    return 1\n"))
    fgs.invoke(fn["func_urn"])
    text = fgs.http.get(fgs.url + "/metrics").text
    assert 'fgs_invocations_total{code="0",function="%s"}' % fn["func_urn"] in text
    assert "fgs_instances" in text and "fgs_invocation_duration_seconds_bucket" in text
