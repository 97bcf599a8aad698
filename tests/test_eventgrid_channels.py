"""EventGrid channels, subscriptions and put_events through the official `huaweicloudsdkeg` SDK:
the default channel and custom ones, 1000 CloudEvents published to a channel with two
subscriptions (one filtered) reaching exactly the right functions, per-event refusals of
invalid CloudEvents with the others accepted, ENABLE/DISABLE, update and delete, and the
refusals' codes."""

import json
import time

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkeg.v1 import (
    ChannelCreateReq,
    CloudEvents,
    CreateChannelRequest,
    CreateEventSourceRequest,
    CustomizeSourceCreateReq,
    ListEventSourcesRequest,
    CreateSubscriptionRequest,
    DeleteSubscriptionRequest,
    ExecuteSubscriptionOperationRequest,
    ListChannelsRequest,
    ListSubscriptionsRequest,
    PutEventsReq,
    PutEventsRequest,
    ShowDetailOfSubscriptionRequest,
    SubscriptionCreateReq,
    SubscriptionOperateReq,
    SubscriptionSource,
    SubscriptionTarget,
    SubscriptionUpdateReq,
    TransForm,
    UpdateSubscriptionRequest,
)

from conftest import PROJECT, python_fn, report, unique
from test_eventstream import kafka, wait_for  # noqa: F401 (the broker fixture)
from test_eventstream_sdk import eg_client


def tagged_reporter(witness, tag):
    return """import json, urllib.request
def handler(event, context):
    body = json.dumps([[%r, json.dumps(event, sort_keys=True)]]).encode()
    urllib.request.urlopen(urllib.request.Request("%s/events", data=body)).read()
    return "ok"
""" % (tag, witness.url)


def received(witness, tag):
    with witness.lock:
        return [json.loads(e[1]) for e in witness.events if e[0] == tag]


def target(urn, transform=None):
    return SubscriptionTarget(name="HC.FunctionGraph", provider_type="OFFICIAL",
                              detail={"urn": urn, "invoke_type": "ASYNC", "agency_name": "fgs"},
                              transform=transform or TransForm(type="ORIGINAL"))


def event(i, source="app.orders", **over):
    e = CloudEvents(id="e-%d" % i, source=source, specversion="1.0", type="order.created",
                    datacontenttype="application/json", subject="order-%d" % i,
                    time="2026-12-03T10:00:00Z", data={"amount": i})
    for k, v in over.items():
        setattr(e, k, v)
    return e


def refused(call, status, code):
    with pytest.raises(ClientRequestException) as e:
        call()
    assert (e.value.status_code, e.value.error_code) == (status, code), e.value


