"""DIS through the official Python SDK (huaweicloudsdkdis), unmodified, against fgs: streams,
records, cursors, apps and checkpoints, every refusal with its DIS code, durability across
kill -9."""

import base64
import hashlib
import json
import os
import random
import signal
import threading
import time

import pytest
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkdis.v2 import (
    CommitCheckpointReq,
    CommitCheckpointRequest,
    ConsumeRecordsRequest,
    CreateAppReq,
    CreateAppRequest,
    CreateStreamReq,
    CreateStreamRequest,
    DeleteAppRequest,
    DeleteCheckpointRequest,
    DeleteStreamRequest,
    DisClient,
    ListAppRequest,
    ListPoliciesRequest,
    ListStreamsRequest,
    PutRecordsRequest,
    PutRecordsRequestEntry,
    SendRecordsRequest,
    ShowAppRequest,
    ShowCheckpointRequest,
    ShowConsumerStateRequest,
    ShowCursorRequest,
    ShowPartitionMetricsRequest,
    ShowStreamMetricsRequest,
    ShowStreamRequest,
    Tag,
    UpdatePartitionCountReq,
    UpdatePartitionCountRequest,
)

from conftest import AK, OTHER_PROJECT, PROJECT, SK, signed, unique


def dis_client(host, project=PROJECT, ak="fake-ak", sk="fake-sk"):
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    config.retry_times = 0
    return (DisClient.new_builder()
            .with_http_config(config)
            .with_credentials(BasicCredentials(ak, sk, project))
            .with_endpoints([host.url])
            .build())


@pytest.fixture
def dis(fgs):
    return dis_client(fgs)


def refused(call, code, status=400):
    """Runs an SDK call that must fail with DIS `code`; answers the message."""
    with pytest.raises(ClientRequestException) as e:
        call()
    assert (e.value.status_code, e.value.error_code) == (status, code), e.value
    return e.value.error_msg


def b64(data):
    return base64.b64encode(data).decode()


def create_stream(dis, name=None, partitions=1, **over):
    name = name or unique("dis")
    dis.create_stream(CreateStreamRequest(body=CreateStreamReq(
        stream_name=name, partition_count=partitions, **over)))
    return name


def put(dis, stream, *entries):
    """Sends entries (dicts of PutRecordsRequestEntry fields); answers the SDK's result."""
    return dis.send_records(SendRecordsRequest(body=PutRecordsRequest(
        stream_name=stream, records=[PutRecordsRequestEntry(**e) for e in entries])))


def cursor(dis, stream, partition, cursor_type="TRIM_HORIZON", **over):
    return dis.show_cursor(ShowCursorRequest(
        stream_name=stream, partition_id=partition, cursor_type=cursor_type, **over)).partition_cursor


def read(dis, partition_cursor, max_fetch_bytes=None):
    return dis.consume_records(ConsumeRecordsRequest(
        partition_cursor=partition_cursor, max_fetch_bytes=max_fetch_bytes))


def read_all(dis, stream, partition):
    """Every record of a partition, from the earliest on."""
    out, at = [], cursor(dis, stream, partition)
    while True:
        got = read(dis, at)
        if not got.records:
            return out
        out.extend(got.records)
        at = got.next_partition_cursor


