"""The event-streaming API through the official `huaweicloudsdkeg` SDK, unmodified: what the
SDK reads from create, update, show, list and operate (update answers `{"eventStreamingID"}`;
secrets read as a mask), and EventGrid-shaped errors on every `/v1/{project_id}/` path."""

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkeg.v1 import (
    CreateEventStreamingRequest,
    DeleteEventStreamingRequest,
    EgClient,
    EventStreamingCreateReq,
    EventStreamingSink,
    EventStreamingSource,
    EventStreamingUpdateReq,
    ListEventStreamingRequest,
    ShowEventStreamingRequest,
    SinkFGParameters,
    SourceKafkaMQParameters,
    UpdateEventStreamingRequest,
)

from conftest import PROJECT, unique

FN_URN = "urn:fss:cn-north-4:%s:function:default:sink:latest" % PROJECT


def eg_client(host, project=PROJECT):
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    return (EgClient.new_builder().with_http_config(config)
            .with_credentials(BasicCredentials("any-ak", "any-sk", project))
            .with_endpoints([host.url]).build())


def definition(name, description="orders", password="kafka-secret-pw"):
    return dict(
        name=name, description=description,
        source=EventStreamingSource(name="HC.Kafka", source_kafka=SourceKafkaMQParameters(
            addr="127.0.0.1:9092", group="g1", topic="orders", user_name="u", password=password)),
        sink=EventStreamingSink(name="HC.FunctionGraph", sink_fg=SinkFGParameters(urn=FN_URN, invoke_type="SYNC")))


def test_the_sdk_reads_ids_and_never_a_secret(fgs):
    eg = eg_client(fgs)
    name = unique("sdk")
    created = eg.create_event_streaming(CreateEventStreamingRequest(body=EventStreamingCreateReq(**definition(name))))
    sid = created.event_streaming_id
    assert sid and created.x_request_id
    updated = eg.update_event_streaming(UpdateEventStreamingRequest(
        eventstreaming_id=sid, body=EventStreamingUpdateReq(**definition(name, description="changed"))))
    assert updated.event_streaming_id == sid, "update answers {eventStreamingID}"
    shown = eg.show_event_streaming(ShowEventStreamingRequest(eventstreaming_id=sid))
    assert shown.description == "changed" and shown.source.source_kafka.password == "******"
    listed = eg.list_event_streaming(ListEventStreamingRequest(limit=1000))
    mine = [s for s in listed.items if s.name == name]
    assert len(mine) == 1 and mine[0].source.source_kafka.password == "******"
    for path in ("/v1/%s/eventstreamings/%s" % (PROJECT, sid), "/v1/%s/eventstreamings?limit=1000" % PROJECT):
        assert "kafka-secret-pw" not in requests.get(fgs.url + path).text
    # Sent back masked, the stored password stays.
    eg.update_event_streaming(UpdateEventStreamingRequest(
        eventstreaming_id=sid, body=EventStreamingUpdateReq(**definition(name, password="******"))))
    assert eg.show_event_streaming(ShowEventStreamingRequest(eventstreaming_id=sid)).source.source_kafka.password == "******"

    # Another project's caller reaches nothing of it, and its delete leaves it alone.
    other = eg_client(fgs, project="0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    for call in (lambda: other.show_event_streaming(ShowEventStreamingRequest(eventstreaming_id=sid)),
                 lambda: other.delete_event_streaming(DeleteEventStreamingRequest(eventstreaming_id=sid))):
        with pytest.raises(ClientRequestException) as refused:
            call()
        assert (refused.value.status_code, refused.value.error_code) == (404, "EG.00014040")
    assert eg.show_event_streaming(ShowEventStreamingRequest(eventstreaming_id=sid)).name == name
    eg.delete_event_streaming(DeleteEventStreamingRequest(eventstreaming_id=sid))


@pytest.mark.parametrize("method, path, status, code", [
    ("PUT", "/sources", 405, "EG.00014050"),
    ("GET", "/sources/s1/things", 404, "EG.00014040"),
    ("GET", "/channels/c1/events", 405, "EG.00014050"),
    ("PATCH", "/subscriptions/s1", 405, "EG.00014050"),
    ("GET", "/no/such/path", 404, "EG.00014040"),
    ("DELETE", "/eventstreamings", 405, "EG.00014050"),
    ("PATCH", "/connections/c1", 405, "EG.00014050"),
])
def test_every_eventgrid_path_answers_eventgrid_errors(fgs, method, path, status, code):
    r = requests.request(method, "%s/v1/%s%s" % (fgs.url, PROJECT, path))
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code and body["error_msg"] and body["error_details"], body
    assert r.headers.get("X-Request-Id")