def test_put_events_reach_the_subscribed_functions_exactly_as_filtered(fgs, witness):
    eg = eg_client(fgs)
    default = [c for c in eg.list_channels(ListChannelsRequest(limit=1000)).items if c.name == "default"]
    assert len(default) == 1 and default[0].provider_type == "CUSTOM"
    channel = eg.create_channel(CreateChannelRequest(body=ChannelCreateReq(name=unique("orders"), description="d")))
    assert channel.id and channel.provider_type == "CUSTOM"
    refused(lambda: eg.create_channel(CreateChannelRequest(body=ChannelCreateReq(name=channel.name))), 400, "EG.00014000")
    refused(lambda: eg.create_channel(CreateChannelRequest(body=ChannelCreateReq(name="default"))), 400, "EG.00014000")

    urn = {}
    for tag in ("all", "big"):
        urn[tag] = fgs.create(**python_fn(unique("eg-" + tag), tagged_reporter(witness, tag)))["func_urn"]
    subscribe = lambda name, filter_, transform=None: eg.create_subscription(CreateSubscriptionRequest(
        body=SubscriptionCreateReq(name=unique(name), channel_id=channel.id,
                                   sources=[SubscriptionSource(name="app.orders", provider_type="CUSTOM",
                                                               filter=filter_)],
                                   targets=[target(urn[name], transform)])))
    everything = subscribe("all", {})
    big = subscribe("big", {"source": [{"op": "StringIn", "values": ["app.orders"]}],
                            "data": {"amount": [{"op": "NumberGreaterThan", "value": 10}]}})
    assert (everything.status, everything.channel_id, everything.channel_name) == ("ENABLED", channel.id, channel.name)
    assert everything.targets[0].detail["urn"] == urn["all"] and everything.sources[0].name == "app.orders"

    for batch in range(10):
        answer = eg.put_events(PutEventsRequest(channel_id=channel.id, body=PutEventsReq(
            events=[event(batch * 100 + i) for i in range(100)])))
        assert answer.failed_count == 0 and [e.event_id for e in answer.events] == \
            ["e-%d" % (batch * 100 + i) for i in range(100)]
    # Another source's events go nowhere.
    eg.put_events(PutEventsRequest(channel_id=channel.id, body=PutEventsReq(events=[event(5000, source="app.other")])))
    wait_for(lambda: len(received(witness, "all")) >= 1000 and len(received(witness, "big")) >= 989,
             within=120, what="1000 and 989 deliveries")
    time.sleep(1)
    all_ids = sorted(e["id"] for e in received(witness, "all"))
    assert all_ids == sorted("e-%d" % i for i in range(1000)), "each event once, none of the other source"
    assert sorted(e["data"]["amount"] for e in received(witness, "big")) == list(range(11, 1000))
    first = [e for e in received(witness, "all") if e["id"] == "e-7"][0]
    assert first == {"id": "e-7", "source": "app.orders", "specversion": "1.0", "type": "order.created",
                     "datacontenttype": "application/json", "subject": "order-7",
                     "time": "2026-12-03T10:00:00Z", "data": {"amount": 7}}

    # Invalid CloudEvents are refused one by one; the others go on.
    raw = requests.post("%s/v1/%s/channels/%s/events" % (fgs.url, PROJECT, channel.id), json={"events": [
        {"source": "app.orders", "specversion": "1.0", "type": "t", "data": {"amount": 1}},
        {"id": "v03", "source": "app.orders", "specversion": "0.3", "type": "t"},
        {"id": "txt", "source": "app.orders", "specversion": "1.0", "type": "t", "datacontenttype": "text/plain"},
        {"id": "when", "source": "app.orders", "specversion": "1.0", "type": "t", "time": "yesterday"},
        {"id": "big", "source": "app.orders", "specversion": "1.0", "type": "t", "data": "x" * (300 * 1024)},
        {"id": "fine", "source": "app.orders", "specversion": "1.0", "type": "t", "data": {"amount": 20}},
    ]})
    assert raw.status_code == 200, raw.text
    answer = raw.json()
    assert answer["failed_count"] == 5
    assert [e.get("error_code") for e in answer["events"]] == ["EG.00014000"] * 5 + [None]
    assert "id is required" in answer["events"][0]["error_msg"] and answer["events"][5] == {"event_id": "fine"}
    wait_for(lambda: "fine" in [e["id"] for e in received(witness, "big")], what="the valid event")

    # DISABLE stops a subscription's deliveries, ENABLE resumes them; an unknown id fails alone.
    operated = eg.execute_subscription_operation(ExecuteSubscriptionOperationRequest(body=SubscriptionOperateReq(
        subscription_ids=[big.id, "no-such-subscription"], operation="DISABLE")))
    assert operated.failed_count == 1 and operated.events[1].error_code == "EG.00014040"
    assert eg.show_detail_of_subscription(ShowDetailOfSubscriptionRequest(subscription_id=big.id)).status == "DISABLED"
    eg.put_events(PutEventsRequest(channel_id=channel.id, body=PutEventsReq(events=[event(2000)])))
    wait_for(lambda: "e-2000" in [e["id"] for e in received(witness, "all")], what="e-2000")
    time.sleep(1)
    assert "e-2000" not in [e["id"] for e in received(witness, "big")]

    # Update: a constant transform for the filtered one (enabled again); delete the other.
    eg.execute_subscription_operation(ExecuteSubscriptionOperationRequest(body=SubscriptionOperateReq(
        subscription_ids=[big.id], operation="ENABLE")))
    updated = eg.update_subscription(UpdateSubscriptionRequest(subscription_id=big.id, body=SubscriptionUpdateReq(
        description="constant now", targets=[target(urn["big"], TransForm(type="CONSTANT", value='{"fixed": true}'))])))
    assert updated.description == "constant now" and updated.targets[0].transform.type == "CONSTANT"
    eg.delete_subscription(DeleteSubscriptionRequest(subscription_id=everything.id))
    listed = eg.list_subscriptions(ListSubscriptionsRequest(channel_id=channel.id, limit=100))
    assert [s.id for s in listed.items] == [big.id]
    eg.put_events(PutEventsRequest(channel_id=channel.id, body=PutEventsReq(events=[event(3000)])))
    wait_for(lambda: {"fixed": True} in received(witness, "big"), what="the constant event")
    time.sleep(1)
    assert "e-3000" not in [e["id"] for e in received(witness, "all")], "a deleted subscription delivers nothing"