def java_partition(key, n):
    """The Java SDK's partition of a key among n partitions (research notes §F)."""
    h = int.from_bytes(hashlib.md5(key.encode()).digest()[:8], "big") & (2**63 - 1)
    return min(h // ((2**63 - 1) // n), n - 1)


# --- streams --------------------------------------------------------------------------------

def test_a_stream_is_created_listed_described_scaled_and_deleted(dis):
    name = create_stream(dis, partitions=2, stream_type="ADVANCED", data_type="JSON",
                         data_duration=48, data_schema='{"type":"record","name":"r","fields":[]}',
                         tags=[Tag(key="team", value="data")])
    s = dis.show_stream(ShowStreamRequest(stream_name=name))
    assert (s.stream_name, s.status, s.stream_type, s.data_type) == (name, "RUNNING", "ADVANCED", "JSON")
    assert (s.retention_period, s.writable_partition_count, s.readable_partition_count) == (48, 2, 2)
    assert [p.partition_id for p in s.partitions] == ["shardId-0000000000", "shardId-0000000001"]
    assert [p.hash_range for p in s.partitions] == [
        "[0 : 4611686018427387902]", "[4611686018427387903 : 9223372036854775807]"]
    assert all(p.status == "ACTIVE" and p.sequence_number_range == "[0 : 0]" for p in s.partitions)
    assert s.tags[0].key == "team" and len(s.stream_id) == 32

    dis.update_partition_count(UpdatePartitionCountRequest(
        stream_name=name, body=UpdatePartitionCountReq(stream_name=name, target_partition_count=4)))
    dis.update_partition_count(UpdatePartitionCountRequest(
        stream_name=name, body=UpdatePartitionCountReq(stream_name=name, target_partition_count=3)))
    s = dis.show_stream(ShowStreamRequest(stream_name=name))
    assert [p.status for p in s.partitions] == ["ACTIVE", "ACTIVE", "ACTIVE", "DELETED"]
    assert (s.writable_partition_count, s.readable_partition_count) == (3, 4)
    assert [(c.src_partition_count, c.target_partition_count) for c in s.update_partition_counts] == [(2, 4), (4, 3)]
    # A removed partition takes no more records but can still be read.
    result = put(dis, name, {"data": b64(b"x"), "partition_id": "3"})
    assert result.failed_record_count == 1 and result.records[0].error_code == "DIS.4302"
    assert read_all(dis, name, "shardId-0000000003") == []
    # Describe pages through the partitions.
    page = dis.show_stream(ShowStreamRequest(stream_name=name, start_partition_id="shardId-0000000000",
                                             limit_partitions=2))
    assert [p.partition_id for p in page.partitions] == ["shardId-0000000001", "shardId-0000000002"]
    assert page.has_more_partitions is True

    dis.delete_stream(DeleteStreamRequest(stream_name=name))
    refused(lambda: dis.show_stream(ShowStreamRequest(stream_name=name)), "DIS.4301")
    refused(lambda: dis.delete_stream(DeleteStreamRequest(stream_name=name)), "DIS.4301")


def test_streams_list_by_name_in_pages(fgs):
    dis = dis_client(fgs, project=unique("listing"))
    names = sorted(create_stream(dis, "s-%d" % i) for i in range(5))
    first = dis.list_streams(ListStreamsRequest(limit=2))
    assert (first.total_number, first.stream_names, first.has_more_streams) == (5, names[:2], True)
    assert [i.partition_count for i in first.stream_info_list] == [1, 1]
    rest = dis.list_streams(ListStreamsRequest(limit=10, start_stream_name=names[1]))
    assert (rest.stream_names, rest.has_more_streams) == (names[2:], False)
    refused(lambda: dis.list_streams(ListStreamsRequest(limit=0)), "DIS.4200")
    # Another project sees none of them.
    assert dis_client(fgs, project=unique("other")).list_streams(ListStreamsRequest()).total_number == 0


def test_bad_streams_are_refused_with_dis_codes(dis):
    name = create_stream(dis)
    refused(lambda: create_stream(dis, name), "DIS.4307")
    for bad in (dict(stream_name="has space"), dict(stream_name="x" * 65), dict(partition_count=0),
                dict(data_duration=23), dict(data_duration=73), dict(stream_type="HUGE"),
                dict(data_type="XML"), dict(compression_format="lz4")):
        over = {"stream_name": unique("bad"), "partition_count": 1, **bad}
        refused(lambda: dis.create_stream(CreateStreamRequest(body=CreateStreamReq(**over))), "DIS.4200")
    refused(lambda: create_stream(dis, data_schema="{not json"), "DIS.4360")
    refused(lambda: dis.update_partition_count(UpdatePartitionCountRequest(
        stream_name=name, body=UpdatePartitionCountReq(stream_name=name, target_partition_count=0))), "DIS.4200")
    refused(lambda: dis.update_partition_count(UpdatePartitionCountRequest(
        stream_name="nope", body=UpdatePartitionCountReq(stream_name="nope", target_partition_count=2))), "DIS.4301")


def test_the_partition_quota_counts_advanced_partitions_five_times(fgs):
    dis = dis_client(fgs, project=unique("quota"))
    create_stream(dis, partitions=8, stream_type="ADVANCED")  # 40 of 50 units
    msg = refused(lambda: create_stream(dis, partitions=3, stream_type="ADVANCED"), "DIS.4308")
    assert msg.startswith("Insufficient quota.")
    small = create_stream(dis, partitions=10)  # 50 of 50
    refused(lambda: dis.update_partition_count(UpdatePartitionCountRequest(
        stream_name=small, body=UpdatePartitionCountReq(stream_name=small, target_partition_count=11))), "DIS.4308")
    # Scaling down frees units.
    dis.update_partition_count(UpdatePartitionCountRequest(
        stream_name=small, body=UpdatePartitionCountReq(stream_name=small, target_partition_count=5)))
    create_stream(dis, partitions=5)


def test_the_host_partition_limit_holds_across_projects(fresh_fgs):
    host = fresh_fgs("--dis-host-partitions", "3")
    a, b = dis_client(host, project="tenant-a"), dis_client(host, project="tenant-b")
    create_stream(a, partitions=2)
    msg = refused(lambda: create_stream(b, partitions=2), "DIS.4308")
    assert "--dis-host-partitions" in msg
    create_stream(b, partitions=1)
    assert b.list_streams(ListStreamsRequest()).total_number == 1


def test_an_invalid_project_id_is_refused(fgs):
    r = requests.get(fgs.url + "/v2/bad%20project/streams")
    assert r.status_code == 400 and r.json()["errorCode"] == "DIS.4117"
    body = r.json()
    assert body["error_code"] == "DIS.4117" and body["message"] == body["error_msg"]
    assert r.headers["X-Request-Id"]


# --- records --------------------------------------------------------------------------------

def test_records_go_where_the_java_sdk_puts_them_and_read_back(dis):
    name = create_stream(dis, partitions=8)
    keys = ["a", "key1", "user-42", "hello"] + ["k%d" % i for i in range(40)]
    result = put(dis, name, *({"data": b64(k.encode()), "partition_key": k} for k in keys))
    assert result.failed_record_count == 0
    for key, r in zip(keys, result.records):
        assert r.partition_id == "shardId-%010d" % java_partition(key, 8), key
    assert [r.partition_id for r in result.records[:4]] == [
        "shardId-0000000000", "shardId-0000000004", "shardId-0000000007", "shardId-0000000005"]
    # Sequence numbers are dense per partition, strings on the wire.
    by_partition = {}
    for key, r in zip(keys, result.records):
        by_partition.setdefault(r.partition_id, []).append((int(r.sequence_number), key))
    for partition, placed in by_partition.items():
        assert [s for s, _ in placed] == list(range(len(placed)))
        got = read_all(dis, name, partition)
        assert [(int(r.sequence_number), base64.b64decode(r.data).decode()) for r in got] == placed
        assert all(r.partition_key == k for r, (_, k) in zip(got, placed))
        assert all(r.timestamp_type == "CreateTime" and r.timestamp > 1.7e12 for r in got)
    # partition_id wins over the key, explicit_hash_key over the key.
    result = put(dis, name, {"data": b64(b"p"), "partition_id": "shardId-0000000003", "partition_key": "a"},
                 {"data": b64(b"q"), "partition_id": "6"},
                 {"data": b64(b"h"), "explicit_hash_key": str(2**63 - 1), "partition_key": "a"},
                 {"data": b64(b"r")})
    assert [r.partition_id for r in result.records[:3]] == [
        "shardId-0000000003", "shardId-0000000006", "shardId-0000000007"]
    assert result.records[3].partition_id.startswith("shardId-000000000")
    # A record sent without a key is read back without one.
    q = [r for r in read_all(dis, name, "6") if base64.b64decode(r.data) == b"q"]
    assert len(q) == 1 and q[0].partition_key is None


def test_every_cursor_type_lands_on_the_right_record(dis):
    name = create_stream(dis)
    stamps = []
    for i in range(5):
        put(dis, name, *({"data": b64(b"%d-%d" % (i, j)), "partition_id": "0"} for j in range(3)))
        stamps.append(int(read_all(dis, name, "0")[-1].timestamp))
        time.sleep(0.01)

    def first(**c):
        got = read(dis, cursor(dis, name, "0", **c)).records
        return (int(got[0].sequence_number), base64.b64decode(got[0].data)) if got else None

    assert first(cursor_type="TRIM_HORIZON") == (0, b"0-0")
    assert first(cursor_type="AT_SEQUENCE_NUMBER", starting_sequence_number="7") == (7, b"2-1")
    assert first(cursor_type="AFTER_SEQUENCE_NUMBER", starting_sequence_number="7") == (8, b"2-2")
    assert first(cursor_type="AT_TIMESTAMP", timestamp=stamps[2]) == (6, b"2-0")
    assert first(cursor_type="AT_TIMESTAMP", timestamp=stamps[2] + 1) == (9, b"3-0")
    assert first(cursor_type="AT_TIMESTAMP", timestamp=0) == (0, b"0-0")
    assert first(cursor_type="AT_TIMESTAMP", timestamp=stamps[-1] + 60_000) is None
    # LATEST reads what comes after it; AT_SEQUENCE_NUMBER of the end waits likewise.
    latest = cursor(dis, name, "0", cursor_type="LATEST")
    at_end = cursor(dis, name, "0", cursor_type="AT_SEQUENCE_NUMBER", starting_sequence_number="15")
    assert read(dis, latest).records == []
    put(dis, name, {"data": b64(b"new"), "partition_id": "0"})
    for c in (latest, at_end):
        got = read(dis, c).records
        assert [(r.sequence_number, base64.b64decode(r.data)) for r in got] == [("15", b"new")]
    # The next cursor continues; max_fetch_bytes below one record returns none.
    got = read(dis, cursor(dis, name, "0"), max_fetch_bytes=9)
    assert [r.sequence_number for r in got.records] == ["0", "1", "2"]
    assert read(dis, got.next_partition_cursor).records[0].sequence_number == "3"
    assert read(dis, cursor(dis, name, "0"), max_fetch_bytes=2).records == []


def test_bad_records_fail_alone_with_their_codes(dis):
    name = create_stream(dis, partitions=2)
    result = put(dis, name,
                 {"data": b64(b"ok"), "partition_key": "a"},
                 {"data": b64(b"x"), "partition_id": "shard-1"},
                 {"data": b64(b"x"), "partition_id": "7"},
                 {"data": "%%% not base64"},
                 {"data": b64(b"x" * (1024 * 1024 + 1))},
                 {"data": b64(b"x"), "explicit_hash_key": "-5"},
                 {"data": b64(b"x"), "partition_key": "k" * 257},
                 {"data": b64(b"x" * (1024 * 1024))})
    codes = [r.error_code for r in result.records]
    assert codes == [None, "DIS.4201", "DIS.4302", "DIS.4200", "DIS.4200", "DIS.4200", "DIS.4200", None]
    assert result.failed_record_count == 6
    assert result.records[2].error_message.startswith("Partition does not exist.")
    assert sum(len(read_all(dis, name, p)) for p in ("0", "1")) == 2


def test_bad_requests_are_refused_whole(dis):
    name = create_stream(dis)
    refused(lambda: put(dis, name), "DIS.4202")
    refused(lambda: put(dis, "no-such-stream", {"data": b64(b"x")}), "DIS.4301")
    refused(lambda: put(dis, name, *({"data": b64(b"x")} for _ in range(501))), "DIS.4200")
    mb = b64(b"y" * (1024 * 1024))
    msg = refused(lambda: put(dis, name, *({"data": mb} for _ in range(5)), {"data": b64(b"y" * 600_000)}),
                  "DIS.4200")
    assert "at most 5242880" in msg
    assert read_all(dis, name, "0") == []


def test_bad_cursors_are_refused_with_dis_codes(dis, fgs):
    name = create_stream(dis)
    put(dis, name, *({"data": b64(b"r%d" % i), "partition_id": "0"} for i in range(3)))
    refused(lambda: cursor(dis, name, "0", cursor_type="SOMEWHERE"), "DIS.4215")
    refused(lambda: cursor(dis, name, "0", cursor_type="AT_SEQUENCE_NUMBER"), "DIS.4216")
    refused(lambda: cursor(dis, name, "0", cursor_type="AT_SEQUENCE_NUMBER", starting_sequence_number="x1"),
            "DIS.4216")
    msg = refused(lambda: cursor(dis, name, "0", cursor_type="AT_SEQUENCE_NUMBER", starting_sequence_number="4"),
                  "DIS.4224")
    assert msg == "Sequence_number out of range. [4][ should be within ][0][ ][3]"
    refused(lambda: cursor(dis, name, "0", cursor_type="AFTER_SEQUENCE_NUMBER", starting_sequence_number="3"),
            "DIS.4224")
    refused(lambda: cursor(dis, name, "0", cursor_type="AT_TIMESTAMP"), "DIS.4300")
    refused(lambda: cursor(dis, name, "1"), "DIS.4302")
    refused(lambda: cursor(dis, name, "shard-zero"), "DIS.4201")
    refused(lambda: cursor(dis, "no-such-stream", "0"), "DIS.4301")
    refused(lambda: read(dis, "not-a-cursor"), "DIS.4217")
    # A cursor older than five minutes has expired.
    good = cursor(dis, name, "0")
    wire = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))
    wire["generateTimestamp"] -= 5 * 60 * 1000 + 1000
    stale = base64.urlsafe_b64encode(json.dumps(wire).encode()).decode().rstrip("=")
    refused(lambda: read(dis, stale), "DIS.4225")
    refused(lambda: read(dis, good, max_fetch_bytes=-1), "DIS.4200")
    # A cursor of a deleted stream finds nothing, even when the name is taken again.
    dis.delete_stream(DeleteStreamRequest(stream_name=name))
    create_stream(dis, name)
    refused(lambda: read(dis, good), "DIS.4301")
    # Another project cannot read with a cursor made in this one.
    mine = create_stream(dis)
    put(dis, mine, {"data": b64(b"secret"), "partition_id": "0"})
    theirs = dis_client(fgs, project=OTHER_PROJECT)
    refused(lambda: read(theirs, cursor(dis, mine, "0")), "DIS.4301")


