"""FunctionGraph's DIS trigger on this host's DIS streams: created through the official SDK,
the documented event, every record of a partition delivered in order, across kill -9 of the
host, its position kept as a DIS checkpoint, DISABLED and LATEST, the refusals' codes."""

import base64
import json
import signal
import time

from huaweicloudsdkdis.v2 import ListAppRequest, ShowConsumerStateRequest
from huaweicloudsdkfunctiongraph.v2 import (
    CreateFunctionTriggerRequest,
    CreateFunctionTriggerRequestBody,
    TriggerEventDataRequestBody,
    UpdateTriggerRequest,
    UpdateTriggerRequestBody,
)

from conftest import python_fn, unique
from test_dis import b64, create_stream, dis_client, put
from test_eventstream import wait_for
from test_kafka_trigger import kafka_events, refused, reporter
from test_logs import logs
from test_sdk_compat import sdk_client


def dis_trigger(client, urn, **data):
    settings = dict(polling_interval=1, batch_size=50)
    settings.update(data)
    return client.create_function_trigger(CreateFunctionTriggerRequest(
        function_urn=urn, body=CreateFunctionTriggerRequestBody(
            trigger_type_code="DIS", trigger_status="ACTIVE",
            event_data=TriggerEventDataRequestBody(**settings))))


def delivered(witness):
    """(partition, sequence number, data) of every record delivered, in delivery order."""
    return [(e["ShardID"], int(r["sequence_number"]), base64.b64decode(r["data"]))
            for e in kafka_events(witness) for r in e["Message"]["records"]]


def in_order_once_each(records, partition, count):
    """A partition's records as delivered: 0..count-1 in order, a batch at most delivered
    again once right after a restart (seen as sequence numbers going back)."""
    seqs = [s for p, s, _ in records if p == partition]
    assert sorted(set(seqs)) == list(range(count)), (partition, len(set(seqs)))
    backs = [i for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]]
    assert len(backs) <= 1, backs
    if backs:
        i = backs[0]
        assert seqs[i:] == list(range(seqs[i], count)) and seqs[:i] == list(range(i))
    return len(seqs) - count


def test_a_dis_trigger_delivers_every_record_of_a_partition_in_order_across_a_restart(fresh_fgs, witness):
    host = fresh_fgs()
    dis, fg = dis_client(host), sdk_client(host, "fake-ak", "fake-sk")
    stream = create_stream(dis, partitions=2)
    put(dis, stream, *({"data": b64(b"a-%d" % i), "partition_id": "0", "partition_key": "k%d" % i}
                       for i in range(300)))
    put(dis, stream, *({"data": b64(b"b-%d" % i), "partition_id": "1"} for i in range(120)))
    urn = host.create(**python_fn(unique("dt"), reporter(witness, sleep=0.05)))["func_urn"][: -len(":latest")]
    created = dis_trigger(fg, urn, stream_name=stream, sharditerator_type="TRIM_HORIZON", max_fetch_bytes=1024 * 1024)
    assert created.trigger_type_code == "DIS" and created.trigger_status == "ACTIVE"
    assert (created.event_data.stream_name, created.event_data.batch_size, created.event_data.is_serial) == \
        (stream, 50, "true")
    wait_for(lambda: len(delivered(witness)) >= 420, what="the first 420 records")

    events = kafka_events(witness)
    first = events[0]
    assert set(first) == {"ShardID", "Message", "Tag", "StreamName"}
    assert (first["StreamName"], first["Tag"]) == (stream, "latest")
    assert len(first["Message"]["records"]) == 50 and first["Message"]["next_partition_cursor"]
    record = first["Message"]["records"][0]
    assert set(record) >= {"partition_key", "data", "sequence_number", "timestamp", "timestamp_type"}

    # More records while the function runs; the host killed mid-way and started again.
    put(dis, stream, *({"data": b64(b"a-%d" % i), "partition_id": "0"} for i in range(300, 500)))
    wait_for(lambda: len(delivered(witness)) >= 470, what="deliveries after the second put")
    host.proc.send_signal(signal.SIGKILL)
    host.proc.wait()
    host.log.close()
    host.start()
    dis = dis_client(host)
    wait_for(lambda: len({(p, s) for p, s, _ in delivered(witness)}) == 620, within=60,
             what="every record after the restart")
    time.sleep(1.5)
    records = delivered(witness)
    extra = in_order_once_each(records, "shardId-0000000000", 500)
    extra += in_order_once_each(records, "shardId-0000000001", 120)
    assert extra <= 50, "at most one batch delivered again"
    for p, s, data in records:
        assert data == (b"a-%d" % s if p.endswith("0") else b"b-%d" % s)

    # The position is the checkpoint of the trigger's DIS app.
    app = "fgs-trigger-%s" % created.trigger_id
    assert app in [a.app_name for a in dis.list_app(ListAppRequest()).apps]
    state = dis.show_consumer_state(ShowConsumerStateRequest(app_name=app, stream_name=stream))
    assert [(s.sequence_number, s.latest_offset) for s in state.partition_consuming_states] == \
        [("500", 500), ("120", 120)]


