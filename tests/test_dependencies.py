"""Dependency packages: created through the official SDK, importable from Python and Node.js in
both sandboxes, unpacked once and shared read-only, refused with FunctionGraph's codes."""

import base64
import concurrent.futures
import json
import os

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    CreateDependencyRequestBody,
    CreateDependencyVersionRequest,
    DeleteDependencyVersionRequest,
    ListDependenciesRequest,
    ListDependencyVersionRequest,
    ShowDependencyVersionRequest,
)

from conftest import b64, make_zip, node_fn, python_fn, unique
from test_sdk_compat import sdk_client

PY_LIB = make_zip({"greeting_lib/__init__.py": "WORD = 'hello from a dependency'\n"})
NODE_LIB = make_zip({"node_modules/greeting-lib/index.js": "exports.word = 'hello from node_modules';\n",
                     "node_modules/greeting-lib/package.json": '{"name": "greeting-lib", "main": "index.js"}'})

PY_USER = """import os, greeting_lib
def handler(event, context):
    path = greeting_lib.__file__
    st = os.stat(path)
    try:
        open(path, "a").close()
        writable = True
    except OSError:
        writable = False
    return {"word": greeting_lib.WORD, "file": path, "inode": [st.st_dev, st.st_ino], "writable": writable}
"""

NODE_USER = """const lib = require('greeting-lib');
exports.handler = async () => ({word: lib.word, file: require.resolve('greeting-lib')});
"""


def create_dependency(fgs, name, zip_bytes, runtime, expect=200, **over):
    body = dict(depend_type="zip", depend_file=b64(zip_bytes), runtime=runtime, name=name)
    body.update(over)
    r = fgs.api("POST", "/dependencies/version", json=body)
    assert r.status_code == expect, r.text
    return r.json()


def refused(r, status, code):
    assert (r.status_code, r.json().get("error_code")) == (status, code), r.text


def result(r):
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 200, body
    return json.loads(body["result"])


@pytest.fixture(params=["namespace", "process"])
def host(request, fgs, fresh_fgs):
    """The shared host (namespace sandbox) and one with the process-group sandbox."""
    if request.param == "namespace":
        assert fgs.http.get(fgs.url + "/healthz").json()["sandbox"]["mode"] == "namespace"
        return fgs
    return fresh_fgs("--sandbox", "process")


def test_python_and_node_import_from_dependencies(host):
    py_dep = create_dependency(host, unique("pylib"), PY_LIB, "Python3.9")
    name = unique("dep-py")
    created = host.create(**python_fn(name, PY_USER, depend_version_list=[py_dep["id"]]))
    assert created["depend_version_list"] == [py_dep["id"]]
    assert created["dependencies"][0]["etag"] == py_dep["etag"] and created["depend_list"] == [py_dep["dep_id"]]
    out = result(host.invoke(created["func_urn"], {}))
    assert out["word"] == "hello from a dependency"
    if host.http.get(host.url + "/healthz").json()["sandbox"]["mode"] == "namespace":
        # (The process-group fallback enforces no file permissions: its instances run as fgs.)
        assert out["writable"] is False, "a dependency must be read-only for the function"
        assert out["file"].startswith("/opt/function/dependencies/0/")

    node_dep = create_dependency(host, unique("nodelib"), NODE_LIB, "Node.js18.15")
    node = host.create(**node_fn(unique("dep-node"), NODE_USER, depend_version_list=[node_dep["id"]]))
    assert result(host.invoke(node["func_urn"], {}))["word"] == "hello from node_modules"

    # Without the dependency the import fails: it came from the package, nothing else.
    plain = host.create(**python_fn(unique("dep-none"), PY_USER))
    failed = host.invoke(plain["func_urn"], {}).json()
    assert failed["status"] == 500 and "greeting_lib" in failed["result"]