# --- monitoring ---------------------------------------------------------------------------

def test_stream_and_partition_metrics_count_what_went_in_and_out(dis):
    name = create_stream(dis, partitions=2)
    start = int(time.time()) - 60
    put(dis, name, *({"data": b64(b"12345"), "partition_id": "0"} for _ in range(4)))
    put(dis, name, {"data": b64(b"abc"), "partition_id": "1"})
    read_all(dis, name, "0")  # one read with records, one without
    end = int(time.time()) + 60

    def total(series):
        return sum(p.value for p in series.data_points)

    def stream(label=None, label_list=None, **over):
        return dis.show_stream_metrics(ShowStreamMetricsRequest(
            stream_name=name, label=label, label_list=label_list,
            start_time=over.get("start", start), end_time=over.get("end", end)))

    got = stream(label_list="total_put_records_per_stream,total_put_bytes_per_stream,"
                            "total_get_records_per_stream,total_get_bytes_per_stream,"
                            "total_put_req_suc_per_stream,total_get_req_suc_per_stream,"
                            "traffic_control_put,total_put_req_latency")
    assert [(m.label, total(m)) for m in got.metrics_list][:7] == [
        ("total_put_records_per_stream", 5), ("total_put_bytes_per_stream", 23),
        ("total_get_records_per_stream", 4), ("total_get_bytes_per_stream", 20),
        ("total_put_req_suc_per_stream", 2), ("total_get_req_suc_per_stream", 2),
        ("traffic_control_put", 0)]
    assert got.metrics.label == "total_put_records_per_stream"
    assert all(p.timestamp % 60_000 == 0 for p in got.metrics.data_points)
    one = dis.show_partition_metrics(ShowPartitionMetricsRequest(
        stream_name=name, partition_id="shardId-0000000001", label="total_put_bytes_per_partition",
        start_time=start, end_time=end))
    assert (one.metrics.label, total(one.metrics)) == ("total_put_bytes_per_partition", 3)
    # Another period sees nothing.
    assert total(stream("total_put_records_per_stream", start=start - 7200, end=start - 3600).metrics) == 0

    refused(lambda: stream("total_put_bytes_per_partition"), "DIS.4209")
    refused(lambda: stream(), "DIS.4209")
    refused(lambda: stream("total_put_records_per_stream", start=end, end=start), "DIS.4203")
    refused(lambda: stream("total_put_records_per_stream", start="soon"), "DIS.4203")
    refused(lambda: stream("total_put_records_per_stream", start=end - 8 * 86400), "DIS.4204")
    refused(lambda: dis.show_partition_metrics(ShowPartitionMetricsRequest(
        stream_name=name, partition_id="9", label="total_put_bytes_per_partition",
        start_time=start, end_time=end)), "DIS.4302")


