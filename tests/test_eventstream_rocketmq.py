"""Event streams with RocketMQ sources, end to end: a real name server and broker (rocketmq-rust's
`rocketmq-namesrv-rust` and `rocketmq-broker-rust` 1.0.0, installed and cached by
scripts/test.sh), streams made with the official `huaweicloudsdkeg` SDK, messages sent with the
same client fgs consumes with (`eventstream/examples/rocketmq_produce.rs`), functions that report
what they were given to a witness."""

import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from huaweicloudsdkeg.v1 import (
    CreateEventStreamingRequest,
    EventStreamingCreateReq,
    EventStreamingCreateReqRuleConfig,
    EventStreamingOperateReq,
    EventStreamingSink,
    EventStreamingSource,
    ResumeEventStreamingRequest,
    RunOption,
    BatchWindow,
    SinkFGParameters,
    SourceCommunityMQParameters,
    SourceDMSMQParameters,
    SourceMobileMQParameters,
    TransForm,
)

from conftest import python_fn, report, unique
from test_eventstream import status, wait_for
from test_eventstream_api import eg, eg_error
from test_eventstream_sdk import eg_client

TOOLS = os.environ.get("FGS_TOOLS") or os.path.expanduser("~/.cache/fgs-tools")
NAMESRV = os.environ.get("ROCKETMQ_NAMESRV_BIN") or os.path.join(TOOLS, "bin", "rocketmq-namesrv-rust")
BROKER = os.environ.get("ROCKETMQ_BROKER_BIN") or os.path.join(TOOLS, "bin", "rocketmq-broker-rust")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCE = os.environ.get("ROCKETMQ_PRODUCE_BIN") or os.path.join(ROOT, "target", "release", "examples", "rocketmq_produce")


