"""Event-stream delivery under load and failure, against a real broker (tansu): parallel
lanes (thread_num), the Kafka sink through a target connection, the lag metric, and the
no-loss guarantee when the sink fails at random and the host is killed."""

import collections
import json
import re
import signal
import time

from kafka import KafkaConsumer

from conftest import python_fn, report, unique
from test_eventstream import (create_stream, kafka, operate, produce, producer_for, status, topic,  # noqa: F401 (fixture)
                              wait_for)
from test_eventstream_api import eg


def stream_sink(witness, sleep=0.0, fail=0.0):
    """A sink function reporting to `witness`: takes an event or a batch, fails a `fail` share of
    calls at random (before reporting), reports each record as (partition, offset, key), then
    takes `sleep` seconds (a host killed meanwhile has not committed what was reported: it comes
    again, as a duplicate)."""
    return """
import json, random, time, urllib.request
URL = "%s"
def handler(event, context):
    events = event if isinstance(event, list) else [event]
    rid = context.getRequestID()
    urllib.request.urlopen(URL + "/enter/" + rid).read()
    try:
        if random.random() < %f:
            raise RuntimeError("random failure")
        body = json.dumps([[e["data"]["partition"], e["data"]["offset"], e["data"]["key"]] for e in events]).encode()
        urllib.request.urlopen(URL + "/events", data=body).read()
        time.sleep(%f)
    finally:
        urllib.request.urlopen(URL + "/exit/" + rid).read()
    return "ok"
""" % (witness.url, fail, sleep)


def first_delivery_order(events):
    """Per partition, the offsets in the order they were first delivered."""
    seen, order = set(), collections.defaultdict(list)
    for partition, offset, _ in events:
        if (partition, offset) not in seen:
            seen.add((partition, offset))
            order[partition].append(offset)
    return order


def metric(host, name, sid):
    text = host.http.get(host.url + "/metrics").text
    m = re.search(r'^%s\{stream="%s"\} (\d+)' % (name, sid), text, re.M)
    return int(m.group(1)) if m else None


def test_thread_num_runs_lanes_in_parallel_and_keeps_partition_order(fgs, kafka, witness):
    name = topic(kafka, partitions=4)
    for p in range(4):
        produce(kafka, name, [{"p": p, "i": i} for i in range(4)], partition=p)
    fn = fgs.create(**python_fn(unique("lanes"), stream_sink(witness, sleep=0.2), timeout=10))
    sequential = create_stream(fgs, kafka, name, fn, option={"thread_num": 1, "batch_window": {"count": 1}})
    operate(fgs, sequential, "START")
    wait_for(lambda: witness.unique() == 16, what="16 records through one lane")
    operate(fgs, sequential, "PAUSE")
    assert witness.peak == 1, "one lane delivers one batch at a time"
    witness.events.clear()
    witness.peak = 0
    parallel = create_stream(fgs, kafka, name, fn, option={"thread_num": 4, "batch_window": {"count": 1}})
    operate(fgs, parallel, "START")
    wait_for(lambda: witness.unique() == 16, what="16 records through four lanes")
    assert witness.peak >= 2, "lanes deliver side by side (peak %d)" % witness.peak
    order = first_delivery_order(witness.events)
    assert sorted(order) == [0, 1, 2, 3] and all(o == [0, 1, 2, 3] for o in order.values()), order


def test_lag_metric_follows_the_backlog(fgs, kafka, witness):
    name = topic(kafka)
    produce(kafka, name, [{"i": i} for i in range(20)])
    fn = fgs.create(**python_fn(unique("slow"), stream_sink(witness, sleep=0.3), timeout=10))
    sid = create_stream(fgs, kafka, name, fn)
    operate(fgs, sid, "START")
    peak = wait_for(lambda: (metric(fgs, "fgs_stream_lag", sid) or 0) >= 5 and metric(fgs, "fgs_stream_lag", sid),
                    what="a lag while the sink is slower than the source")
    assert peak <= 20
    wait_for(lambda: witness.unique() == 20, what="the backlog delivered")
    wait_for(lambda: metric(fgs, "fgs_stream_lag", sid) == 0, what="no lag once everything is committed")
    operate(fgs, sid, "PAUSE")
    assert metric(fgs, "fgs_stream_lag", sid) is None, "a stopped stream has no lag to report"
    assert metric(fgs, "fgs_stream_delivered_total", sid) == 20, "its counters stay"


def connection(host, kafka_addr, **detail):
    body = {"name": unique("conn"), "type": "KAFKA", "kafka_detail": dict({"addr": kafka_addr}, **detail)}
    r = eg(host, "POST", path="", json=body, base="/connections")
    assert r.status_code == 200, r.text
    return r.json()["id"]


def consume(addr, name, count, within=30):
    consumer = KafkaConsumer(name, bootstrap_servers=addr, auto_offset_reset="earliest",
                             group_id=unique("check"), consumer_timeout_ms=1000)
    got, deadline = [], time.time() + within
    while len(got) < count and time.time() < deadline:
        got.extend(consumer)
    consumer.close()
    return got