# --- apps and checkpoints --------------------------------------------------------------------

def test_apps_checkpoints_and_consumer_state(fgs):
    dis = dis_client(fgs, project=unique("apps"))
    stream = create_stream(dis, partitions=3)
    put(dis, stream, *({"data": b64(b"x"), "partition_id": "1"} for _ in range(5)))
    for app in ("app-b", "app-a", "app-c"):
        dis.create_app(CreateAppRequest(body=CreateAppReq(app_name=app)))
    refused(lambda: dis.create_app(CreateAppRequest(body=CreateAppReq(app_name="app-a"))), "DIS.4330")
    refused(lambda: dis.create_app(CreateAppRequest(body=CreateAppReq(app_name="bad name"))), "DIS.4200")
    apps = dis.list_app(ListAppRequest(limit=2))
    assert ([a.app_name for a in apps.apps], apps.has_more_app, apps.total_number) == (["app-a", "app-b"], True, 3)
    assert [a.app_name for a in dis.list_app(ListAppRequest(start_app_name="app-b")).apps] == ["app-c"]

    def commit(partition, seq, app="app-a", **over):
        dis.commit_checkpoint(CommitCheckpointRequest(body=CommitCheckpointReq(
            app_name=app, checkpoint_type="LAST_READ", stream_name=stream, partition_id=partition,
            sequence_number=seq, **over)))

    def show(partition, app="app-a"):
        return dis.show_checkpoint(ShowCheckpointRequest(
            stream_name=stream, partition_id=partition, app_name=app, checkpoint_type="LAST_READ"))

    assert show("1").sequence_number == "-1"
    commit("shardId-0000000001", "3", metadata="worker-7")
    assert (show("1").sequence_number, show("1").metadata) == ("3", "worker-7")
    commit("1", "4")
    assert show("shardId-0000000001").sequence_number == "4"
    refused(lambda: commit("1", "9"), "DIS.4224")
    refused(lambda: commit("1", "4", app="nobody"), "DIS.4332")
    refused(lambda: commit("5", "0"), "DIS.4302")
    refused(lambda: commit("1", "4", metadata="m" * 1001), "DIS.4200")
    refused(lambda: dis.commit_checkpoint(CommitCheckpointRequest(body=CommitCheckpointReq(
        app_name="app-a", checkpoint_type="FIRST_READ", stream_name=stream, partition_id="1",
        sequence_number="1"))), "DIS.4200")

    state = dis.show_consumer_state(ShowConsumerStateRequest(app_name="app-a", stream_name=stream))
    assert [(s.partition_id, s.sequence_number, s.earliest_offset, s.latest_offset, s.status)
            for s in state.partition_consuming_states] == [
        ("shardId-0000000000", "-1", 0, 0, "ACTIVE"),
        ("shardId-0000000001", "4", 0, 5, "ACTIVE"),
        ("shardId-0000000002", "-1", 0, 0, "ACTIVE")]
    page = dis.show_consumer_state(ShowConsumerStateRequest(
        app_name="app-a", stream_name=stream, limit=1, start_partition_id="shardId-0000000000"))
    assert ([s.partition_id for s in page.partition_consuming_states], page.has_more) == (["shardId-0000000001"], True)
    refused(lambda: dis.show_consumer_state(ShowConsumerStateRequest(app_name="nobody", stream_name=stream)),
            "DIS.4332")

    shown = dis.show_app(ShowAppRequest(app_name="app-a"))
    assert shown.commit_checkpoint_stream_names == [stream] and len(shown.app_id) == 32
    assert [a.app_name for a in dis.list_app(ListAppRequest(stream_name=stream)).apps] == ["app-a"]

    dis.delete_checkpoint(DeleteCheckpointRequest(stream_name=stream, app_name="app-a",
                                                  checkpoint_type="LAST_READ", partition_id="1"))
    assert show("1").sequence_number == "-1"
    refused(lambda: dis.delete_checkpoint(DeleteCheckpointRequest(
        stream_name=stream, app_name="app-a", checkpoint_type="LAST_READ")), "DIS.4375")
    dis.delete_app(DeleteAppRequest(app_name="app-a"))
    refused(lambda: dis.show_app(ShowAppRequest(app_name="app-a")), "DIS.4332")
    refused(lambda: dis.delete_app(DeleteAppRequest(app_name="app-a")), "DIS.4332")


