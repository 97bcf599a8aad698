"""The EventGrid event-streaming API and target connections: lifecycle, validation errors,
persistence."""

import copy
import json
import os

import pytest

from conftest import EXAMPLES, PROJECT, unique

FN_URN = "urn:fss:cn-north-4:%s:function:default:sink:latest" % PROJECT


def stream(name=None, **over):
    body = {
        "name": name or unique("stream"),
        "description": "orders to a function",
        "source": {"name": "HC.Kafka", "source_kafka": {"addr": "127.0.0.1:9092", "group": "g1", "topic": "orders",
                                                        "seek_to": "earliest"}},
        "sink": {"name": "HC.FunctionGraph", "sink_fg": {"urn": FN_URN, "invoke_type": "SYNC"}},
        "rule_config": {"transform": {"type": "ORIGINAL"},
                        "filter": {"data": {"value": {"amount": [{"op": "NumberGreaterThan", "value": 10}]}}}},
        "option": {"thread_num": 2, "batch_window": {"count": 10, "time": 3, "interval": 1}},
    }
    body.update(over)
    return body


def eg(host, method, path="", project=PROJECT, base="/eventstreamings", **kw):
    r = host.http.request(method, "%s/v1/%s%s%s" % (host.url, project, base, path), **kw)
    assert r.headers.get("X-Request-Id"), "every response carries X-Request-Id"
    return r


def eg_error(r, status, code, details):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code and body["error_msg"], body
    assert details in body["error_details"], body
    return body


def test_lifecycle(fgs):
    body = stream()
    r = eg(fgs, "POST", json=body)
    assert r.status_code == 200, r.text
    sid = r.json()["eventStreamingID"]
    shown = eg(fgs, "GET", "/" + sid).json()
    assert shown["id"] == sid and shown["name"] == body["name"] and shown["status"] == "CREATED"
    assert shown["source"] == body["source"] and shown["sink"] == body["sink"]
    assert shown["rule_config"] == body["rule_config"] and shown["option"] == body["option"]
    assert shown["created_time"] and shown["updated_time"]
    changed = stream(body["name"], description="changed", option={"thread_num": 4})
    r = eg(fgs, "PUT", "/" + sid, json=changed)
    assert r.status_code == 200, r.text
    shown = eg(fgs, "GET", "/" + sid).json()
    assert shown["description"] == "changed" and shown["option"]["thread_num"] == 4
    assert shown["option"]["batch_window"] == {"count": 1, "time": 0, "interval": 0}
    assert eg(fgs, "DELETE", "/" + sid).status_code == 204
    eg_error(eg(fgs, "GET", "/" + sid), 404, "EG.00014040", sid)
    eg_error(eg(fgs, "DELETE", "/" + sid), 404, "EG.00014040", sid)
    eg_error(eg(fgs, "PUT", "/" + sid, json=changed), 404, "EG.00014040", sid)


def test_list_paging(fresh_fgs):
    host = fresh_fgs()
    names = ["s-%02d" % i for i in range(5)]
    for n in names:
        assert eg(host, "POST", json=stream(n)).status_code == 200
    page = eg(host, "GET", params={"offset": 1, "limit": 2}).json()
    assert page["total"] == 5 and page["size"] == 2
    assert [i["name"] for i in page["items"]] == names[1:3]
    assert eg(host, "GET").json()["total"] == 5
    assert eg(host, "GET", project="other").json() == {"total": 0, "size": 0, "items": []}
    eg_error(eg(host, "GET", params={"offset": -1}), 400, "EG.00014000", "offset")
    eg_error(eg(host, "GET", params={"limit": 0}), 400, "EG.00014000", "limit")
    eg_error(eg(host, "GET", params={"limit": 1001}), 400, "EG.00014000", "limit")


def test_streams_persist(fresh_fgs):
    host = fresh_fgs()
    sid = eg(host, "POST", json=stream("kept")).json()["eventStreamingID"]
    host.stop()
    again = fresh_fgs(data_dir=host.data_dir)
    assert eg(again, "GET", "/" + sid).json()["name"] == "kept"


def test_duplicate_names(fgs):
    name = unique("dup")
    assert eg(fgs, "POST", json=stream(name)).status_code == 200
    eg_error(eg(fgs, "POST", json=stream(name)), 400, "EG.00014000", "already exists")
    assert eg(fgs, "POST", project="another", json=stream(name)).status_code == 200


def set_path(body, path, value):
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


DELETE = object()