def test_channel_and_subscription_refusals(fgs):
    eg = eg_client(fgs)
    default = [c for c in eg.list_channels(ListChannelsRequest(limit=1000)).items if c.name == "default"][0]
    urn = fgs.create(**python_fn(unique("eg-r"), "def handler(e, c):\n    return 1\n"))["func_urn"]
    create = lambda **over: eg.create_subscription(CreateSubscriptionRequest(body=SubscriptionCreateReq(**{
        "name": unique("sub"), "channel_id": default.id,
        "sources": [SubscriptionSource(name="app", provider_type="CUSTOM", filter={})],
        "targets": [target(urn)], **over})))
    refused(lambda: create(channel_id="no-such-channel"), 404, "EG.00014040")
    refused(lambda: create(targets=[SubscriptionTarget(name="HC.Kafka", detail={})]), 400, "EG.00014000")
    foreign = urn.replace(":%s:" % PROJECT, ":0f1e2d3c4b5a69788796a5b4c3d2e1f0:")
    refused(lambda: create(targets=[target(foreign)]), 400, "EG.00014000")
    refused(lambda: create(targets=[target(urn)] * 6), 400, "EG.00014000")
    refused(lambda: create(sources=[]), 400, "EG.00014000")
    refused(lambda: create(sources=[SubscriptionSource(name="app", filter={"data": {"x": [{"op": "Nope"}]}})]),
            400, "EG.00014000")
    refused(lambda: create(name="bad name"), 400, "EG.00014000")
    refused(lambda: eg.put_events(PutEventsRequest(channel_id="no-such-channel", body=PutEventsReq(events=[event(1)]))),
            404, "EG.00014040")
    refused(lambda: eg.put_events(PutEventsRequest(channel_id=default.id, body=PutEventsReq(
        events=[event(i) for i in range(101)]))), 400, "EG.00014000")
    refused(lambda: eg.put_events(PutEventsRequest(channel_id=default.id, body=PutEventsReq(events=[]))),
            400, "EG.00014000")
    huge = requests.post("%s/v1/%s/channels/%s/events" % (fgs.url, PROJECT, default.id),
                         data=b'{"events": ["' + b"x" * (5 * 1024 * 1024) + b'"]}')
    assert (huge.status_code, huge.json()["error_code"]) == (413, "EG.00014130"), huge.text
    # Another project sees neither the channel nor the subscription.
    sub = create()
    other = eg_client(fgs, project="0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    refused(lambda: other.show_detail_of_subscription(ShowDetailOfSubscriptionRequest(subscription_id=sub.id)),
            404, "EG.00014040")
    refused(lambda: other.put_events(PutEventsRequest(channel_id=default.id, body=PutEventsReq(events=[event(1)]))),
            404, "EG.00014040")
    refused(lambda: other.delete_subscription(DeleteSubscriptionRequest(subscription_id=sub.id)), 404, "EG.00014040")
    assert eg.show_detail_of_subscription(ShowDetailOfSubscriptionRequest(subscription_id=sub.id)).id == sub.id


def test_accepted_events_survive_kill_9_of_the_host(fresh_fgs, witness):
    import signal
    host = fresh_fgs()
    eg = eg_client(host)
    channel = eg.create_channel(CreateChannelRequest(body=ChannelCreateReq(name=unique("durable"))))
    slow = tagged_reporter(witness, "slow").replace('return "ok"', 'time.sleep(0.05)\n    return "ok"') \
        .replace("import json, urllib.request", "import json, time, urllib.request")
    urn = host.create(**python_fn(unique("eg-slow"), slow))["func_urn"]
    eg.create_subscription(CreateSubscriptionRequest(body=SubscriptionCreateReq(
        name=unique("sub"), channel_id=channel.id,
        sources=[SubscriptionSource(name="app.orders", provider_type="CUSTOM", filter={})], targets=[target(urn)])))
    for batch in range(3):
        answer = eg.put_events(PutEventsRequest(channel_id=channel.id, body=PutEventsReq(
            events=[event(batch * 100 + i) for i in range(100)])))
        assert answer.failed_count == 0
    host.proc.send_signal(signal.SIGKILL)
    host.proc.wait()
    host.log.close()
    before = len(received(witness, "slow"))
    assert before < 300, "the kill came while events were still queued (%d delivered)" % before
    host.start()
    wait_for(lambda: {e["id"] for e in received(witness, "slow")} == {"e-%d" % i for i in range(300)},
             within=120, what="every accepted event after the restart")
    report("put_events kill -9: %d of 300 delivered before the kill, %d deliveries in all (%d again)"
           % (before, len(received(witness, "slow")), len(received(witness, "slow")) - 300))