def test_the_app_quota_is_enforced(fresh_fgs):
    dis = dis_client(fresh_fgs("--dis-app-quota", "2"))
    dis.create_app(CreateAppRequest(body=CreateAppReq(app_name="one")))
    dis.create_app(CreateAppRequest(body=CreateAppReq(app_name="two")))
    refused(lambda: dis.create_app(CreateAppRequest(body=CreateAppReq(app_name="three"))), "DIS.4329")
    dis.delete_app(DeleteAppRequest(app_name="one"))
    dis.create_app(CreateAppRequest(body=CreateAppReq(app_name="three")))


def test_dis_requests_are_signed_and_confined_to_their_project(auth_fgs):
    dis = dis_client(auth_fgs, ak=AK, sk=SK)
    name = create_stream(dis)
    assert put(dis, name, {"data": b64(b"signed")}).failed_record_count == 0
    assert base64.b64decode(read_all(dis, name, "0")[0].data) == b"signed"
    wrong = dis_client(auth_fgs, ak=AK, sk="not-the-secret")
    refused(lambda: wrong.list_streams(ListStreamsRequest()), "APIGW.0301", status=401)
    other = dis_client(auth_fgs, project=OTHER_PROJECT, ak=AK, sk=SK)
    with pytest.raises(ClientRequestException) as e:
        other.list_streams(ListStreamsRequest())
    assert e.value.status_code == 403