@pytest.mark.parametrize("path,value,details", [
    (["name"], "bad name", "name"),
    (["name"], "-starts-badly", "name"),
    (["name"], "x" * 129, "name"),
    (["name"], DELETE, "name is required"),
    (["description"], "d" * 256, "description"),
    (["source"], DELETE, "source is required"),
    (["source", "name"], "HC.DMS_ROCKETMQ", "source.source_dms_rocketmq is required"),
    (["source", "name"], "HC.Unknown", "unknown source"),
    (["source", "source_kafka", "topic"], "", "topic is required"),
    (["source", "source_kafka", "group"], DELETE, "group is required"),
    (["source", "source_kafka", "addr"], DELETE, "addr is required"),
    (["source", "source_kafka", "seek_to"], "middle", "seek_to"),
    (["source", "source_kafka", "enable_sasl_ssl"], True, "user_name is required"),
    (["sink"], DELETE, "sink is required"),
    (["sink", "name"], "HC.OBS", "not supported by fgs"),
    (["sink", "sink_fg", "urn"], "nope", "not a function URN"),
    (["sink", "sink_fg", "invoke_type"], "LATER", "invoke_type"),
    (["option", "thread_num"], 0, "thread_num"),
    (["option", "batch_window", "count"], 10001, "count"),
    (["option", "batch_window", "interval"], 16, "interval"),
    (["rule_config", "transform"], {"type": "CONSTANT", "value": "not json"}, "constant must be JSON"),
    (["rule_config", "transform"], {"type": "VARIABLE", "value": "{\"HC.x\":\"$.a\"}", "template": "x"}, "variable name"),
    (["rule_config", "transform"], {"type": "OTHER"}, "unknown transform type"),
    (["rule_config", "filter"], {"time": [{"op": "IsNull"}]}, "top-level key"),
    (["rule_config", "filter"], {"subject": [{"op": "Fuzzy", "values": ["x"]}]}, "unknown operator"),
    (["rule_config", "filter"], {"source": [{"op": "StringEndsWith", "values": ["x"]}]}, "source accepts only StringIn"),
    (["rule_config", "filter"], {"data": {"a": {"b": {"c": {"d": {"e": {"f": [{"op": "IsNull"}]}}}}}}}, "deeper"),
    (["rule_config", "filter"], {"data": {"f%d" % i: [{"op": "IsNull"}] for i in range(6)}}, "at most 5"),
    (["rule_config", "filter"], {"subject": [{"op": "IsNull"}] * 6}, "conditions"),
])
def test_validation(fgs, path, value, details):
    body = copy.deepcopy(stream())
    set_path(body, path, value)
    eg_error(eg(fgs, "POST", json=body), 400, "EG.00014000", details)


def test_malformed_body(fgs):
    r = eg(fgs, "POST", data="{nope", headers={"Content-Type": "application/json"})
    eg_error(r, 400, "EG.00014000", "not valid JSON")


def create_connection(host, **over):
    body = {"name": unique("conn"), "description": "the output cluster", "type": "KAFKA",
            "kafka_detail": {"addr": "127.0.0.1:9092", "acks": "1"}}
    body.update(over)
    return eg(host, "POST", json=body, base="/connections")


def test_kafka_sink_accepts_both_spellings(fgs):
    conn = create_connection(fgs).json()["id"]
    for sink in [{"topic": "out", "connectionId": conn, "keyTransform": [{"type": "CONSTANT", "value": "k"}]},
                 {"topic": "out", "connection_id": conn, "key_transform": {"type": "ORIGINAL"}}]:
        r = eg(fgs, "POST", json=stream(sink={"name": "HC.Kafka", "sink_kafka": sink}))
        assert r.status_code == 200, r.text
        shown = eg(fgs, "GET", "/" + r.json()["eventStreamingID"]).json()
        assert shown["sink"]["sink_kafka"]["connectionId"] == conn


def test_kafka_sink_needs_an_existing_connection(fgs):
    for sink, details in [({"topic": "out"}, "connectionId"),
                          ({"topic": "out", "connectionId": "nope"}, "does not exist")]:
        r = eg(fgs, "POST", json=stream(sink={"name": "HC.Kafka", "sink_kafka": sink}))
        eg_error(r, 400, "EG.00014000", details)