def test_custom_event_sources(fgs):
    eg = eg_client(fgs)
    channel = eg.create_channel(CreateChannelRequest(body=ChannelCreateReq(name=unique("src"))))
    name = unique("app.orders")
    made = eg.create_event_source(CreateEventSourceRequest(body=CustomizeSourceCreateReq(
        name=name, description="orders", channel_id=channel.id, type="APPLICATION")))
    assert (made.name, made.provider_type, made.type, made.channel_id, made.channel_name, made.status) == \
        (name, "CUSTOM", "APPLICATION", channel.id, channel.name, "RUNNING")
    listed = eg.list_event_sources(ListEventSourcesRequest(channel_id=channel.id, limit=100))
    assert [s.id for s in listed.items] == [made.id] and listed.total == 1
    assert eg.list_event_sources(ListEventSourcesRequest(name="nope", limit=100)).items == []
    create = lambda **over: eg.create_event_source(CreateEventSourceRequest(body=CustomizeSourceCreateReq(
        **{"name": unique("s"), "channel_id": channel.id, "type": "APPLICATION", **over})))
    refused(lambda: create(name=name), 400, "EG.00014000")
    for bad in ("hc.orders", "Upper", "-lead", "a b"):
        refused(lambda: create(name=bad), 400, "EG.00014000")
    refused(lambda: create(type="ROCKETMQ"), 400, "EG.00014000")
    refused(lambda: create(channel_id="no-such-channel"), 404, "EG.00014040")
    other = eg_client(fgs, project="0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    assert other.list_event_sources(ListEventSourcesRequest(limit=100)).items == []


def test_a_kafka_target_gets_each_event_before_put_events_answers(fgs, kafka):
    from test_eventstream import topic
    from test_eventstream_delivery import connection, consume
    eg = eg_client(fgs)
    channel = eg.create_channel(CreateChannelRequest(body=ChannelCreateReq(name=unique("to-kafka"))))
    out = topic(kafka)
    conn = connection(fgs, kafka, acks="all")
    kafka_target = SubscriptionTarget(
        name="HC.Kafka", provider_type="OFFICIAL", connection_id=conn,
        kafka_detail={"topic": out, "keyTransform": {"type": "VARIABLE", "value": '{"s": "$.subject"}',
                                                      "template": "key-${s}"}},
        transform=TransForm(type="VARIABLE", value='{"n": "$.data.amount"}', template="amount ${n}"))
    sub = eg.create_subscription(CreateSubscriptionRequest(body=SubscriptionCreateReq(
        name=unique("sub"), channel_id=channel.id,
        sources=[SubscriptionSource(name="app.orders", provider_type="CUSTOM",
                                    filter={"data": {"amount": [{"op": "NumberLessThan", "value": 50}]}})],
        targets=[kafka_target])))
    assert sub.targets[0].kafka_detail.topic == out
    answer = eg.put_events(PutEventsRequest(channel_id=channel.id, body=PutEventsReq(
        events=[event(i) for i in range(100)])))
    assert answer.failed_count == 0
    # Acknowledged by the broker before the answer: all there at once, in order, filtered.
    records = consume(kafka, out, 50, within=20)
    assert [(r.key.decode(), r.value.decode()) for r in records] == \
        [("key-order-%d" % i, "amount %d" % i) for i in range(50)]
    # Refusals: no such connection, no topic, a bad key rule; a connection in use stays.
    bad = lambda **over: eg.create_subscription(CreateSubscriptionRequest(body=SubscriptionCreateReq(
        name=unique("sub"), channel_id=channel.id, sources=[SubscriptionSource(name="a", filter={})],
        targets=[SubscriptionTarget(**{"name": "HC.Kafka", "connection_id": conn,
                                       "kafka_detail": {"topic": out}, **over})])))
    refused(lambda: bad(connection_id="no-such-connection"), 400, "EG.00014000")
    refused(lambda: bad(kafka_detail={}), 400, "EG.00014000")
    refused(lambda: bad(kafka_detail={"topic": out, "keyTransform": {"type": "SOMETIMES"}}), 400, "EG.00014000")
    r = requests.delete("%s/v1/%s/connections/%s" % (fgs.url, PROJECT, conn))
    assert (r.status_code, r.json()["error_code"]) == (400, "EG.00014000") and sub.name in r.text


def test_channels_subscriptions_and_sources_are_bounded_per_project(fgs):
    project = "1a2b3c4d5e6f708192a3b4c5d6e7f801"
    url = "%s/v1/%s" % (fgs.url, project)
    post = lambda path, body: requests.post(url + path, json=body)
    # The default channel is one of the project's 100.
    for i in range(99):
        r = post("/channels", {"name": "ch-%d" % i})
        assert r.status_code == 200, r.text
    full = post("/channels", {"name": "one-too-many"})
    assert (full.status_code, full.json()["error_code"]) == (400, "EG.00014000") and "100" in full.text, full.text
    listed = requests.get(url + "/channels", params={"limit": 1000}).json()
    assert listed["total"] == 100 and "one-too-many" not in [c["name"] for c in listed["items"]]
    channel = listed["items"][0]["id"]
    for i in range(100):
        assert post("/sources", {"name": "src-%d" % i, "channel_id": channel}).status_code == 200
    full = post("/sources", {"name": "src-100", "channel_id": channel})
    assert (full.status_code, full.json()["error_code"]) == (400, "EG.00014000"), full.text
