"""Kafka triggers (KAFKA and OPENSOURCEKAFKA) against a real broker (tansu): the official SDK's
trigger calls, the documented Kafka event, batch_size, DISABLED and ACTIVE resuming from the
committed offsets, the password sealed and never answered, the refusals' codes, and no record
lost when the host is killed with kill -9 mid-way."""

import json
import signal
import time

from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionTriggerRequest,
    CreateFunctionTriggerRequestBody,
    ShowFunctionTriggerRequest,
    TriggerEventDataRequestBody,
    UpdateTriggerRequest,
    UpdateTriggerRequestBody,
)

from conftest import python_fn, report, store_sql, unique
from test_eventstream import kafka, produce, producer_for, topic, wait_for  # noqa: F401 (fixture)
from test_sdk_compat import sdk_client


def reporter(witness, sleep=0.0):
    """Reports every event it is given (as JSON text) to the witness, then sleeps."""
    return """import json, time, urllib.request
def handler(event, context):
    body = json.dumps([[json.dumps(event, sort_keys=True)]]).encode()
    urllib.request.urlopen(urllib.request.Request("%s/events", data=body)).read()
    time.sleep(%f)
    return "ok"
""" % (witness.url, sleep)


def kafka_events(witness):
    with witness.lock:
        return [json.loads(e[0]) for e in witness.events]


def messages(events):
    return [m for e in events for r in e["records"] for m in r["messages"]]


def refused(r, status, code):
    assert (r.status_code, r.json().get("error_code")) == (status, code), r.text


def test_kafka_trigger_through_the_sdk_delivers_the_documented_event(fresh_fgs, kafka, witness):
    host = fresh_fgs()
    client = sdk_client(host, "fake-ak", "fake-sk")
    first, second = topic(kafka), topic(kafka)
    urn = host.create(**python_fn(unique("kt"), reporter(witness)))["func_urn"][: -len(":latest")]
    # One instance: the batches, submitted in order, also run in order (with more, a batch can
    # overtake the one before it on another instance; async invocation promises no order).
    r = host.api("PUT", "/functions/%s/config-max-instance" % urn, json={"max_instance_num": 1})
    assert r.status_code == 200, r.text
    created = client.create_function_trigger(CreateFunctionTriggerRequest(
        function_urn=urn, body=CreateFunctionTriggerRequestBody(
            trigger_type_code="KAFKA",
            event_data=TriggerEventDataRequestBody(
                instance_id="kafka-instance-1", topic_ids=[first, second], batch_size=5,
                kafka_connect_address=kafka, kafka_ssl_enable=False,
                kafka_user="alice", kafka_password="s3cret-kafka-pw"))))
    # Kafka triggers are created DISABLED unless asked otherwise, as FunctionGraph's are.
    assert created.trigger_status == "DISABLED" and created.trigger_type_code == "KAFKA"
    assert created.event_data.topic_ids == [first, second] and created.event_data.batch_size == 5
    assert created.event_data.kafka_password is None
    raw = host.api("GET", "/triggers/%s/KAFKA/%s" % (urn, created.trigger_id)).text
    assert "s3cret-kafka-pw" not in raw and "kafka_password" not in raw
    rows = " ".join(r[0] for r in store_sql(host.data_dir, "SELECT record FROM triggers"))
    assert "s3cret-kafka-pw" not in rows and created.trigger_id in rows

    produce(kafka, first, [b"one-%d" % i for i in range(8)])
    produce(kafka, second, [b"two-%d" % i for i in range(4)])
    time.sleep(2)
    assert kafka_events(witness) == [], "a DISABLED trigger consumes nothing"
    client.update_trigger(UpdateTriggerRequest(
        function_urn=urn, trigger_type_code="KAFKA", trigger_id=created.trigger_id,
        body=UpdateTriggerRequestBody(trigger_status="ACTIVE")))
    wait_for(lambda: len(messages(kafka_events(witness))) == 12, what="12 messages")
    events = kafka_events(witness)
    for e in events:
        assert set(e) == {"event_version", "event_time", "trigger_type", "region", "instance_id", "records"}
        assert e["event_version"] == "v1.0" and e["trigger_type"] == "KAFKA"
        assert e["region"] == "cn-north-4" and e["instance_id"] == "kafka-instance-1"
        assert isinstance(e["event_time"], int) and abs(e["event_time"] - time.time()) < 60
        assert 1 <= len(messages([e])) <= 5, "batches of at most batch_size"
        for r in e["records"]:
            assert set(r) == {"messages", "topic_id"} and r["topic_id"] in (first, second)
            assert all(m.startswith("one-" if r["topic_id"] == first else "two-") for m in r["messages"])
    got = messages(events)
    assert sorted(got) == sorted(["one-%d" % i for i in range(8)] + ["two-%d" % i for i in range(4)])
    assert [m for m in got if m.startswith("one-")] == ["one-%d" % i for i in range(8)], "in order"

    # DISABLED stops consuming; ACTIVE resumes from the committed offsets (nothing again).
    client.update_trigger(UpdateTriggerRequest(
        function_urn=urn, trigger_type_code="KAFKA", trigger_id=created.trigger_id,
        body=UpdateTriggerRequestBody(trigger_status="DISABLED")))
    produce(kafka, first, [b"later-%d" % i for i in range(3)])
    time.sleep(3)
    assert len(messages(kafka_events(witness))) == 12
    host.stop()
    host.start()  # the status survives a restart
    time.sleep(2)
    assert len(messages(kafka_events(witness))) == 12
    client = sdk_client(host, "fake-ak", "fake-sk")
    client.update_trigger(UpdateTriggerRequest(
        function_urn=urn, trigger_type_code="KAFKA", trigger_id=created.trigger_id,
        body=UpdateTriggerRequestBody(trigger_status="ACTIVE")))
    wait_for(lambda: len(messages(kafka_events(witness))) == 15, what="the 3 later messages")
    time.sleep(2)
    assert sorted(messages(kafka_events(witness))[12:]) == ["later-%d" % i for i in range(3)]
    shown = client.show_function_trigger(ShowFunctionTriggerRequest(
        function_urn=urn, trigger_type_code="KAFKA", trigger_id=created.trigger_id))
    assert shown.trigger_status == "ACTIVE"
    metrics = host.http.get(host.url + "/metrics").text
    assert 'fgs_trigger_records_total{trigger="%s"} 3' % created.trigger_id in metrics


