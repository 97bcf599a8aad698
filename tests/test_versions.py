"""Versions and aliases: publish, per-version instances and settings, alias routing by weight
and by header rule, every refusal's code, and persistence across a restart."""

import json
import time

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionVersionRequest,
    CreateFunctionVersionRequestBody,
    CreateVersionAliasRequest,
    CreateVersionAliasRequestBody,
    DeleteVersionAliasRequest,
    InvokeFunctionRequest,
    ListFunctionVersionsRequest,
    ListVersionAliasesRequest,
    ShowVersionAliasRequest,
    UpdateFunctionCodeRequest,
    UpdateFunctionCodeRequestBody,
    UpdateVersionAliasRequest,
    UpdateVersionAliasRequestBody,
    VersionStrategy,
    VersionStrategyRules,
    FuncCode,
)

from conftest import b64, python_fn, report, runtime_pids, unique
from test_sdk_compat import sdk_client

SOURCE = """import os, uuid
INSTANCE = uuid.uuid4().hex
def handler(event, context):
    return {"code": %r, "version": os.environ["RUNTIME_FUNC_VERSION"], "instance": INSTANCE}
"""


def make_function(fgs, code="one"):
    name = unique("ver")
    created = fgs.create(**python_fn(name, SOURCE % code))
    return name, created["func_urn"][: -len(":latest")]


def set_code(fgs, base, code):
    r = fgs.api("PUT", "/functions/%s/code" % base,
                json={"code_type": "inline", "func_code": {"file": b64(SOURCE % code)}})
    assert r.status_code == 200, r.text


def publish(fgs, base, expect=200, **body):
    r = fgs.api("POST", "/functions/%s/versions" % base, json=body)
    assert r.status_code == expect, r.text
    return r.json()


def alias(fgs, base, expect=200, method="POST", alias_name=None, **body):
    path = "/functions/%s/aliases" % base + ("/" + alias_name if alias_name else "")
    r = fgs.api(method, path, json=body)
    assert r.status_code == expect, r.text
    return r.json()


def run(fgs, urn, headers=None):
    r = fgs.invoke(urn, {}, headers=headers)
    assert r.status_code == 200, r.text
    out = json.loads(r.json()["result"])
    assert r.headers["X-Cff-Function-Version"] == out["version"]
    return out


def refused(r, status, code):
    assert (r.status_code, r.json().get("error_code")) == (status, code), r.text


