"""Event streams end to end: a real Kafka-compatible broker (tansu, memory storage), fgs
consuming it, and FunctionGraph functions receiving the events."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from conftest import PROJECT, b64, free_port, python_fn, unique
from test_eventstream_api import eg

TANSU = os.environ.get("TANSU_BIN") or shutil.which("tansu")


def start_broker(addr):
    """tansu on `addr` with memory storage, ready for clients."""
    if not TANSU:
        pytest.fail("tansu not found: scripts/test.sh installs it (set TANSU_BIN)")
    broker = subprocess.Popen(
        [TANSU, "broker", "--listener-url", "tcp://" + addr, "--advertised-listener-url", "tcp://" + addr,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            KafkaAdminClient(bootstrap_servers=addr).close()
            return broker
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def stop_broker(broker):
    broker.send_signal(signal.SIGTERM)
    broker.wait(timeout=10)


@pytest.fixture
def kafka():
    addr = "127.0.0.1:%d" % free_port()
    broker = start_broker(addr)
    yield addr
    stop_broker(broker)


def topic(addr, partitions=1):
    name = unique("topic")
    admin = KafkaAdminClient(bootstrap_servers=addr)
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    admin.close()
    return name


def producer_for(addr):
    """A producer writing one record per record batch: tansu 0.6.0 answers a fetch from an offset
    inside a batch with nothing (fixed upstream in its successor nisshi, 87db6ea, whose releases
    need a newer rustc than this machine's), and a stream resuming from a committed offset
    fetches from exactly there."""
    return KafkaProducer(bootstrap_servers=addr, batch_size=1)


def produce(addr, name, values, key=None, partition=None):
    producer = producer_for(addr)
    for v in values:
        payload = v if isinstance(v, bytes) else json.dumps(v).encode()
        producer.send(name, key=key.encode() if key else None, value=payload, partition=partition)
    producer.flush()
    producer.close()


COLLECTOR = """
received = []
def handler(event, context):
    if isinstance(event, dict) and event.get("dump"):
        return received
    if isinstance(event, dict) and event.get("data", {}).get("value", {}) == {"fail": True}:
        raise RuntimeError("refused")
    received.append(event)
    return "ok"
"""


def collector(host, source=COLLECTOR):
    fn = host.create(**python_fn(unique("sink"), source, timeout=10))
    assert host.api("PUT", "/functions/%s/config-max-instance" % fn["func_name"], json={"max_instance_num": 1}).status_code == 200
    return fn


def received(host, fn):
    for _ in range(100):
        r = host.invoke(fn["func_urn"], {"dump": True})
        if r.status_code == 200:
            return json.loads(r.json()["result"])
        time.sleep(0.05)
    raise AssertionError("collector unavailable")


def wait_for(check, within=30, what="condition"):
    deadline = time.time() + within
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s" % what)


def create_stream(host, addr, name, fn, **over):
    body = {
        "name": unique("s"),
        "source": {"name": "HC.Kafka", "source_kafka": {"addr": addr, "group": unique("g"), "topic": name,
                                                        "seek_to": "earliest"}},
        "sink": {"name": "HC.FunctionGraph", "sink_fg": {"urn": fn["func_urn"], "invoke_type": "SYNC"}},
        "option": {"batch_window": {"count": 1, "interval": 0}},
    }
    body.update(over)
    r = eg(host, "POST", json=body)
    assert r.status_code == 200, r.text
    return r.json()["eventStreamingID"]


def operate(host, sid, op):
    r = eg(host, "POST", "/operate/" + sid, json={"operation": op})
    assert r.status_code == 200 and r.json() == {"eventStreamingID": sid}, r.text


def status(host, sid):
    return eg(host, "GET", "/" + sid).json()["status"]


def values(events):
    return [e["data"]["value"] for e in events]


def test_delivers_envelopes_and_commits_offsets(fgs, kafka):
    name = topic(kafka)
    produce(kafka, name, [{"n": i} for i in range(5)], key="k")
    fn = collector(fgs)
    sid = create_stream(fgs, kafka, name, fn)
    assert status(fgs, sid) == "CREATED"
    operate(fgs, sid, "START")
    assert status(fgs, sid) == "RUNNING"
    events = wait_for(lambda: len(received(fgs, fn)) >= 5 and received(fgs, fn), what="5 events")
    assert values(events) == [{"n": i} for i in range(5)]
    first = events[0]
    assert first["specversion"] == "1.0" and first["source"] == "HC.Kafka" and first["type"] == "kafka:message"
    assert first["id"] == "%s-0-0" % name and first["subject"] == name and first["time"].endswith("Z")
    assert first["data"]["topic"] == name and first["data"]["partition"] == 0 and first["data"]["offset"] == 0
    assert first["data"]["key"] == "k" and first["data"]["timestamp"] > 0
    operate(fgs, sid, "PAUSE")
    assert status(fgs, sid) == "STOPPED"
    produce(kafka, name, [{"n": 5}, {"n": 6}], key="k")
    time.sleep(1)
    assert len(received(fgs, fn)) == 5, "a paused stream delivers nothing"
    operate(fgs, sid, "START")
    events = wait_for(lambda: len(received(fgs, fn)) >= 7 and received(fgs, fn), what="7 events")
    assert values(events) == [{"n": i} for i in range(7)], "committed offsets are not delivered again"
    # An update stops a running stream until it is started again.
    shown = eg(fgs, "GET", "/" + sid).json()
    update = {k: shown[k] for k in ["name", "description", "source", "sink", "rule_config", "option"]}
    assert eg(fgs, "PUT", "/" + sid, json=update).status_code == 200
    assert status(fgs, sid) == "STOPPED"
    produce(kafka, name, [{"n": 7}], key="k")
    time.sleep(1)
    assert len(received(fgs, fn)) == 7
    operate(fgs, sid, "START")
    assert values(wait_for(lambda: len(received(fgs, fn)) >= 8 and received(fgs, fn)))[-1] == {"n": 7}
    # Deleting a running stream stops it.
    assert eg(fgs, "DELETE", "/" + sid).status_code == 204
    produce(kafka, name, [{"n": 8}], key="k")
    time.sleep(1.5)
    assert len(received(fgs, fn)) == 8, "a deleted stream delivers nothing"


def test_seek_to_latest_skips_older_records(fgs, kafka):
    name = topic(kafka)
    produce(kafka, name, [{"old": i} for i in range(3)])
    fn = collector(fgs)
    sid = create_stream(fgs, kafka, name, fn, source={"name": "HC.Kafka", "source_kafka": {
        "addr": kafka, "group": unique("g"), "topic": name, "seek_to": "latest"}})
    operate(fgs, sid, "START")

    def probe():
        produce(kafka, name, [{"probe": True}])
        return any(v == {"probe": True} for v in values(received(fgs, fn)))

    wait_for(probe, what="the stream to consume")
    assert all("old" not in v for v in values(received(fgs, fn)))


def test_filter_and_variable_transform(fgs, kafka):
    name = topic(kafka)
    fn = collector(fgs)
    sid = create_stream(fgs, kafka, name, fn, rule_config={
        "filter": {"data": {"value": {"amount": [{"op": "NumberGreaterThan", "value": 10}]}}},
        "transform": {"type": "VARIABLE", "value": json.dumps({"amount": "$.data.value.amount", "who": "$.data.value.who"}),
                      "template": "{\"big\": ${amount}, \"customer\": \"${who}\"}"}})
    produce(kafka, name, [{"amount": 5, "who": "a"}, {"amount": 50, "who": "b"}, {"amount": 7, "who": "c"},
                          {"amount": 70, "who": "d"}])
    operate(fgs, sid, "START")
    got = wait_for(lambda: len(received(fgs, fn)) >= 2 and received(fgs, fn), what="2 events")
    time.sleep(0.5)
    assert received(fgs, fn) == [{"big": 50, "customer": "b"}, {"big": 70, "customer": "d"}]
    text = fgs.http.get(fgs.url + "/metrics").text
    for name, value in [("consumed", 4), ("filtered_out", 2), ("delivered", 2)]:
        assert 'fgs_stream_%s_total{stream="%s"} %d' % (name, sid, value) in text, name


def test_constant_transform(fgs, kafka):
    name = topic(kafka)
    fn = collector(fgs)
    sid = create_stream(fgs, kafka, name, fn, rule_config={"transform": {"type": "CONSTANT", "value": "{\"ping\": 1}"}})
    produce(kafka, name, [{"x": 1}, {"x": 2}])
    operate(fgs, sid, "START")
    assert wait_for(lambda: len(received(fgs, fn)) >= 2 and received(fgs, fn)) == [{"ping": 1}, {"ping": 1}]


def test_batches_by_count_and_interval(fgs, kafka):
    name = topic(kafka)
    fn = collector(fgs)
    produce(kafka, name, [{"n": i} for i in range(7)])
    sid = create_stream(fgs, kafka, name, fn, option={"batch_window": {"count": 3, "interval": 1}})
    operate(fgs, sid, "START")
    batches = wait_for(lambda: sum(len(b) for b in received(fgs, fn)) >= 7 and received(fgs, fn), what="7 events")
    assert all(isinstance(b, list) for b in batches)
    assert [len(b) for b in batches] == [3, 3, 1], "full batches, then the rest when the interval ends"
    assert [e["data"]["value"]["n"] for b in batches for e in b] == list(range(7))


def test_per_partition_order(fgs, kafka):
    name = topic(kafka, partitions=3)
    fn = collector(fgs)
    for p in range(3):
        produce(kafka, name, [{"p": p, "i": i} for i in range(10)], partition=p)
    sid = create_stream(fgs, kafka, name, fn, option={"batch_window": {"count": 4, "interval": 1}})
    operate(fgs, sid, "START")
    batches = wait_for(lambda: sum(len(b) for b in received(fgs, fn)) >= 30 and received(fgs, fn), what="30 events")
    events = [e for b in batches for e in b]
    for p in range(3):
        assert [e["data"]["value"]["i"] for e in events if e["data"]["partition"] == p] == list(range(10))


def test_async_sink(fgs, kafka):
    name = topic(kafka)
    fn = collector(fgs)
    sid = create_stream(fgs, kafka, name, fn, sink={"name": "HC.FunctionGraph",
                                                    "sink_fg": {"urn": fn["func_urn"], "invoke_type": "ASYNC"}})
    produce(kafka, name, [{"n": 1}, {"n": 2}])
    operate(fgs, sid, "START")
    assert values(wait_for(lambda: len(received(fgs, fn)) >= 2 and received(fgs, fn))) == [{"n": 1}, {"n": 2}]
    recs = fgs.api("GET", "/functions/%s/async-invocations" % fn["func_urn"]).json()
    assert recs["count"] == 2 and {i["status"] for i in recs["invocations"]} == {"SUCCESS"}


def test_failed_delivery_retries_then_errors_without_committing(fresh_fgs, kafka):
    host = fresh_fgs("--async-retry-delay", "50ms")
    name = topic(kafka)
    fn = collector(host)
    produce(kafka, name, [{"n": 1}, {"fail": True}, {"n": 3}])
    sid = create_stream(host, kafka, name, fn, option={"batch_window": {"count": 1, "time": 2, "interval": 0}})
    operate(host, sid, "START")
    wait_for(lambda: status(host, sid) == "ERROR", what="the stream to fail")
    assert values(received(host, fn)) == [{"n": 1}], "nothing after the failing record is delivered"
    text = host.http.get(host.url + "/metrics").text
    assert 'fgs_invocations_total{code="4002",function="%s"} 3' % fn["func_urn"] in text, "the attempt and 2 retries"
    assert 'fgs_stream_failed_total{stream="%s"} 3' % sid in text
    assert 'fgs_stream_retries_total{stream="%s"} 2' % sid in text
    assert 'fgs_stream_delivered_total{stream="%s"} 1' % sid in text
    time.sleep(1)
    assert values(received(host, fn)) == [{"n": 1}], "an errored stream stays stopped"
    accepting = COLLECTOR.replace('raise RuntimeError("refused")', "pass")
    r = host.api("PUT", "/functions/%s/code" % fn["func_urn"], json={"code_type": "inline", "func_code": {"file": b64(accepting)}})
    assert r.status_code == 200, r.text
    operate(host, sid, "START")
    redelivered = wait_for(lambda: len(received(host, fn)) >= 2 and received(host, fn), what="the failed record again")
    assert values(redelivered) == [{"fail": True}, {"n": 3}], "START again resumes at the failed record"


def test_running_streams_resume_after_restart(fresh_fgs, kafka):
    host = fresh_fgs()
    name = topic(kafka)
    fn = collector(host)
    sid = create_stream(host, kafka, name, fn)
    operate(host, sid, "START")
    produce(kafka, name, [{"n": 1}])
    wait_for(lambda: received(host, fn), what="the first event")
    host.stop()
    again = fresh_fgs(data_dir=host.data_dir)
    assert status(again, sid) == "RUNNING"
    produce(kafka, name, [{"n": 2}])
    assert values(wait_for(lambda: received(again, fn), what="an event after the restart")) == [{"n": 2}]


def test_unreachable_broker_is_an_error_state(fgs):
    fn = collector(fgs)
    sid = create_stream(fgs, "127.0.0.1:1", "nowhere", fn)
    operate(fgs, sid, "START")
    wait_for(lambda: status(fgs, sid) == "ERROR", within=30, what="ERROR")
    operate(fgs, sid, "PAUSE")
    assert status(fgs, sid) == "STOPPED"


def test_a_stream_recovers_when_its_broker_comes_up(fgs):
    addr = "127.0.0.1:%d" % free_port()
    fn = collector(fgs)
    sid = create_stream(fgs, addr, "late", fn)
    operate(fgs, sid, "START")
    wait_for(lambda: status(fgs, sid) == "ERROR", what="ERROR while nothing listens")
    broker = start_broker(addr)
    try:
        admin = KafkaAdminClient(bootstrap_servers=addr)
        admin.create_topics([NewTopic("late", num_partitions=1, replication_factor=1)])
        admin.close()
        produce(addr, "late", [{"n": 1}])
        assert values(wait_for(lambda: received(fgs, fn), within=60, what="delivery once the broker is up")) == [{"n": 1}]
        assert status(fgs, sid) == "RUNNING"
    finally:
        stop_broker(broker)


def test_operate_errors(fgs):
    fn = collector(fgs)
    sid = create_stream(fgs, "127.0.0.1:1", "nowhere", fn)
    r = eg(fgs, "POST", "/operate/" + sid, json={"operation": "RESTART"})
    assert r.status_code == 400 and r.json()["error_code"] == "EG.00014000"
    r = eg(fgs, "POST", "/operate/nope", json={"operation": "START"})
    assert r.status_code == 404 and r.json()["error_code"] == "EG.00014040"