def test_kafka_trigger_refusals(fgs):
    urn = fgs.create(**python_fn(unique("kt"), "def handler(e, c):\n    return 1\n"))["func_urn"][: -len(":latest")]
    post = lambda type_code, data: fgs.api("POST", "/triggers/%s" % urn, json={
        "trigger_type_code": type_code, "trigger_status": "ACTIVE", "event_data": data})
    good = {"kafka_connect_address": "127.0.0.1:9", "topic_ids": ["t1"], "batch_size": 10}
    for bad in ({"topic_ids": ["t1"]},
                dict(good, kafka_connect_address="no-port"),
                dict(good, topic_ids=[]),
                dict(good, topic_ids=["bad topic"]),
                dict(good, batch_size=0),
                dict(good, batch_size=1001),
                dict(good, kafka_ssl_enable="yes"),
                dict(good, schedule="1m")):
        for type_code in ("KAFKA", "OPENSOURCEKAFKA"):
            refused(post(type_code, bad), 400, "FSS.1112")
    refused(post("KAFKA", dict(good, kafka_ssl_enable=True, kafka_user="u")), 400, "FSS.1113")
    # An unreachable broker is no refusal: the trigger keeps trying and says why.
    r = post("OPENSOURCEKAFKA", good)
    assert r.status_code == 200 and r.json()["trigger_status"] == "ACTIVE", r.text
    show = "/triggers/%s/OPENSOURCEKAFKA/%s" % (urn, r.json()["trigger_id"])
    wait_for(lambda: "last_error" in fgs.api("GET", show).json(), what="the broker's failure shown")
    assert "Kafka" in fgs.api("GET", show).json()["last_error"]["message"]
    assert fgs.api("DELETE", show).status_code == 204


def test_10000_records_none_lost_across_kill_9(fresh_fgs, kafka, witness):
    total, batch_size = 10_000, 100
    name = topic(kafka, partitions=4)
    producer = producer_for(kafka)
    for i in range(total):
        producer.send(name, value=b"m%d" % i)
    producer.flush()
    producer.close()
    host = fresh_fgs()
    fn = python_fn(unique("kt"), reporter(witness, sleep=0.05), timeout=10)
    urn = host.create(**fn)["func_urn"][: -len(":latest")]
    r = host.api("POST", "/triggers/%s" % urn, json={
        "trigger_type_code": "OPENSOURCEKAFKA", "trigger_status": "ACTIVE",
        "event_data": {"kafka_connect_address": kafka, "topic_ids": [name], "batch_size": batch_size}})
    assert r.status_code == 200, r.text
    unique_messages = lambda: len(set(messages(kafka_events(witness))))
    wait_for(lambda: unique_messages() >= total // 3, within=120, what="a third of the records")
    host.stop(signal.SIGKILL)
    fresh_fgs(data_dir=host.data_dir)
    wait_for(lambda: unique_messages() == total, within=300, what="every record after the restart")
    time.sleep(2)  # anything still in flight lands before the count
    events = kafka_events(witness)
    got = messages(events)
    assert set(got) == {"m%d" % i for i in range(total)}, "every record delivered at least once"
    assert all(len(messages([e])) <= batch_size for e in events), "batches of at most batch_size"
    duplicates = len(got) - total
    print("kafka trigger: %d records, %d invocations, %d duplicates after kill -9" % (total, len(events), duplicates))
    report("kafka trigger: %d records in %d invocations (batch_size %d), none lost across kill -9, "
           "%d delivered twice" % (total, len(events), batch_size, duplicates))