def test_versions_and_aliases_through_the_sdk(fgs):
    client = sdk_client(fgs, "fake-ak", "fake-sk")
    name, base = make_function(fgs, "one")
    v1 = client.create_function_version(CreateFunctionVersionRequest(
        function_urn=base, body=CreateFunctionVersionRequestBody(version="v1", description="first")))
    assert v1.version == "v1" and v1.func_urn == base + ":v1" and v1.version_description == "first"
    client.update_function_code(UpdateFunctionCodeRequest(function_urn=base, body=UpdateFunctionCodeRequestBody(
        code_type="inline", func_code=FuncCode(file=b64(SOURCE % "two")))))
    v2 = client.create_function_version(CreateFunctionVersionRequest(
        function_urn=base, body=CreateFunctionVersionRequestBody(version="v2")))
    assert v2.digest != v1.digest
    set_code(fgs, base, "three")

    listed = client.list_function_versions(ListFunctionVersionsRequest(function_urn=base))
    assert [v.version for v in listed.versions] == ["latest", "v1", "v2"] and listed.count == 3

    # Each version answers with its own code, from instances of its own that stay warm.
    first = {q: run(fgs, "%s:%s" % (base, q)) for q in ("v1", "v2", "latest")}
    assert {q: o["code"] for q, o in first.items()} == {"v1": "one", "v2": "two", "latest": "three"}
    assert len({o["instance"] for o in first.values()}) == 3
    for q, o in first.items():
        assert run(fgs, "%s:%s" % (base, q))["instance"] == o["instance"], "version %s was not kept warm" % q
    # A change of latest replaces latest's instances only.
    set_code(fgs, base, "four")
    assert run(fgs, base)["code"] == "four"
    for q in ("v1", "v2"):
        assert run(fgs, "%s:%s" % (base, q))["instance"] == first[q]["instance"], "%s was restarted" % q

    # An alias sending 30 % of the traffic to v2.
    created = client.create_version_alias(CreateVersionAliasRequest(function_urn=base, body=CreateVersionAliasRequestBody(
        name="prod", version="v1", description="canary", additional_version_weights={"v2": 30})))
    assert created.alias_urn == base + ":!prod" and created.additional_version_weights == {"v2": 30}
    counts = {"one": 0, "two": 0}
    for _ in range(2000):
        counts[run(fgs, base + ":!prod")["code"]] += 1
    report("alias prod {v2: 30}: %d of 2000 invocations ran v2" % counts["two"])
    assert 500 <= counts["two"] <= 700, counts
    # The alias is also reachable without the `!`: versions and aliases share one namespace.
    assert run(fgs, base + ":prod")["code"] in ("one", "two")

    # A header rule: only matching requests reach v2.
    rule = VersionStrategy(combine_type="and", rules=[
        VersionStrategyRules(rule_type="Header", param="x-canary", op="in", value="yes,true")])
    client.create_version_alias(CreateVersionAliasRequest(function_urn=base, body=CreateVersionAliasRequestBody(
        name="beta", version="latest", additional_version_strategy={"v2": rule})))
    assert run(fgs, base + ":!beta")["code"] == "four"
    assert run(fgs, base + ":!beta", {"X-Canary": "true"})["code"] == "two"
    assert run(fgs, base + ":!beta", {"X-Canary": "no"})["code"] == "four"
    shown = client.show_version_alias(ShowVersionAliasRequest(function_urn=base, alias_name="beta"))
    assert shown.additional_version_strategy["v2"].rules[0].param == "x-canary"

    # An update takes effect on the next invocation.
    client.update_version_alias(UpdateVersionAliasRequest(function_urn=base, alias_name="prod",
                                                          body=UpdateVersionAliasRequestBody(version="v2")))
    assert all(run(fgs, base + ":!prod")["code"] == "two" for _ in range(20))
    aliases = client.list_version_aliases(ListVersionAliasesRequest(function_urn=base))
    assert sorted(a.name for a in aliases.body) == ["beta", "prod"]

    # The SDK sees the documented refusals.
    with pytest.raises(ClientRequestException) as e:
        client.invoke_function(InvokeFunctionRequest(function_urn=base + ":v9", body={}))
    assert (e.value.status_code, e.value.error_code) == (404, "FSS.1052")
    client.delete_version_alias(DeleteVersionAliasRequest(function_urn=base, alias_name="beta"))
    with pytest.raises(ClientRequestException) as e:
        client.show_version_alias(ShowVersionAliasRequest(function_urn=base, alias_name="beta"))
    assert (e.value.status_code, e.value.error_code) == (404, "FSS.1053")