def test_a_dependency_is_unpacked_once_for_twenty_instances(fgs):
    word = "shared %s" % unique()
    source = "WORD = %r\n" % word
    lib = make_zip({"greeting_lib/__init__.py": source})
    dep = create_dependency(fgs, unique("shared"), lib, "Python3.9")
    slow = PY_USER.replace("def handler(event, context):", "import time\ndef handler(event, context):\n    time.sleep(1)")
    urns = [fgs.create(**python_fn(unique("dep-many"), slow, depend_version_list=[dep["id"]], timeout=10))["func_urn"]
            for _ in range(2)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        outs = list(pool.map(lambda i: result(fgs.invoke(urns[i % 2], {})), range(20)))
    assert {o["word"] for o in outs} == {word}
    assert len({o["file"] for o in outs}) == 1
    # The same file (device and inode) in every instance of both functions: one tree on the host.
    assert len({tuple(o["inode"]) for o in outs}) == 1
    trees = os.path.join(fgs.data_dir, "code", "trees")
    holding = []
    for tree in os.listdir(trees):
        path = os.path.join(trees, tree, "greeting_lib", "__init__.py")
        if os.path.exists(path) and open(path).read() == source:
            holding.append(tree)
    assert len(holding) == 1


def test_dependency_api_through_the_sdk_and_its_refusals(fgs):
    client = sdk_client(fgs, "fake-ak", "fake-sk")
    name = unique("sdklib")
    first = client.create_dependency_version(CreateDependencyVersionRequest(body=CreateDependencyRequestBody(
        depend_type="zip", depend_file=base64.b64encode(PY_LIB).decode(), runtime="Python3.9", name=name,
        description="v1 of the lib")))
    assert first.version == 1 and first.name == name and first.size > 0 and len(first.etag) == 32
    second = client.create_dependency_version(CreateDependencyVersionRequest(body=CreateDependencyRequestBody(
        depend_type="zip", depend_file=base64.b64encode(PY_LIB).decode(), runtime="Python3.9", name=name)))
    assert second.version == 2 and second.dep_id == first.dep_id and second.id != first.id

    versions = client.list_dependency_version(ListDependencyVersionRequest(depend_id=first.dep_id))
    assert [v.version for v in versions.dependencies] == [1, 2] and versions.count == 2
    shown = client.show_dependency_version(ShowDependencyVersionRequest(depend_id=first.dep_id, version="1"))
    assert shown.id == first.id and shown.description == "v1 of the lib"
    listed = client.list_dependencies(ListDependenciesRequest(name=name, runtime="Python3.9"))
    assert [d.version for d in listed.dependencies] == [1, 2]
    assert client.list_dependencies(ListDependenciesRequest(name=name, runtime="Node.js18.15")).count == 0
    assert client.list_dependencies(ListDependenciesRequest(name=name, dependency_type="public")).count == 0

    # In use: the version cannot be deleted until no function version names it.
    user = fgs.create(**python_fn(unique("dep-user"), PY_USER, depend_version_list=[first.id]))
    base = user["func_urn"][: -len(":latest")]
    with pytest.raises(ClientRequestException) as e:
        client.delete_dependency_version(DeleteDependencyVersionRequest(depend_id=first.dep_id, version="1"))
    assert (e.value.status_code, e.value.error_code) == (412, "FSS.1033")
    # A published version keeps it in use after latest moved to version 2.
    assert fgs.api("POST", "/functions/%s/versions" % base, json={"version": "v1"}).status_code == 200
    r = fgs.api("PUT", "/functions/%s/code" % base, json={
        "code_type": "inline", "func_code": {"file": b64(PY_USER)}, "depend_version_list": [second.id]})
    assert r.status_code == 200 and r.json()["depend_version_list"] == [second.id], r.text
    refused(fgs.api("DELETE", "/dependencies/%s/version/1" % first.dep_id), 412, "FSS.1033")
    assert fgs.api("DELETE", "/functions/%s:v1" % base).status_code == 204
    assert fgs.api("DELETE", "/dependencies/%s/version/1" % first.dep_id).status_code == 204
    refused(fgs.api("GET", "/dependencies/%s/version/1" % first.dep_id), 404, "FSS.1056")

    # Unknown, foreign-runtime and duplicate ids are refused on create and on update.
    refused(fgs.api("POST", "/functions", json=python_fn(unique("d"), PY_USER, depend_version_list=["nope"])),
            404, "FSS.1056")
    node_dep = create_dependency(fgs, unique("nodelib"), NODE_LIB, "Node.js18.15")
    refused(fgs.api("POST", "/functions", json=python_fn(unique("d"), PY_USER, depend_version_list=[node_dep["id"]])),
            400, "FSS.1024")
    refused(fgs.api("PUT", "/functions/%s/code" % base, json={
        "code_type": "inline", "func_code": {"file": b64(PY_USER)}, "depend_version_list": [second.id, second.id]}),
        400, "FSS.1024")
    # Another project cannot use (or see) this project's dependency.
    other = "f" * 32
    refused(fgs.api("POST", "/functions", project=other,
                    json=python_fn(unique("d"), PY_USER, depend_version_list=[second.id])), 404, "FSS.1056")
    assert fgs.api("GET", "/dependencies", project=other).json()["count"] == 0

    # The package itself.
    for bad_name in ("1lib", "lib-", "a/b", "x" * 97):
        create_dependency(fgs, bad_name, PY_LIB, "Python3.9", expect=400)
    refused(fgs.api("POST", "/dependencies/version", json=dict(
        depend_type="obs", depend_link="https://obs/x.zip", runtime="Python3.9", name="lib")), 400, "FSS.1032")
    refused(fgs.api("POST", "/dependencies/version", json=dict(
        depend_type="zip", depend_file=b64(b"not a zip"), runtime="Python3.9", name="lib")), 400, "FSS.1011")
    refused(fgs.api("POST", "/dependencies/version", json=dict(
        depend_type="zip", depend_file=b64(PY_LIB), runtime="Cobol", name="lib")), 400, "FSS.1005")
    big = os.urandom(40 * 1024 * 1024 + 1)
    refused(fgs.api("POST", "/dependencies/version", json=dict(
        depend_type="zip", depend_file=b64(big), runtime="Python3.9", name="lib")), 400, "FSS.1024")
    evil = make_zip({"../escape.py": "x = 1\n"})
    refused(fgs.api("POST", "/dependencies/version", json=dict(
        depend_type="zip", depend_file=b64(evil), runtime="Python3.9", name="lib")), 400, "FSS.1011")


def test_dependency_quota_and_restart(fresh_fgs, tmp_path):
    data = str(tmp_path / "data")
    host = fresh_fgs("--max-dependency-versions", "1", data_dir=data)
    dep = create_dependency(host, unique("lib"), PY_LIB, "Python3.9")
    refused(host.api("POST", "/dependencies/version", json=dict(
        depend_type="zip", depend_file=b64(PY_LIB), runtime="Python3.9", name="other")), 403, "FSS.1045")
    created = host.create(**python_fn(unique("dep-restart"), PY_USER, depend_version_list=[dep["id"]]))
    host.stop()
    host = fresh_fgs(data_dir=data)
    assert result(host.invoke(created["func_urn"], {}))["word"] == "hello from a dependency"
    assert host.api("GET", "/dependencies").json()["count"] == 1