def test_connections_lifecycle(fgs):
    r = create_connection(fgs, kafka_detail={"addr": "127.0.0.1:9092", "enable_sasl_ssl": True,
                                             "sasl_mechanism": "SCRAM-SHA-512", "user_name": "u", "password": "secret"})
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["status"] == "ACTIVE" and created["type"] == "KAFKA" and created["id"]
    assert created["kafka_detail"]["user_name"] == "u" and "password" not in created["kafka_detail"]
    assert created["kafka_detail"]["acks"] == "all", "acks defaults to all"
    cid = created["id"]
    shown = eg(fgs, "GET", "/" + cid, base="/connections").json()
    assert shown == created
    listed = eg(fgs, "GET", base="/connections", params={"limit": 1000}).json()
    assert listed["total"] >= 1 and cid in [c["id"] for c in listed["items"]] and listed["size"] == len(listed["items"])
    assert "secret" not in json.dumps(listed)
    eg_error(create_connection(fgs, name=created["name"]), 400, "EG.00014000", "already exists")
    sid = eg(fgs, "POST", json=stream(sink={"name": "HC.Kafka", "sink_kafka": {"topic": "out", "connectionId": cid}})).json()["eventStreamingID"]
    eg_error(eg(fgs, "DELETE", "/" + cid, base="/connections"), 400, "EG.00014000", sid)
    assert eg(fgs, "DELETE", "/" + sid).status_code == 204
    assert eg(fgs, "DELETE", "/" + cid, base="/connections").status_code == 204
    eg_error(eg(fgs, "GET", "/" + cid, base="/connections"), 404, "EG.00014040", cid)
    eg_error(eg(fgs, "DELETE", "/" + cid, base="/connections"), 404, "EG.00014040", cid)


@pytest.mark.parametrize("over, details", [
    ({"name": "default"}, "name"),
    ({"name": "-bad"}, "name"),
    ({"name": "x" * 129}, "name"),
    ({"description": "d" * 256}, "description"),
    ({"type": "WEBHOOK"}, "type"),
    ({"kafka_detail": None}, "kafka_detail"),
    ({"kafka_detail": {"acks": "1"}}, "addr"),
    ({"kafka_detail": {"addr": "h:1", "acks": "2"}}, "acks"),
    ({"kafka_detail": {"addr": "h:1", "enable_sasl_ssl": True, "user_name": "u"}}, "password"),
    ({"kafka_detail": {"addr": "h:1", "enable_sasl_ssl": True, "sasl_mechanism": "GSSAPI", "user_name": "u", "password": "p"}}, "sasl_mechanism"),
])
def test_connection_validation(fgs, over, details):
    eg_error(create_connection(fgs, **over), 400, "EG.00014000", details)
    eg_error(eg(fgs, "GET", base="/connections", params={"limit": 0}), 400, "EG.00014000", "limit")


def test_the_examples_are_valid(fgs):
    examples = os.path.join(EXAMPLES, "streams")
    with open(os.path.join(examples, "connection.json")) as f:
        conn = eg(fgs, "POST", base="/connections", json=dict(json.load(f), name=unique("audit")))
    assert conn.status_code == 200, conn.text
    for name in ("kafka-to-function.json", "kafka-to-kafka.json"):
        with open(os.path.join(examples, name)) as f:
            body = json.loads(f.read().replace("CONNECTION_ID", conn.json()["id"]))
        body["name"] = unique("example")
        r = eg(fgs, "POST", json=body)
        assert r.status_code == 200, (name, r.text)
        shown = eg(fgs, "GET", "/" + r.json()["eventStreamingID"]).json()
        assert shown["option"]["batch_window"]["count"] == body["option"]["batch_window"]["count"]


def test_streams_and_connections_are_bounded_per_project(fgs):
    """100 event streams and 100 connections a project (as channels, subscriptions and sources
    are); one more is 400 EG.00014000 and is not stored; a deleted one frees its place."""
    project = "2b3c4d5e6f708192a3b4c5d6e7f80112"
    for base, body in [("/eventstreamings", lambda i: stream(name="s-%d" % i)),
                       ("/connections", lambda i: {"name": "c-%d" % i, "type": "KAFKA",
                                                   "kafka_detail": {"addr": "127.0.0.1:9092"}})]:
        ids = []
        for i in range(100):
            r = eg(fgs, "POST", json=body(i), project=project, base=base)
            assert r.status_code == 200, r.text
            ids.append(r.json().get("eventStreamingID") or r.json().get("id"))
        full = eg(fgs, "POST", json=body(100), project=project, base=base)
        eg_error(full, 400, "EG.00014000", "100")
        listed = eg(fgs, "GET", project=project, base=base, params={"limit": 1000}).json()
        assert listed["total"] == 100 and body(100)["name"] not in [x["name"] for x in listed["items"]]
        assert eg(fgs, "DELETE", "/" + ids[0], project=project, base=base).status_code == 204
        assert eg(fgs, "POST", json=body(100), project=project, base=base).status_code == 200
    other = eg(fgs, "POST", json=stream(), project="3c4d5e6f708192a3b4c5d6e7f8011223")
    assert other.status_code == 200, "another project has its own 100"