def test_version_refusals(fgs):
    name, base = make_function(fgs)
    latest = fgs.api("GET", "/functions/%s/config" % base).json()
    refused(fgs.api("POST", "/functions/%s/versions" % base, json={"digest": "0" * 128}), 400, "FSS.0400")
    v1 = publish(fgs, base, version="v1", digest=latest["digest"])
    assert v1["digest"] == latest["digest"]
    # Nothing changed since v1: refused, named or not.
    refused(fgs.api("POST", "/functions/%s/versions" % base, json={"version": "v1b"}), 400, "FSS.1016")
    refused(fgs.api("POST", "/functions/%s/versions" % base, json={}), 400, "FSS.1016")
    set_code(fgs, base, "two")
    refused(fgs.api("POST", "/functions/%s/versions" % base, json={"version": "v1"}), 409, "FSS.1062")
    for bad in ("1v", "v:1", "latest", "v" * 43, "v1-"):
        refused(fgs.api("POST", "/functions/%s/versions" % base, json={"version": bad}), 400, "FSS.1015")
    generated = publish(fgs, base)
    assert generated["version"].startswith("v2") and len(generated["version"]) == len("vYYYYMMDD-HHMMSS")
    v2 = generated["version"]

    # A published version is read-only: its code and configuration.
    refused(fgs.api("PUT", "/functions/%s:v1/code" % base,
                    json={"code_type": "inline", "func_code": {"file": b64(SOURCE % "x")}}), 400, "FSS.1015")
    config = dict(runtime="Python3.9", handler="index.handler", memory_size=256, timeout=3)
    refused(fgs.api("PUT", "/functions/%s:v1/config" % base, json=config), 400, "FSS.1015")
    assert fgs.api("GET", "/functions/%s:v1/config" % base).json()["memory_size"] == 128
    refused(fgs.api("DELETE", "/functions/%s:latest" % base), 400, "FSS.0400")
    refused(fgs.invoke(base + ":v9"), 404, "FSS.1052")
    refused(fgs.invoke(base + ":!nope"), 404, "FSS.1053")

    # Aliases.
    for bad in ("1a", "a.b", "a" * 65, "latest"):
        refused(fgs.api("POST", "/functions/%s/aliases" % base, json={"name": bad, "version": "v1"}), 400, "FSS.1014")
    refused(fgs.api("POST", "/functions/%s/aliases" % base, json={"name": "a", "version": "v9"}), 404, "FSS.1052")
    for weights, code in (({"v9": 10}, "FSS.1091"), ({"latest": 10}, "FSS.1091"), ({v2: 101}, "FSS.1092"),
                          ({v2: -1}, "FSS.1092"), ({"v1": 10}, "FSS.1093")):
        r = fgs.api("POST", "/functions/%s/aliases" % base,
                    json={"name": "a", "version": "v1", "additional_version_weights": weights})
        refused(r, 400, code)
    bad_rule = {v2: {"combine_type": "xor", "rules": [{"rule_type": "Header", "param": "h", "op": "=", "value": "1"}]}}
    refused(fgs.api("POST", "/functions/%s/aliases" % base,
                    json={"name": "a", "version": "v1", "additional_version_strategy": bad_rule}), 400, "FSS.1091")
    alias(fgs, base, name="prod", version="v1", additional_version_weights={v2: 10})
    refused(fgs.api("POST", "/functions/%s/aliases" % base, json={"name": "prod", "version": v2}), 409, "FSS.1063")
    refused(fgs.api("POST", "/functions/%s/aliases" % base, json={"name": "v1", "version": v2}), 409, "FSS.1063")
    # One alias per version.
    refused(fgs.api("POST", "/functions/%s/aliases" % base, json={"name": "other", "version": "v1"}), 409, "FSS.1066")
    set_code(fgs, base, "three")
    refused(fgs.api("POST", "/functions/%s/versions" % base, json={"version": "prod"}), 409, "FSS.1062")
    # A version an alias points at cannot be deleted.
    refused(fgs.api("DELETE", "/functions/%s:v1" % base), 409, "FSS.1066")
    refused(fgs.api("DELETE", "/functions/%s:%s" % (base, v2)), 403, "FSS.1094")
    # An alias has no settings of its own.
    refused(fgs.api("PUT", "/functions/%s:!prod/config-max-instance" % base, json={"max_instance_num": 5}),
            400, "FSS.1014")
    refused(fgs.api("PUT", "/functions/%s/aliases/nope" % base, json={"version": "v1"}), 404, "FSS.1053")
    refused(fgs.api("DELETE", "/functions/%s/aliases/nope" % base), 404, "FSS.1053")

    # Once the alias is gone the versions can go.
    assert fgs.api("DELETE", "/functions/%s/aliases/prod" % base).status_code == 204
    assert fgs.api("DELETE", "/functions/%s:%s" % (base, v2)).status_code == 204
    refused(fgs.invoke("%s:%s" % (base, v2)), 404, "FSS.1052")
    assert run(fgs, base + ":v1")["code"] == "one"
    # Deleting the function deletes every version.
    assert fgs.api("DELETE", "/functions/%s" % base).status_code == 204
    refused(fgs.invoke(base + ":v1"), 404, "FSS.1051")


def test_quotas_and_paging(fresh_fgs):
    host = fresh_fgs("--max-versions", "3", "--max-aliases", "1")
    name, base = make_function(host)
    publish(host, base, version="v1")
    set_code(host, base, "two")
    publish(host, base, version="v2")
    set_code(host, base, "three")
    refused(host.api("POST", "/functions/%s/versions" % base, json={"version": "v3"}), 400, "FSS.1015")
    alias(host, base, name="a1", version="v1")
    refused(host.api("POST", "/functions/%s/aliases" % base, json={"name": "a2", "version": "v2"}), 403, "FSS.1043")
    page = host.api("GET", "/functions/%s/versions?marker=1&maxitems=1" % base).json()
    assert [v["version"] for v in page["versions"]] == ["v1"]
    assert page["next_marker"] == 2 and page["count"] == 3
    refused(host.api("GET", "/functions/%s/versions?maxitems=x" % base), 400, "FSS.1001")


