"""Function management API: create, list, show, update, delete, and every validation error."""

import base64
import json

import pytest

from conftest import PROJECT, b64, make_zip, python_fn, unique

HELLO = "def handler(event, context):\n    return 'hello'\n"


def error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code, body
    assert body["error_msg"]
    return body


def test_create_returns_function_object(fgs):
    name = unique("create")
    fn = fgs.create(**python_fn(name, HELLO, user_data='{"A":"1"}', description="d", memory_size=256, timeout=30))
    assert fn["func_urn"] == "urn:fss:cn-north-4:%s:function:default:%s:latest" % (PROJECT, name)
    assert fn["func_name"] == name and fn["package"] == "default" and fn["namespace"] == PROJECT
    assert fn["runtime"] == "Python3.9" and fn["handler"] == "index.handler"
    assert fn["memory_size"] == 256 and fn["timeout"] == 30 and fn["cpu"] == 400
    assert fn["code_type"] == "inline" and fn["code_filename"] == "index.py"
    assert fn["code_size"] == len(HELLO) and len(fn["digest"]) == 128
    assert fn["user_data"] == '{"A":"1"}' and fn["description"] == "d" and fn["version"] == "latest"
    assert fn["last_modified"]


def test_show_config_and_code(fgs):
    name = unique("show")
    created = fgs.create(**python_fn(name, HELLO))
    for urn in [created["func_urn"], created["func_urn"][: -len(":latest")], name, "default:" + name,
                "%s:default:%s" % (PROJECT, name), "%s:default:%s:latest" % (PROJECT, name)]:
        r = fgs.api("GET", "/functions/%s/config" % urn)
        assert r.status_code == 200, (urn, r.text)
        assert r.json()["func_id"] == created["func_id"]
    code = fgs.api("GET", "/functions/%s/code" % name).json()
    assert base64.b64decode(code["func_code"]["file"]).decode() == HELLO
    assert code["digest"] == created["digest"] and code["code_type"] == "inline"


def test_update_config(fgs):
    name = unique("upd")
    fgs.create(**python_fn(name, HELLO))
    r = fgs.api("PUT", "/functions/%s/config" % name, json=dict(
        func_name=name, runtime="Python3.9", handler="index.handler", memory_size=512, timeout=60,
        user_data='{"X":"y"}', description="changed"))
    assert r.status_code == 200, r.text
    cfg = fgs.api("GET", "/functions/%s/config" % name).json()
    assert (cfg["memory_size"], cfg["timeout"], cfg["runtime"], cfg["user_data"], cfg["description"]) == \
        (512, 60, "Python3.9", '{"X":"y"}', "changed")


def test_update_config_validates(fgs):
    name = unique("updv")
    fgs.create(**python_fn(name, HELLO))
    base = dict(func_name=name, runtime="Python3.9", handler="index.handler", memory_size=128, timeout=3)
    error(fgs.api("PUT", "/functions/%s/config" % name, json=dict(base, memory_size=100)), 400, "FSS.1007")
    error(fgs.api("PUT", "/functions/%s/config" % name, json=dict(base, timeout=1)), 400, "FSS.1008")
    error(fgs.api("PUT", "/functions/%s/config" % unique("missing"), json=base), 404, "FSS.1051")
    # The runtime is fixed at creation, as in FunctionGraph.
    body = error(fgs.api("PUT", "/functions/%s/config" % name, json=dict(base, runtime="Python3.10")), 400, "FSS.1005")
    assert "cannot be changed" in body["error_msg"]
    cfg = fgs.api("GET", "/functions/%s/config" % name).json()
    assert (cfg["memory_size"], cfg["runtime"]) == (128, "Python3.9")


def test_a_custom_runtime_handler_may_be_just_bootstrap(fgs):
    """The API reference's own example of a custom runtime names the handler `bootstrap`."""
    from conftest import custom_fn
    bootstrap = """#!/bin/sh
API="http://$RUNTIME_API_ADDR/v1/runtime/invocation"
while true; do
  ID=$(curl -s -D - -o /dev/null "$API/request" | grep -i x-cff-request-id | cut -d: -f2 | tr -d ' \\r')
  printf '"custom"' | curl -s -o /dev/null -X POST --data-binary @- "$API/response/$ID"
done
"""
    fn = fgs.create(**custom_fn(unique("boot"), bootstrap, handler="bootstrap"))
    assert fn["handler"] == "bootstrap"
    r = fgs.invoke(fn["func_urn"])
    assert r.headers["X-Func-Err-Code"] == "0" and json.loads(r.json()["result"]) == "custom", r.text
    # Only for Custom: elsewhere a handler names file.function.
    error(fgs.api("POST", "/functions", json=python_fn(unique("boot"), HELLO, handler="bootstrap")), 400, "FSS.1003")


