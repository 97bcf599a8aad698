"""Triggers: the trigger API through the official SDK, TIMER triggers that fire on time with
the documented event, DISABLED and restarts, and every refusal's code."""

import datetime
import json
import time

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import (
    BatchDeleteFunctionTriggersRequest,
    CreateFunctionTriggerRequest,
    CreateFunctionTriggerRequestBody,
    DeleteFunctionTriggerRequest,
    ListFunctionTriggersRequest,
    ShowFunctionTriggerRequest,
    TriggerEventDataRequestBody,
    UpdateTriggerRequest,
    UpdateTriggerRequestBody,
)

from conftest import python_fn, unique
from test_sdk_compat import sdk_client


def reporter(witness):
    """A function that reports every event it is given to the witness."""
    return """import json, urllib.request
def handler(event, context):
    body = json.dumps([[json.dumps(event, sort_keys=True)]]).encode()
    urllib.request.urlopen(urllib.request.Request("%s/events", data=body)).read()
    return "ok"
""" % witness.url


def events(witness, name):
    with witness.lock:
        return [json.loads(e[0]) for e in witness.events if json.loads(e[0]).get("trigger_name") == name]


def timer(name, schedule_type, schedule, user_event=""):
    return {"trigger_type_code": "TIMER", "trigger_status": "ACTIVE",
            "event_data": {"name": name, "schedule_type": schedule_type, "schedule": schedule, "user_event": user_event}}


def refused(r, status, code):
    assert (r.status_code, r.json().get("error_code")) == (status, code), r.text


def test_timer_through_the_sdk_fires_on_time_with_the_documented_event(fgs, witness):
    client = sdk_client(fgs, "fake-ak", "fake-sk")
    base = fgs.create(**python_fn(unique("timer"), reporter(witness)))["func_urn"][: -len(":latest")]
    created = client.create_function_trigger(CreateFunctionTriggerRequest(
        function_urn=base, body=CreateFunctionTriggerRequestBody(
            trigger_type_code="TIMER", trigger_status="ACTIVE",
            event_data=TriggerEventDataRequestBody(name="every5s", schedule_type="Cron",
                                                   schedule="*/5 * * * * *", user_event="hello timer"))))
    start = time.time()
    assert created.trigger_type_code == "TIMER" and created.trigger_status == "ACTIVE" and created.trigger_id
    assert created.event_data.schedule == "*/5 * * * * *" and created.event_data.user_event == "hello timer"
    listed = client.list_function_triggers(ListFunctionTriggersRequest(function_urn=base))
    assert [t.trigger_id for t in listed.body] == [created.trigger_id]
    shown = client.show_function_trigger(ShowFunctionTriggerRequest(
        function_urn=base, trigger_type_code="TIMER", trigger_id=created.trigger_id))
    assert shown.event_data.name == "every5s"

    time.sleep(30 - (time.time() - start))
    fired = events(witness, "every5s")
    assert 5 <= len(fired) <= 7, fired
    event = fired[0]
    assert set(event) == {"version", "time", "trigger_type", "trigger_name", "user_event"}
    assert (event["version"], event["trigger_type"], event["user_event"]) == ("v1.0", "TIMER", "hello timer")
    stamp = datetime.datetime.fromisoformat(event["time"])
    assert stamp.utcoffset() == datetime.timedelta(hours=8) and stamp.second % 5 == 0
    assert abs(stamp.timestamp() - start) < 40
    assert len({e["time"] for e in fired}) == len(fired), "a tick fired twice"

    # DISABLED stops it at once.
    updated = client.update_trigger(UpdateTriggerRequest(
        function_urn=base, trigger_type_code="TIMER", trigger_id=created.trigger_id,
        body=UpdateTriggerRequestBody(trigger_status="DISABLED")))
    assert updated.trigger_status == "DISABLED"
    time.sleep(2)
    before = len(events(witness, "every5s"))
    time.sleep(11)
    assert len(events(witness, "every5s")) == before
    client.delete_function_trigger(DeleteFunctionTriggerRequest(
        function_urn=base, trigger_type_code="TIMER", trigger_id=created.trigger_id))
    with pytest.raises(ClientRequestException) as e:
        client.show_function_trigger(ShowFunctionTriggerRequest(
            function_urn=base, trigger_type_code="TIMER", trigger_id=created.trigger_id))
    assert (e.value.status_code, e.value.error_code) == (404, "FSS.1131")