def test_settings_and_async_records_are_per_version(fgs):
    name, base = make_function(fgs)
    publish(fgs, base, version="v1")
    r = fgs.api("PUT", "/functions/%s:v1/config-max-instance" % base, json={"max_instance_num": 0})
    assert r.status_code == 200 and r.json()["version"] == "v1", r.text
    refused(fgs.invoke(base + ":v1"), 429, "FSS.0429")
    assert run(fgs, base)["version"] == "latest"
    assert fgs.api("PUT", "/functions/%s:v1/config-max-instance" % base,
                   json={"max_instance_num": -1}).status_code == 200

    accepted = fgs.api("POST", "/functions/%s:v1/invocations-async" % base, json={})
    assert accepted.status_code == 202 and accepted.headers["X-Cff-Function-Version"] == "v1"
    request_id = accepted.json()["request_id"]
    deadline = time.time() + 20
    while time.time() < deadline:
        records = fgs.api("GET", "/functions/%s:v1/async-invocations" % base).json()["invocations"]
        if records and records[0]["status"] == "SUCCESS":
            break
        time.sleep(0.1)
    assert [(x["request_id"], x["status"]) for x in records] == [(request_id, "SUCCESS")]
    assert fgs.api("GET", "/functions/%s/async-invocations" % base).json()["invocations"] == []


def test_versions_and_aliases_survive_a_restart(fresh_fgs, tmp_path):
    data = str(tmp_path / "data")
    host = fresh_fgs(data_dir=data)
    name, base = make_function(host, "one")
    publish(host, base, version="v1", description="kept")
    set_code(host, base, "two")
    alias(host, base, name="prod", version="v1")
    host.stop()
    host = fresh_fgs(data_dir=data)
    assert run(host, base + ":v1")["code"] == "one"
    assert run(host, base + ":!prod")["code"] == "one"
    assert run(host, base)["code"] == "two"
    versions = host.api("GET", "/functions/%s/versions" % base).json()["versions"]
    assert [(v["version"], v["version_description"]) for v in versions] == [("latest", ""), ("v1", "kept")]
    assert [a["name"] for a in host.api("GET", "/functions/%s/aliases" % base).json()] == ["prod"]


def test_reserved_instances_and_async_configs_per_version_through_the_sdk(fgs):
    from huaweicloudsdkfunctiongraph.v2 import (
        ListFunctionAsyncInvokeConfigRequest, ListFunctionReservedInstancesRequest, ShowFunctionMetricsRequest)
    client = sdk_client(fgs, "fake-ak", "fake-sk")
    name, base = make_function(fgs)
    publish(fgs, base, version="v1")
    r = fgs.api("PUT", "/functions/%s:v1/reservedinstances" % base, json={"count": 1})
    assert r.status_code == 200 and r.json()["count"] == 1, r.text
    assert fgs.api("GET", "/functions/%s:v1/config" % base).json()["reserved_instance_count"] == 1
    assert fgs.api("GET", "/functions/%s/config" % base).json()["reserved_instance_count"] == 0
    listed = client.list_function_reserved_instances(ListFunctionReservedInstancesRequest(urn=base))
    assert [(x.func_urn, x.count) for x in listed.reservedinstances] == [(base + ":v1", 1)]
    # The reserved instance of v1 is started ahead of any request.
    deadline = time.time() + 20
    while time.time() < deadline and not [p for p in runtime_pids(name)]:
        time.sleep(0.1)
    assert runtime_pids(name), "the reserved instance of v1 did not start"
    assert fgs.api("PUT", "/functions/%s:v1/reservedinstances" % base, json={"count": 0}).status_code == 200

    config = {"max_async_event_age_in_seconds": 600, "max_async_retry_attempts": 1}
    for q in ("latest", "v1"):
        r = fgs.api("PUT", "/functions/%s:%s/async-invoke-config" % (base, q), json=dict(config, max_async_retry_attempts=2 if q == "v1" else 1))
        assert r.status_code == 200, r.text
    configs = client.list_function_async_invoke_config(ListFunctionAsyncInvokeConfigRequest(function_urn=base))
    assert sorted((c.func_urn, c.max_async_retry_attempts) for c in configs.async_invoke_configs) == [
        (base + ":latest", 1), (base + ":v1", 2)]
    assert configs.count == 2 and configs.page_info.current_count == 2

    run(fgs, base + ":v1")
    metrics = client.show_function_metrics(ShowFunctionMetricsRequest(func_urn=base + ":v1", period="5"))
    assert sum(p.value for p in metrics.count if p.value != -1) == 1
    assert max(p.value for p in metrics.instance_num) == 1