def test_a_policy_shares_a_stream_with_another_project(auth_fgs):
    owner = dis_client(auth_fgs, ak=AK, sk=SK)
    guest = dis_client(auth_fgs, project=OTHER_PROJECT, ak="other-ak", sk="other-sk")
    name = create_stream(owner)
    stream_id = owner.show_stream(ShowStreamRequest(stream_name=name)).stream_id
    path = "/v2/%s/streams/%s/policies" % (PROJECT, name)

    def policy(method, expect, **body):
        r = signed(auth_fgs, method, path, body={"stream_id": stream_id, **body},
                   headers={"Content-Type": "application/json"})
        assert r.status_code == expect, r.text
        return r

    def guest_put():
        return guest.send_records(SendRecordsRequest(body=PutRecordsRequest(
            stream_name=name, stream_id=stream_id, records=[PutRecordsRequestEntry(data=b64(b"from-guest"))])))

    refused(guest_put, "DIS.4301")
    policy("POST", 201, principal_name="%s.*" % OTHER_PROJECT, action_type="putRecords", effect="accept")
    # A user-level rule names a user the guest's credential is not.
    policy("POST", 201, principal_name="%s.alice" % OTHER_PROJECT, action_type="getRecords")
    rules = owner.list_policies(ListPoliciesRequest(stream_name=name))
    assert rules.stream_id == stream_id
    assert [(r.principal_name, r.action_type, r.effect) for r in rules.rules] == [
        ("%s.*" % OTHER_PROJECT, "putRecords", "accept"), ("%s.alice" % OTHER_PROJECT, "getRecords", "accept")]
    assert guest_put().failed_record_count == 0
    assert base64.b64decode(read_all(owner, name, "0")[0].data) == b"from-guest"
    # The SDK's show_cursor has no stream-id (DIS's API has): signed by hand.
    by_id = lambda: signed(auth_fgs, "GET", "/v2/%s/cursors" % OTHER_PROJECT, ak="other-ak", sk="other-sk",
                           query={"stream-id": stream_id, "partition-id": "0", "cursor-type": "TRIM_HORIZON"})
    assert (by_id().status_code, by_id().json()["errorCode"]) == (400, "DIS.4301")
    policy("POST", 201, principal_name="%s.*" % OTHER_PROJECT, action_type="getRecords")
    got = read(guest, by_id().json()["partition_cursor"]).records
    assert [base64.b64decode(r.data) for r in got] == [b"from-guest"]

    for bad in ({"principal_name": "no-dot", "action_type": "putRecords"},
                {"principal_name": "%s.*" % OTHER_PROJECT, "action_type": "deleteRecords"},
                {"principal_name": "%s.*" % OTHER_PROJECT, "action_type": "putRecords", "effect": "deny"},
                {"principal_name": "%s.*" % OTHER_PROJECT, "action_type": "putRecords", "stream_id": "other"}):
        assert policy("POST", 400, **bad).json()["errorCode"] == "DIS.4200"
    policy("DELETE", 204, principal_name="%s.*" % OTHER_PROJECT)
    assert policy("DELETE", 400, principal_name="%s.*" % OTHER_PROJECT).json()["errorCode"] == "DIS.4200"
    refused(guest_put, "DIS.4301")
    # The guest cannot manage the owner's policies: its credential does not allow the project.
    r = signed(auth_fgs, "GET", path, ak="other-ak", sk="other-sk")
    assert r.status_code == 403