def test_trigger_refusals(fgs):
    name = unique("trig")
    base = fgs.create(**python_fn(name, "def handler(e, c):\n    return 1\n"))["func_urn"][: -len(":latest")]
    post = lambda body, urn=base: fgs.api("POST", "/triggers/%s" % urn, json=body)
    refused(post({"trigger_type_code": "NOPE", "event_data": {}}), 400, "FSS.1101")
    r = post({"trigger_type_code": "OBS", "event_data": {"bucket": "b"}})
    refused(r, 400, "FSS.1101")
    assert "OBS" in r.json()["error_msg"]
    for data in ({"name": "1bad", "schedule_type": "Rate", "schedule": "1m"},
                 {"name": "t", "schedule_type": "Rate", "schedule": "61m"},
                 {"name": "t", "schedule_type": "Rate", "schedule": "25h"},
                 {"name": "t", "schedule_type": "Cron", "schedule": "61 * * * * *"},
                 {"name": "t", "schedule_type": "Cron", "schedule": "CRON_TZ=Europe/Berlin 0 0 12 * * *"},
                 {"name": "t", "schedule_type": "Daily", "schedule": "1d"},
                 {"name": "t", "schedule_type": "Rate", "schedule": "1m", "topic_ids": ["x"]}):
        refused(post({"trigger_type_code": "TIMER", "event_data": data}), 400, "FSS.1109")
    refused(post(dict(timer("t", "Rate", "1m"), trigger_status="ON")), 400, "FSS.0400")
    first = post(dict(timer("t0", "Rate", "60m"), trigger_status="DISABLED"))
    assert first.status_code == 200, first.text
    refused(post(timer("t0", "Rate", "30m")), 409, "FSS.1148")
    for i in range(1, 10):
        assert post(dict(timer("t%d" % i, "Rate", "60m"), trigger_status="DISABLED")).status_code == 200
    refused(post(timer("t10", "Rate", "60m")), 400, "FSS.1306")
    tid = first.json()["trigger_id"]
    refused(fgs.api("PUT", "/triggers/%s/TIMER/%s" % (base, tid),
                    json={"event_data": {"schedule": "1m"}}), 400, "FSS.1109")
    refused(fgs.api("GET", "/triggers/%s/TIMER/nope" % base), 404, "FSS.1131")
    refused(fgs.api("GET", "/triggers/%s/KAFKA/%s" % (base, tid)), 404, "FSS.1131")
    refused(post(timer("x", "Rate", "1m"), urn=base + "-none"), 404, "FSS.1051")
    refused(post(timer("x", "Rate", "1m"), urn=base + ":v9"), 404, "FSS.1052")

    # Triggers of a version or alias: listed per qualifier; the alias cannot go while bound.
    assert fgs.api("POST", "/functions/%s/versions" % base, json={"version": "v1"}).status_code == 200
    assert fgs.api("POST", "/functions/%s/aliases" % base, json={"name": "prod", "version": "v1"}).status_code == 200
    on_alias = post(dict(timer("a", "Rate", "60m"), trigger_status="DISABLED"), urn=base + ":!prod")
    assert on_alias.status_code == 200, on_alias.text
    assert [t["event_data"]["name"] for t in fgs.api("GET", "/triggers/%s:!prod" % base).json()] == ["a"]
    assert len(fgs.api("GET", "/triggers/%s" % base).json()) == 11
    refused(fgs.api("DELETE", "/functions/%s/aliases/prod" % base), 403, "FSS.1154")
    assert fgs.api("DELETE", "/triggers/%s:!prod" % base).status_code == 204
    assert fgs.api("DELETE", "/functions/%s/aliases/prod" % base).status_code == 204
    client = sdk_client(fgs, "fake-ak", "fake-sk")
    client.batch_delete_function_triggers(BatchDeleteFunctionTriggersRequest(function_urn=base))
    assert fgs.api("GET", "/triggers/%s" % base).json() == []


def test_rate_timer_fires_twice_in_125s_and_again_after_a_restart(fresh_fgs, witness, tmp_path):
    data = str(tmp_path / "data")
    host = fresh_fgs(data_dir=data)
    base = host.create(**python_fn(unique("rate"), reporter(witness)))["func_urn"][: -len(":latest")]
    assert host.api("POST", "/triggers/%s" % base, json=timer("minutely", "Rate", "1m")).status_code == 200
    assert host.api("POST", "/triggers/%s" % base, json=timer("fast", "Cron", "@every 2s")).status_code == 200
    time.sleep(125)
    assert len(events(witness, "minutely")) == 2
    host.stop()
    stopped = len(events(witness, "fast"))
    time.sleep(3)
    assert len(events(witness, "fast")) == stopped, "no tick while the host is down"
    host = fresh_fgs(data_dir=data)
    time.sleep(7)
    assert len(events(witness, "fast")) >= stopped + 2, "the timer runs again after a restart"
    assert len(events(witness, "minutely")) == 2