def test_kafka_sink_writes_transformed_events_with_keys(fgs, kafka):
    source, out_a, out_b = topic(kafka), topic(kafka), topic(kafka)
    produce(kafka, source, [{"n": 1}, {"n": 2}], key="src-key")
    conn = connection(fgs, kafka, acks="all")
    fn = {"func_urn": "unused"}
    variable_key = create_stream(fgs, kafka, source, fn, sink={"name": "HC.Kafka", "sink_kafka": {
        "topic": out_a, "connectionId": conn,
        "keyTransform": [{"type": "VARIABLE", "value": json.dumps({"n": "$.data.value.n"}), "template": "key-${n}"}]}})
    original_key = create_stream(fgs, kafka, source, fn, sink={"name": "HC.Kafka", "sink_kafka": {
        "topic": out_b, "connection_id": conn, "key_transform": {"type": "ORIGINAL"}}},
        rule_config={"transform": {"type": "CONSTANT", "value": "plain text, not JSON"}})
    operate(fgs, variable_key, "START")
    operate(fgs, original_key, "START")
    a = consume(kafka, out_a, 2)
    assert [(m.key, json.loads(m.value)["data"]["value"]) for m in a] == [(b"key-1", {"n": 1}), (b"key-2", {"n": 2})]
    assert json.loads(a[0].value)["specversion"] == "1.0"
    b = consume(kafka, out_b, 2)
    assert [(m.key, m.value) for m in b] == [(b"src-key", b"plain text, not JSON")] * 2


def test_kafka_sink_constant_key_and_no_key(fgs, kafka):
    source, out_c, out_d = topic(kafka), topic(kafka), topic(kafka)
    produce(kafka, source, [{"n": 1}], key="src-key")
    conn = connection(fgs, kafka)
    fn = {"func_urn": "unused"}
    constant_key = create_stream(fgs, kafka, source, fn, sink={"name": "HC.Kafka", "sink_kafka": {
        "topic": out_c, "connectionId": conn, "keyTransform": [{"type": "CONSTANT", "value": "fixed"}]}})
    no_key = create_stream(fgs, kafka, source, fn, sink={"name": "HC.Kafka", "sink_kafka": {
        "topic": out_d, "connectionId": conn, "keyTransform": [{"type": "NONE"}]}})
    operate(fgs, constant_key, "START")
    operate(fgs, no_key, "START")
    assert [m.key for m in consume(kafka, out_c, 1)] == [b"fixed"]
    assert [m.key for m in consume(kafka, out_d, 1)] == [None]


def test_kafka_sink_to_an_unreachable_broker_fails_the_stream(fgs, kafka):
    source = topic(kafka)
    produce(kafka, source, [{"n": 1}])
    conn = connection(fgs, "127.0.0.1:1")
    sid = create_stream(fgs, kafka, source, {"func_urn": "unused"},
                        sink={"name": "HC.Kafka", "sink_kafka": {"topic": "out", "connectionId": conn}},
                        option={"batch_window": {"count": 1, "time": 1}})
    operate(fgs, sid, "START")
    wait_for(lambda: status(fgs, sid) == "ERROR", within=90, what="the undeliverable batch to stop the stream")
    assert metric(fgs, "fgs_stream_delivered_total", sid) in (None, 0)


def test_nothing_is_lost_when_the_sink_fails_and_the_host_is_killed(fresh_fgs, kafka, witness):
    total = 10_000
    name = topic(kafka, partitions=4)
    producer = producer_for(kafka)
    for i in range(total):
        producer.send(name, key=b"k%d" % (i % 97), value=json.dumps({"i": i}).encode())
    producer.flush()
    producer.close()
    host = fresh_fgs("--async-retry-delay", "50ms")
    fn = host.create(**python_fn(unique("flaky"), stream_sink(witness, sleep=0.02, fail=0.2), timeout=10))
    sid = create_stream(host, kafka, name, fn, option={"thread_num": 2, "batch_window": {"count": 20, "interval": 1}})
    operate(host, sid, "START")
    wait_for(lambda: witness.unique() >= total // 3, within=120, what="a third of the records")
    host.stop(signal.SIGKILL)
    before_kill = witness.unique()
    again = fresh_fgs("--async-retry-delay", "50ms", data_dir=host.data_dir)
    wait_for(lambda: witness.unique() == total, within=300, what="every record after the restart")
    time.sleep(2)  # anything still in flight lands before the count
    with witness.lock:
        events = list(witness.events)
    assert len(set((p, o) for p, o, _ in events)) == total, "every record delivered at least once"
    order = first_delivery_order(events)
    for partition, offsets in order.items():
        assert offsets == sorted(offsets) == list(range(len(offsets))), "partition %d out of order" % partition
    keys = collections.defaultdict(set)
    for partition, _, key in events:
        keys[key].add(partition)
    assert all(len(p) == 1 for p in keys.values()), "a key stays on its partition"
    duplicates = len(events) - total
    assert status(again, sid) == "RUNNING"
    report("no-loss: %d records, 20%% of calls failing, host killed (kill -9) after %d: all delivered, "
           "per-partition order of first deliveries held, %d duplicates, %d function calls"
           % (total, before_kill, duplicates, witness.calls))