def test_update_code_changes_digest(fgs):
    name = unique("code")
    created = fgs.create(**python_fn(name, HELLO))
    new = "def handler(event, context):\n    return 'v2'\n"
    r = fgs.api("PUT", "/functions/%s/code" % name, json={"code_type": "inline", "func_code": {"file": b64(new)}})
    assert r.status_code == 200, r.text
    assert r.json()["digest"] != created["digest"]
    assert base64.b64decode(fgs.api("GET", "/functions/%s/code" % name).json()["func_code"]["file"]).decode() == new


def test_delete(fgs):
    name = unique("del")
    created = fgs.create(**python_fn(name, HELLO))
    urn = created["func_urn"]
    # The latest version cannot be deleted on its own; the unqualified URN deletes the function.
    error(fgs.api("DELETE", "/functions/%s" % urn), 400, "FSS.0400")
    r = fgs.api("DELETE", "/functions/%s" % urn[: -len(":latest")])
    assert r.status_code == 204 and r.content == b""
    error(fgs.api("GET", "/functions/%s/config" % name), 404, "FSS.1051")
    error(fgs.api("DELETE", "/functions/%s" % name), 404, "FSS.1051")
    error(fgs.invoke(urn), 404, "FSS.1051")


def test_list_paging(fresh_fgs):
    host = fresh_fgs()
    names = ["page-%02d" % i for i in range(7)]
    for n in names:
        host.create(**python_fn(n, HELLO))
    host.create(**python_fn("other-pkg", HELLO, package="tools"))
    seen, marker = [], 0
    while True:
        r = host.api("GET", "/functions", params={"marker": marker, "maxitems": 3, "package_name": "default"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == 7
        seen += [f["func_name"] for f in body["functions"]]
        assert body["next_marker"] == marker + len(body["functions"])
        marker = body["next_marker"]
        if marker >= body["count"]:
            break
    assert seen == names
    everything = host.api("GET", "/functions").json()
    assert everything["count"] == 8 and len(everything["functions"]) == 8
    assert host.api("GET", "/functions", params={"maxitems": 0}).json()["count"] == 8
    fuzzy = host.api("GET", "/functions", params={"func_name": "page-0"}).json()
    assert fuzzy["count"] == 7
    error(host.api("GET", "/functions", params={"maxitems": -1}), 400, "FSS.1001")
    error(host.api("GET", "/functions", params={"marker": "x"}), 400, "FSS.1001")
    assert host.api("GET", "/functions", project="another-project").json()["count"] == 0


def test_duplicate_function(fgs):
    name = unique("dup")
    fgs.create(**python_fn(name, HELLO))
    error(fgs.api("POST", "/functions", json=python_fn(name, HELLO)), 409, "FSS.1061")
    # The same name in another package or project is a different function.
    fgs.create(**python_fn(name, HELLO, package="other"))
    assert fgs.api("POST", "/functions", project="p2", json=python_fn(name, HELLO)).status_code == 200


@pytest.mark.parametrize("override,status,code", [
    ({"func_name": ""}, 400, "FSS.1002"),
    ({"func_name": "1starts-with-digit"}, 400, "FSS.1002"),
    ({"func_name": "ends-with-dash-"}, 400, "FSS.1002"),
    ({"func_name": "has space"}, 400, "FSS.1002"),
    ({"func_name": "a" * 61}, 400, "FSS.1002"),
    ({"func_name": None}, 400, "FSS.1002"),
    ({"handler": "nodot"}, 400, "FSS.1003"),
    ({"handler": "ab"}, 400, "FSS.1003"),
    ({"handler": "x." + "a" * 127}, 400, "FSS.1003"),
    ({"handler": None}, 400, "FSS.1003"),
    ({"package": "bad package!"}, 400, "FSS.1004"),
    ({"runtime": "Cobol1.0"}, 400, "FSS.1005"),
    ({"runtime": "Java8"}, 400, "FSS.1005"),
    ({"runtime": None}, 400, "FSS.1005"),
    ({"code_type": "obs"}, 400, "FSS.1006"),
    ({"code_type": "floppy"}, 400, "FSS.1006"),
    ({"code_type": None}, 400, "FSS.1006"),
    ({"memory_size": 64}, 400, "FSS.1007"),
    ({"memory_size": 129}, 400, "FSS.1007"),
    ({"memory_size": 5000}, 400, "FSS.1007"),
    ({"memory_size": 10241}, 400, "FSS.1007"),
    ({"memory_size": None}, 400, "FSS.1007"),
    ({"timeout": 2}, 400, "FSS.1008"),
    ({"timeout": 259201}, 400, "FSS.1008"),
    ({"timeout": None}, 400, "FSS.1008"),
    ({"user_data": "not json"}, 400, "FSS.1009"),
    ({"user_data": "[1,2]"}, 400, "FSS.1009"),
    ({"user_data": '{"1bad":"x"}'}, 400, "FSS.1009"),
    ({"user_data": json.dumps({"K%d" % i: "v" for i in range(21)})}, 400, "FSS.1017"),
    ({"user_data": json.dumps({"K": "x" * 4096})}, 400, "FSS.1018"),
    ({"description": "d" * 513}, 400, "FSS.1019"),
    ({"initializer_handler": "noinit", "initializer_timeout": 3}, 400, "FSS.1404"),
    ({"initializer_handler": "index.init"}, 400, "FSS.1405"),
    ({"initializer_handler": "index.init", "initializer_timeout": 0}, 400, "FSS.1405"),
    ({"initializer_handler": "index.init", "initializer_timeout": 301}, 400, "FSS.1405"),
    ({"func_code": {"file": ""}}, 400, "FSS.1012"),
    ({"func_code": {"file": "@@@not-base64@@@"}}, 400, "FSS.1011"),
    ({"func_code": {"file": b64("#" * (10 * 1024 + 1))}}, 413, "FSS.1072"),
])
def test_create_validation(fgs, override, status, code):
    body = python_fn(unique("bad"), HELLO)
    for k, v in override.items():
        if v is None:
            body.pop(k, None)
        else:
            body[k] = v
    error(fgs.api("POST", "/functions", json=body), status, code)


def test_limits_at_their_bounds_are_accepted(fgs):
    for memory in [128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 8192, 10240]:
        fgs.create(**python_fn(unique("mem"), HELLO, memory_size=memory))
    fgs.create(**python_fn(unique("t"), HELLO, timeout=3))
    fgs.create(**python_fn(unique("t"), HELLO, timeout=259200))
    fgs.create(**python_fn("a" * 60, HELLO))
    fgs.create(**python_fn(unique("ud"), HELLO, user_data=json.dumps({"K%d" % i: "v" for i in range(20)})))
    fgs.create(**python_fn(unique("ud"), HELLO, user_data=json.dumps({"K": "x" * 4095})))
    fgs.create(**python_fn(unique("inl"), "#" * (10 * 1024)))
    fgs.create(**python_fn(unique("init"), HELLO, initializer_handler="index.init", initializer_timeout=300))


def test_malformed_requests(fgs):
    r = fgs.api("POST", "/functions", data="{not json", headers={"Content-Type": "application/json"})
    error(r, 406, "FSS.0406")
    r = fgs.api("POST", "/functions", json=dict(python_fn(unique("t"), HELLO), memory_size="lots"))
    error(r, 406, "FSS.0406")
    error(fgs.api("GET", "/functions/a:b:c:d:e/config"), 400, "FSS.1309")
    error(fgs.api("GET", "/functions/otherproject:default:x/config"), 400, "FSS.1309")
    error(fgs.http.get(fgs.url + "/v2/%s/fgs/nothing-here" % PROJECT), 404, "FSS.0404")


def test_unpublished_versions_and_aliases_do_not_exist(fgs):
    name = unique("ver")
    fgs.create(**python_fn(name, HELLO))
    error(fgs.api("GET", "/functions/%s:default:%s:v1/config" % (PROJECT, name)), 404, "FSS.1052")
    error(fgs.api("GET", "/functions/%s:default:%s:!prod/config" % (PROJECT, name)), 404, "FSS.1053")


def test_zip_code_type(fgs):
    name = unique("zip")
    package = make_zip({"index.py": HELLO, "lib/helper.py": "X = 1\n"})
    fn = fgs.create(**python_fn(name, "", code_type="zip", code_filename="code.zip", func_code={"file": b64(package)}))
    assert fn["code_type"] == "zip" and fn["code_filename"] == "code.zip" and fn["code_size"] == len(package)
    assert base64.b64decode(fgs.api("GET", "/functions/%s/code" % name).json()["func_code"]["file"]) == package
    body = python_fn(unique("zip"), "", code_type="zip", func_code={"file": b64(package)})
    error(fgs.api("POST", "/functions", json=body), 400, "FSS.0400")
    body["code_filename"] = "code.tar"
    error(fgs.api("POST", "/functions", json=body), 400, "FSS.1013")


def test_unknown_paths_and_methods_answer_in_json(fgs):
    """Never an empty 404/405: a path fgs lacks is FSS.0404, a known path with another method
    FSS.0405 (fgs's code; FunctionGraph documents none), both with a message."""
    import requests
    error(fgs.api("GET", "/no-such-api"), 404, "FSS.0404")
    for method, path in [("PATCH", "/v2/%s/fgs/functions" % PROJECT), ("PUT", "/healthz")]:
        r = requests.request(method, fgs.url + path)
        assert r.headers["Content-Type"] == "application/json"
        error(r, 405, "FSS.0405")
    # EventGrid's paths answer in EventGrid's shape (tests/test_eventstream_sdk.py has more).
    r = requests.request("DELETE", "%s/v1/%s/eventstreamings" % (fgs.url, PROJECT))
    error(r, 405, "EG.00014050")


def test_fields_fgs_does_not_implement_are_refused_never_dropped(fgs):
    # Present with their defaults (what SDKs and Terraform send for a feature left off): accepted.
    name = unique("fields")
    quiet = dict(func_vpc=None, type="v2", enterprise_project_id="0", enable_dynamic_memory=False,
                 custom_image={"enabled": False, "image": ""}, mount_config={"func_mounts": []},
                 log_config={}, tags=[], pre_stop_handler="", gpu_memory=0, code_url="")
    created = fgs.create(**python_fn(name, HELLO, **quiet))
    urn = created["func_urn"]
    # Asking for something fgs does not do: 400 naming the field, on create and on updates.
    for field, value in (("func_vpc", {"vpc_id": "v", "subnet_id": "s"}), ("enable_dynamic_memory", True),
                         ("custom_image", {"enabled": True, "image": "swr/x"}), ("gpu_memory", 1024),
                         ("pre_stop_handler", "index.stop"), ("type", "v1"), ("no_such_field", "x"),
                         ("log_config", {"group_id": "g"})):
        r = fgs.api("POST", "/functions", json=python_fn(unique("fields"), HELLO, **{field: value}))
        assert field in error(r, 400, "FSS.0400")["error_msg"]
    config = dict(runtime="Python3.9", handler="index.handler", memory_size=128, timeout=3)
    body = error(fgs.api("PUT", "/functions/%s/config" % urn, json=dict(config, mount_config={
        "func_mounts": [{"mount_type": "sfs", "mount_resource": "r", "local_mount_path": "/mnt"}]})), 400, "FSS.0400")
    assert "mount_config" in body["error_msg"]
    error(fgs.api("PUT", "/functions/%s/config" % urn, json=dict(config, ephemeral_storage=10240)), 400, "FSS.0400")
    assert fgs.api("PUT", "/functions/%s/config" % urn, json=dict(config, ephemeral_storage=512)).status_code == 200
    error(fgs.api("PUT", "/functions/%s/code" % urn, json={"code_type": "inline", "func_code": {"file": b64(HELLO)},
                                                          "code_encrypt_kms_key_id": "k"}), 400, "FSS.0400")
    error(fgs.api("PUT", "/functions/%s/code" % urn, json={"code_type": "zip", "code_filename": "a.zip",
                                                          "func_code": {"link": "https://obs/a.zip"}}), 400, "FSS.1006")
    # A rename would be dropped: refused.
    error(fgs.api("PUT", "/functions/%s/config" % urn, json=dict(config, func_name="other")), 400, "FSS.1002")
    # strategy_config is implemented: concurrency is max_instance_num; one request per instance.
    r = fgs.api("PUT", "/functions/%s/config" % urn, json=dict(config, strategy_config={"concurrency": 7, "concurrent_num": 1}))
    assert r.status_code == 200 and r.json()["strategy_config"]["concurrency"] == 7, r.text
    error(fgs.api("PUT", "/functions/%s/config" % urn, json=dict(config, strategy_config={"concurrent_num": 5})),
          400, "FSS.1026")
    assert fgs.api("GET", "/functions/%s/config" % urn).json()["strategy_config"]["concurrency"] == 7


def test_operations_fgs_does_not_implement_answer_501_naming_them(fgs):
    name = unique("missing-ops")
    urn = fgs.create(**python_fn(name, HELLO))["func_urn"]
    for method, path, operation in (("GET", "/templates", "list_function_template"),
                                    ("GET", "/workflows", "list_workflow"),
                                    ("GET", "/functions/%s/events" % urn, "list_events"),
                                    ("POST", "/functions/import", "import_function")):
        body = error(fgs.api(method, path, json={}), 501, "FSS.0501")
        assert operation in body["error_msg"]
    # The implemented neighbours still answer.
    assert fgs.api("GET", "/functions/%s/config" % urn).status_code == 200
    assert fgs.api("GET", "/functions/reservedinstances").status_code == 200