# --- durability -----------------------------------------------------------------------------

def test_acknowledged_records_survive_kill_9(fresh_fgs):
    """100 000 records with random keys over 8 partitions, the host killed with SIGKILL while
    they are sent: after a restart every acknowledged record reads back exactly once, in
    per-partition order, byte for byte."""
    host = fresh_fgs()
    dis = dis_client(host)
    name = create_stream(dis, partitions=8)
    rng = random.Random(7)
    keys = (os.urandom(8).hex() for _ in range(100_000))
    # Each record's data starts with its key: no two are alike.
    batches = [[(k, k.encode() + rng.randbytes(rng.randint(0, 200))) for k in (next(keys) for _ in range(500))]
               for _ in range(200)]
    acked = {}  # (partition, seq) -> data
    lock = threading.Lock()
    sent = [0]

    def send(batch):
        result = put(dis, name, *({"data": b64(d), "partition_key": k} for k, d in batch))
        with lock:
            for (_, d), r in zip(batch, result.records):
                assert r.error_code is None
                key = (int(r.partition_id[len("shardId-"):]), int(r.sequence_number))
                assert key not in acked
                acked[key] = d

    def sender(mine):
        for batch in mine:
            try:
                send(batch)
            except Exception:
                return
            with lock:
                sent[0] += 1

    threads = [threading.Thread(target=sender, args=(batches[i:100:2],)) for i in range(2)]
    for t in threads:
        t.start()
    while sent[0] < 40:
        time.sleep(0.005)
    host.proc.send_signal(signal.SIGKILL)
    host.proc.wait()
    for t in threads:
        t.join()
    host.log.close()
    assert 40 <= sent[0] < 100
    host.start()
    dis = dis_client(host)  # on the restarted host's port
    for batch in batches[100:]:
        send(batch)
    assert len(acked) >= 140 * 500

    stored = {}
    for p in range(8):
        records = read_all(dis, name, str(p))
        seqs = [int(r.sequence_number) for r in records]
        assert seqs == list(range(len(seqs))), "partition %d is not dense" % p
        for r in records:
            stored[(p, int(r.sequence_number))] = base64.b64decode(r.data)
    for key, data in acked.items():
        assert stored.get(key) == data, key
    # Nothing acknowledged is stored twice.
    once = set(acked.values())
    assert sum(1 for d in stored.values() if d in once) == len(acked)
    # Timestamps and sequence numbers still find their records after the restart.
    p, seq = max(acked)
    at = read(dis, cursor(dis, name, str(p), "AFTER_SEQUENCE_NUMBER", starting_sequence_number=str(seq - 1)))
    assert base64.b64decode(at.records[0].data) == acked[(p, seq)]
    ts = read_all(dis, name, str(p))[seq // 2].timestamp
    first = read(dis, cursor(dis, name, str(p), "AT_TIMESTAMP", timestamp=ts)).records[0]
    assert first.timestamp == ts and int(first.sequence_number) <= seq // 2