def ports_free(*ports):
    for p in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def broker_ports():
    """A listen port p with p-2 (the broker's fast port) and p+1 (its HA port) free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p > 1100 and ports_free(p - 2, p + 1):
            return p


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class RocketMq:
    """A name server and one broker (`broker-a`, 4 queues a topic, topics made on first send)
    on loopback, storing under a temporary dir."""

    def __init__(self, accounts=None, store=""):
        """`accounts`: ACL accounts (dicts of the broker's plain_acl.yml); with them the broker
        authenticates and authorizes every request, and `produce` signs as the first. `store`:
        more lines of the broker's [store] settings."""
        for binary in (NAMESRV, BROKER, PRODUCE):
            if not os.access(binary, os.X_OK):
                pytest.fail("%s not found: scripts/test.sh installs and builds it" % binary)
        self.dir = tempfile.mkdtemp(prefix="fgs-rocketmq-")
        self.ns_port = broker_ports()
        self.addr = "127.0.0.1:%d" % self.ns_port
        env = dict(os.environ, ROCKETMQ_HOME=self.dir, HOME=self.dir)
        log = open(os.path.join(self.dir, "namesrv.log"), "wb")
        self.namesrv = subprocess.Popen(
            [NAMESRV, "--rocketmqHome", self.dir, "--listenPort", str(self.ns_port), "--bindAddress", "127.0.0.1",
             "--kvConfigPath", os.path.join(self.dir, "kvConfig.json")],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: listening(self.ns_port), within=30, what="the name server")
        self.port = broker_ports()
        more = store
        store = os.path.join(self.dir, "store")
        config = os.path.join(self.dir, "broker.toml")
        self.accounts = accounts
        auth = ""
        if accounts:
            acl = os.path.join(self.dir, "plain_acl.yml")
            with open(acl, "w") as f:
                f.write(json.dumps({"globalWhiteRemoteAddresses": [], "accounts": accounts}))
            auth = ('authConfigPath = "%s"\naclFile = "%s"\nauthenticationEnabled = true\n'
                    'authorizationEnabled = true\n' % (os.path.join(self.dir, "auth"), acl))
        with open(config, "w") as f:
            f.write("""[broker]
namesrvAddr = "%(ns)s"
brokerIp1 = "127.0.0.1"
listenPort = %(port)d
storePathRootDir = "%(store)s"
%(auth)s
[broker.brokerServerConfig]
bindAddress = "127.0.0.1"

[broker.brokerIdentity]
brokerName = "broker-a"
brokerClusterName = "DefaultCluster"
brokerId = 0

[store]
storeType = "LocalFile"
brokerRole = "ASYNC_MASTER"
storePathRootDir = "%(store)s"
haListenAddress = "127.0.0.1"
haListenPort = %(ha)d
%(more)s
""" % {"ns": self.addr, "port": self.port, "store": store, "ha": self.port + 1, "auth": auth, "more": more})
        log = open(os.path.join(self.dir, "broker.log"), "wb")
        self.broker = subprocess.Popen([BROKER, "-c", config, "-n", self.addr], stdout=log,
                                       stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: listening(self.port), within=60, what="the broker")

    def produce(self, topic, count, start=0, tags="TagA", batch=100):
        """Sends messages start…start+count-1 (`{"i": n}`, key `k<n>`, tags in turn)."""
        signed = []
        if self.accounts:
            signed = ["--access-key", self.accounts[0]["accessKey"], "--secret-key", self.accounts[0]["secretKey"]]
        out = subprocess.run([PRODUCE, "--namesrv", self.addr, "--topic", topic, "--count", str(count),
                              "--start", str(start), "--tags", tags, "--batch", str(batch)] + signed,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    def close(self):
        for p in (self.broker, self.namesrv):
            p.send_signal(signal.SIGTERM)
        for p in (self.broker, self.namesrv):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def rocketmq():
    mq = RocketMq()
    yield mq
    mq.close()


def reporter(witness, sleep=0.0):
    """A sink function reporting every event it is given (a batch or one) as
    (broker, queue, offset, i, tags) to `witness`; a transformed event carries those fields under
    the same names."""
    return """
import json, time, urllib.request
def handler(event, context):
    events = event if isinstance(event, list) else [event]
    rows = []
    for e in events:
        d = e.get("data", e)
        body = d.get("body") if isinstance(d.get("body"), dict) else d
        rows.append([d["broker"], d["queue_id"], d["queue_offset"], body.get("i"), d.get("tags")])
    urllib.request.urlopen("%s/events", data=json.dumps(rows).encode()).read()
    time.sleep(%f)
    return "ok"
""" % (witness.url, sleep)


def community(mq, topic, group=None, **over):
    params = dict(addr=mq.addr, group=group or unique("GID"), topic=topic, vpc_id="vpc-local",
                  subnet_id="subnet-local")
    params.update(over)
    return EventStreamingSource(name="HC.COMMUNITY_ROCKETMQ", source_community_rocketmq=SourceCommunityMQParameters(**params))


def create(host, source, fn, rule_config=None, option=None):
    client = eg_client(host)
    body = EventStreamingCreateReq(
        name=unique("rmq"), source=source,
        sink=EventStreamingSink(name="HC.FunctionGraph", sink_fg=SinkFGParameters(urn=fn["func_urn"], invoke_type="SYNC")),
        rule_config=rule_config, option=option)
    sid = client.create_event_streaming(CreateEventStreamingRequest(body=body)).event_streaming_id
    client.resume_event_streaming(ResumeEventStreamingRequest(
        eventstreaming_id=sid, body=EventStreamingOperateReq(operation="START")))
    return sid


def first_delivery_order(events):
    """Per queue, the offsets in the order they were first delivered."""
    seen, order = set(), collections.defaultdict(list)
    for broker, queue, offset, *_ in events:
        if (broker, queue, offset) not in seen:
            seen.add((broker, queue, offset))
            order[(broker, queue)].append(offset)
    return order


def sink_fn(host, witness, sleep=0.0):
    return host.create(**python_fn(unique("rmqsink"), reporter(witness, sleep), timeout=10))


def test_envelope_tags_and_pause(fgs, rocketmq, witness):
    topic = unique("T")
    rocketmq.produce(topic, 8, tags="TagA,TagB")
    fn = fgs.create(**python_fn(unique("echo"), """
import json, urllib.request
def handler(event, context):
    urllib.request.urlopen("%s/events", data=json.dumps([[json.dumps(event)]]).encode()).read()
    return "ok"
""" % witness.url, timeout=10))
    sid = create(fgs, community(rocketmq, topic, tag="TagB"), fn)
    wait_for(lambda: witness.unique() >= 4, within=60, what="the TagB messages")
    time.sleep(1.5)
    events = [json.loads(e[0]) for e in witness.events]
    assert sorted(e["data"]["body"]["i"] for e in events) == [1, 3, 5, 7], "only TagB passes the tag filter"
    e = events[0]
    assert e["specversion"] == "1.0" and e["source"] == "HC.COMMUNITY_ROCKETMQ" and e["type"] == "rocketmq:message"
    assert e["subject"] == topic and e["time"].endswith("Z") and e["id"] == e["data"]["msg_id"]
    d = e["data"]
    assert d["topic"] == topic and d["broker"] == "broker-a" and d["tags"] == "TagB"
    assert d["keys"] == "k%d" % d["body"]["i"] and 0 <= d["queue_id"] < 4 and d["queue_offset"] >= 0
    assert d["born_timestamp"] > 0 and d["store_timestamp"] >= d["born_timestamp"]
    assert status(fgs, sid) == "RUNNING"
    eg_client(fgs).resume_event_streaming(ResumeEventStreamingRequest(
        eventstreaming_id=sid, body=EventStreamingOperateReq(operation="PAUSE")))
    assert status(fgs, sid) == "STOPPED"
    rocketmq.produce(topic, 2, start=8, tags="TagB")
    time.sleep(2)
    assert witness.unique() == 4, "a paused stream delivers nothing"
    eg_client(fgs).resume_event_streaming(ResumeEventStreamingRequest(
        eventstreaming_id=sid, body=EventStreamingOperateReq(operation="START")))
    wait_for(lambda: witness.unique() == 6, within=60, what="the messages sent while paused")
    time.sleep(1)
    assert witness.unique() == 6 and len(witness.events) == 6, "committed messages are not delivered again"


def test_ten_thousand_through_filter_and_transform_survive_kill_9(fresh_fgs, rocketmq, witness):
    """12 000 messages, of which the filter passes the first 10 000 (i < 10 000, the lowest
    offsets of every queue), transformed to the fields the function reports."""
    total = 10_000
    topic = unique("T")
    rocketmq.produce(topic, total + 2000)
    host = fresh_fgs()
    fn = sink_fn(host, witness, sleep=0.01)
    rules = EventStreamingCreateReqRuleConfig(
        filter={"data": {"body": {"i": [{"op": "NumberLessThan", "value": total}]}}},
        transform=TransForm(type="VARIABLE", value=json.dumps({
            "b": "$.data.broker", "q": "$.data.queue_id", "o": "$.data.queue_offset", "i": "$.data.body.i"}),
            template='{"broker": "${b}", "queue_id": ${q}, "queue_offset": ${o}, "i": ${i}}'))
    sid = create(host, community(rocketmq, topic, consumer_batch_max_size=20, consumer_thread_nums=2), fn,
                 rule_config=rules)
    wait_for(lambda: witness.unique() >= total // 3, within=180, what="a third of the messages")
    host.stop(signal.SIGKILL)
    before_kill = witness.unique()
    again = fresh_fgs(data_dir=host.data_dir)
    wait_for(lambda: witness.unique() == total, within=300, what="every message after the restart")
    time.sleep(2)
    with witness.lock:
        events = list(witness.events)
    assert len({(b, q, o) for b, q, o, *_ in events}) == total, "every message delivered at least once"
    assert {i for *_, i, _ in events} == set(range(total)), "each message's own body"
    order = first_delivery_order(events)
    assert len(order) == 4
    for queue, offsets in order.items():
        assert offsets == list(range(len(offsets))), "queue %s out of order" % (queue,)
    assert status(again, sid) == "RUNNING"
    report("RocketMQ no-loss: %d messages through filter and transform, host killed (kill -9) after %d: "
           "all delivered, per-queue order of first deliveries held, %d duplicates"
           % (total, before_kill, len(events) - total))


def test_filter_drops_what_it_does_not_match(fgs, rocketmq, witness):
    topic = unique("T")
    rocketmq.produce(topic, 20)
    fn = sink_fn(fgs, witness)
    rules = EventStreamingCreateReqRuleConfig(
        filter={"data": {"body": {"i": [{"op": "NumberNotLessThan", "value": 15}]}}},
        transform=TransForm(type="ORIGINAL"))
    sid = create(fgs, community(rocketmq, topic), fn, rule_config=rules)
    wait_for(lambda: witness.unique() >= 5, within=60, what="the 5 matching messages")
    time.sleep(1.5)
    assert sorted(i for *_, i, _ in witness.events) == [15, 16, 17, 18, 19]
    text = fgs.http.get(fgs.url + "/metrics").text
    assert 'fgs_stream_filtered_out_total{stream="%s"} 15' % sid in text
    wait_for(lambda: 'fgs_stream_lag{stream="%s"} 0' % sid in fgs.http.get(fgs.url + "/metrics").text,
             within=30, what="no lag once everything is committed")


def mobile(mq, topic, group, model):
    return EventStreamingSource(name="HC.MOBILE_ROCKETMQ", source_mobile_rocketmq=SourceMobileMQParameters(
        group_id=group, instance_id="mobile-local", topic=topic, message_model=model, addr_type="PRIVATE",
        addr=mq.addr, sdk_url="local", consume_timeout=1, message_type="NORMAL", consumer_batch_max_size=10,
        consumer_max_wait=1))


@pytest.mark.parametrize("model", ["CLUSTERING", "BROADCASTING"])
def test_message_models(fgs, rocketmq, witness, model):
    """Two streams in one group: CLUSTERING shares the queues (each message once between them),
    BROADCASTING gives each stream every message."""
    total = 200
    topic, group = unique("T"), unique("GID")
    rocketmq.produce(topic, 1)  # the topic exists before the members join
    witness_b = type(witness)()
    try:
        fns = [sink_fn(fgs, w) for w in (witness, witness_b)]
        sids = [create(fgs, mobile(rocketmq, topic, group, model), fn) for fn in fns]
        time.sleep(3)  # both members in the group, the queues shared out
        rocketmq.produce(topic, total, start=1)
        expected = set(range(total + 1))
        if model == "CLUSTERING":
            wait_for(lambda: witness.unique() + witness_b.unique() >= total + 1, within=90, what="every message")
            time.sleep(1.5)
            a = {i for *_, i, _ in witness.events}
            b = {i for *_, i, _ in witness_b.events}
            assert a | b == expected and a - {0} and b - {0}, "the group's two members share the messages"
            # Message 0 was sent before the group had its second member: the first may have
            # had it when its queue moved (at least once); the rest was sent to a settled group.
            assert not (a & b) - {0}, "each message goes to one member"
        else:
            wait_for(lambda: witness.unique() >= total + 1 and witness_b.unique() >= total + 1, within=90,
                     what="every message at both")
            for w in (witness, witness_b):
                assert {i for *_, i, _ in w.events} == expected, "each member reads every message"
        for sid in sids:
            assert status(fgs, sid) == "RUNNING"
    finally:
        witness_b.close()


def test_broadcasting_offsets_survive_a_restart(fresh_fgs, rocketmq, witness):
    topic, group = unique("T"), unique("GID")
    rocketmq.produce(topic, 10)
    host = fresh_fgs()
    fn = sink_fn(host, witness)
    create(host, mobile(rocketmq, topic, group, "BROADCASTING"), fn)
    wait_for(lambda: witness.unique() == 10, within=60, what="10 messages")
    time.sleep(6)  # the client keeps BROADCASTING offsets in the data dir, persisted every 5 s
    host.stop()
    rocketmq.produce(topic, 5, start=10)
    fresh_fgs(data_dir=host.data_dir)
    wait_for(lambda: witness.unique() == 15, within=60, what="the 5 sent while the host was down")
    time.sleep(1.5)
    assert sorted(i for *_, i, _ in witness.events) == list(range(15)), "resumed after the last offset"


def test_dms_source_through_the_hosts_instance_map(fresh_fgs, rocketmq, witness):
    topic = unique("T")
    rocketmq.produce(topic, 5)
    host = fresh_fgs("--rocketmq-instance", "dms-local=" + rocketmq.addr)
    fn = sink_fn(host, witness)
    body = {"name": unique("dms"), "source": {"name": "HC.DMS_ROCKETMQ", "source_dms_rocketmq": {
        "instance_id": "dms-other", "group": "GID_x", "topic": topic}},
        "sink": {"name": "HC.FunctionGraph", "sink_fg": {"urn": fn["func_urn"], "invoke_type": "SYNC"}}}
    eg_error(eg(host, "POST", json=body), 400, "EG.00014000", "dms-other")
    source = EventStreamingSource(name="HC.DMS_ROCKETMQ", source_dms_rocketmq=SourceDMSMQParameters(
        instance_id="dms-local", group=unique("GID"), topic=topic, message_type="ORDER", engine_version="4.x"))
    sid = create(host, source, fn)
    wait_for(lambda: witness.unique() == 5, within=60, what="5 messages")
    shown = eg(host, "GET", "/" + sid).json()
    assert shown["source"]["source_dms_rocketmq"]["message_type"] == "ORDER"


def test_failed_deliveries_retry_at_the_interval_then_stop_the_stream(fgs, rocketmq):
    topic = unique("T")
    rocketmq.produce(topic, 1)
    fn = fgs.create(**python_fn(unique("fails"), "def handler(event, context):\n    raise RuntimeError('no')\n"))
    sid = create(fgs, community(rocketmq, topic, max_reconsume_times=3, suspend_current_queue_time_millis=200), fn)
    wait_for(lambda: status(fgs, sid) == "ERROR", within=60, what="ERROR once the retries run out")
    text = fgs.http.get(fgs.url + "/metrics").text
    assert 'fgs_stream_retries_total{stream="%s"} 3' % sid in text
    assert 'fgs_stream_failed_total{stream="%s"} 4' % sid in text


def test_acl_credentials_sign_the_consumer(fgs, witness):
    """A broker that authenticates and authorizes: the stream's access and secret keys are what
    lets it read; a wrong secret key is an ERROR and reads nothing."""
    topic, group = unique("T"), unique("GID")
    secured = RocketMq(accounts=[
        {"accessKey": "fgs-admin", "secretKey": "admin-secret-1234", "admin": True},
        {"accessKey": "fgs-reader", "secretKey": "reader-secret-1234", "admin": False,
         "defaultTopicPerm": "DENY", "defaultGroupPerm": "DENY",
         "topicPerms": ["%s=SUB" % topic], "groupPerms": ["%s=SUB" % group]}])
    try:
        secured.produce(topic, 5)
        fn = sink_fn(fgs, witness)
        wrong = create(fgs, community(secured, topic, group=group, enable_acl=True, access_key="fgs-reader",
                                      secret_key="not-the-secret"), fn)
        wait_for(lambda: status(fgs, wrong) == "ERROR", within=60, what="ERROR with a wrong secret key")
        assert witness.unique() == 0
        eg(fgs, "DELETE", "/" + wrong)
        create(fgs, community(secured, topic, group=group, enable_acl=True, access_key="fgs-reader",
                              secret_key="reader-secret-1234"), fn)
        wait_for(lambda: witness.unique() == 5, within=60, what="5 messages read with the right keys")
    finally:
        secured.close()


def test_secrets_are_sealed_and_masked(fgs, rocketmq):
    fn_urn = "urn:fss:cn-north-4:%s:function:default:nothing:latest" % "p"
    source = community(rocketmq, "T", enable_acl=True, access_key="ak-1", secret_key="rocketmq-secret-sk")
    client = eg_client(fgs)
    body = EventStreamingCreateReq(name=unique("acl"), source=source, sink=EventStreamingSink(
        name="HC.FunctionGraph", sink_fg=SinkFGParameters(urn=fn_urn, invoke_type="SYNC")))
    sid = client.create_event_streaming(CreateEventStreamingRequest(body=body)).event_streaming_id
    shown = eg(fgs, "GET", "/" + sid).json()
    assert shown["source"]["source_community_rocketmq"]["secret_key"] == "******"
    assert shown["source"]["source_community_rocketmq"]["access_key"] == "ak-1"
    with open(os.path.join(fgs.data_dir, "fgs.sqlite3"), "rb") as f:
        assert b"rocketmq-secret-sk" not in f.read()


@pytest.mark.parametrize("over,details", [
    ({"addr": "nohost"}, "addr"),
    ({"tag": "a ||"}, "tag"),
    ({"message_type": "ORDER"}, "message_type"),
    ({"ssl_enable": True}, "ssl_enable"),
    ({"enable_acl": True}, "secret_key"),
    ({"max_reconsume_times": -2}, "max_reconsume_times"),
    ({"consumer_batch_max_size": 1025}, "consumer_batch_max_size"),
    ({"vpc_id": None}, "vpc_id"),
])
def test_invalid_rocketmq_sources(fgs, over, details):
    params = {"addr": "127.0.0.1:9876", "group": "GID_x", "topic": "T", "vpc_id": "v", "subnet_id": "s"}
    params.update(over)
    params = {k: v for k, v in params.items() if v is not None}
    body = {"name": unique("bad"), "source": {"name": "HC.COMMUNITY_ROCKETMQ", "source_community_rocketmq": params},
            "sink": {"name": "HC.FunctionGraph", "sink_fg": {"urn": "urn:fss:cn-north-4:p:function:default:f:latest"}}}
    eg_error(eg(fgs, "POST", json=body), 400, "EG.00014000", details)