def test_a_disabled_dis_trigger_waits_and_latest_skips_what_came_before(fresh_fgs, witness):
    host = fresh_fgs()
    dis, fg = dis_client(host), sdk_client(host, "fake-ak", "fake-sk")
    stream = create_stream(dis)
    put(dis, stream, *({"data": b64(b"old-%d" % i)} for i in range(10)))
    urn = host.create(**python_fn(unique("dl"), reporter(witness)))["func_urn"][: -len(":latest")]
    created = dis_trigger(fg, urn, stream_name=stream, sharditerator_type="LATEST", batch_size=100)
    time.sleep(2)  # the trigger looks once: its position is the end
    put(dis, stream, *({"data": b64(b"new-%d" % i)} for i in range(5)))
    wait_for(lambda: len(delivered(witness)) == 5, what="the new records")
    assert [d for _, _, d in delivered(witness)] == [b"new-%d" % i for i in range(5)]
    # A trigger's invocations are in the function's logs like any other.
    triggered = logs(host, urn)["logs"]
    assert triggered and {(l["invoke_type"], l["status"]) for l in triggered} == {("sync", "success")}

    fg.update_trigger(UpdateTriggerRequest(
        function_urn=urn, trigger_type_code="DIS", trigger_id=created.trigger_id,
        body=UpdateTriggerRequestBody(trigger_status="DISABLED")))
    put(dis, stream, *({"data": b64(b"later-%d" % i)} for i in range(3)))
    time.sleep(2.5)
    assert len(delivered(witness)) == 5, "a DISABLED trigger delivers nothing"
    fg.update_trigger(UpdateTriggerRequest(
        function_urn=urn, trigger_type_code="DIS", trigger_id=created.trigger_id,
        body=UpdateTriggerRequestBody(trigger_status="ACTIVE")))
    wait_for(lambda: len(delivered(witness)) == 8, what="the records sent while DISABLED")

    # Deleting the trigger deletes its DIS app.
    r = host.api("DELETE", "/triggers/%s/DIS/%s" % (urn, created.trigger_id))
    assert r.status_code == 204, r.text
    assert "fgs-trigger-%s" % created.trigger_id not in [a.app_name for a in dis.list_app(ListAppRequest()).apps]


def test_bad_dis_triggers_are_refused(fgs):
    urn = fgs.create(**python_fn(unique("db"), "def handler(e, c):\n    return 1\n"))["func_urn"][: -len(":latest")]
    post = lambda data: fgs.api("POST", "/triggers/%s" % urn, json={
        "trigger_type_code": "DIS", "trigger_status": "ACTIVE", "event_data": data})
    for data in ({}, {"stream_name": "bad name"}, {"stream_name": "s", "batch_size": 0},
                 {"stream_name": "s", "batch_size": 10001}, {"stream_name": "s", "polling_interval": 61},
                 {"stream_name": "s", "sharditerator_type": "AT_TIMESTAMP"},
                 {"stream_name": "s", "max_fetch_bytes": 1023}, {"stream_name": "s", "topic_ids": ["t"]},
                 {"stream_name": "s", "is_serial": "maybe"}):
        r = post(data)
        refused(r, 400, "FSS.1103")
        assert json.loads(r.text)["error_msg"].startswith("Invalid DIS trigger parameters."), r.text
