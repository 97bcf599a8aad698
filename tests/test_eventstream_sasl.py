"""SASL over SSL (`enable_sasl_ssl`) for a stream's Kafka source and a Kafka sink's connection:
PLAIN and SCRAM-SHA-512 over TLS, a wrong password, an untrusted certificate.

The broker is tansu behind `sasl_ssl_front.SaslSslFront` (TLS and SASL as a Kafka instance's
SASL_SSL listener does them; see that module for why tansu cannot do it itself). fgs trusts the
test certificate through OpenSSL's `SSL_CERT_FILE`."""

import json
import signal
import subprocess
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from conftest import free_port, python_fn, unique
from sasl_ssl_front import SaslSslFront
from test_eventstream import COLLECTOR, TANSU, operate, received, status, values, wait_for
from test_eventstream_api import eg

USERS = {"alice": "secret"}


def sasl(mechanism="PLAIN", password="secret"):
    return {"enable_sasl_ssl": True, "sasl_mechanism": mechanism, "user_name": "alice", "password": password}


@pytest.fixture
def secured_kafka(tmp_path):
    """tansu reachable only through a SASL_SSL front: (address, certificate, front)."""
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    plain, secure = free_port(), free_port()
    broker = subprocess.Popen(
        [TANSU, "broker", "--listener-url", "tcp://127.0.0.1:%d" % plain,
         "--advertised-listener-url", "tcp://127.0.0.1:%d" % secure, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    front = SaslSslFront(secure, ("127.0.0.1", plain), cert, key, USERS)
    addr = "127.0.0.1:%d" % secure
    deadline = time.time() + 20
    while True:
        try:
            KafkaAdminClient(**client_args(addr, cert)).close()
            break
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    yield addr, cert, front
    front.close()
    broker.send_signal(signal.SIGTERM)
    broker.wait(timeout=10)


def client_args(addr, cert):
    return dict(bootstrap_servers=addr, security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                sasl_plain_username="alice", sasl_plain_password="secret", ssl_cafile=cert)


@pytest.fixture
def trusting_host(fresh_fgs, secured_kafka, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", secured_kafka[1])
    return fresh_fgs()


def secured_stream(host, addr, name, sink, security):
    body = {"name": unique("s"),
            "source": {"name": "HC.Kafka", "source_kafka": dict({"addr": addr, "group": unique("g"), "topic": name,
                                                                 "seek_to": "earliest"}, **security)},
            "sink": sink, "option": {"batch_window": {"count": 1, "time": 1}}}
    r = eg(host, "POST", json=body)
    assert r.status_code == 200, r.text
    return r.json()["eventStreamingID"]


def collector_sink(host):
    fn = host.create(**python_fn(unique("sink"), COLLECTOR))
    return fn, {"name": "HC.FunctionGraph", "sink_fg": {"urn": fn["func_urn"], "invoke_type": "SYNC"}}


def test_plain_source_and_scram_sink_over_tls(trusting_host, secured_kafka):
    host = trusting_host
    addr, cert, _ = secured_kafka
    source, out = unique("in"), unique("out")
    admin = KafkaAdminClient(**client_args(addr, cert))
    admin.create_topics([NewTopic(source, 1, 1), NewTopic(out, 1, 1)])
    admin.close()
    producer = KafkaProducer(batch_size=1, **client_args(addr, cert))
    for n in (1, 2):
        producer.send(source, key=b"k", value=json.dumps({"n": n}).encode())
    producer.flush()
    producer.close()
    r = eg(host, "POST", base="/connections", json={"name": unique("conn"), "type": "KAFKA",
                                                    "kafka_detail": dict({"addr": addr}, **sasl("SCRAM-SHA-512"))})
    assert r.status_code == 200, r.text
    sink = {"name": "HC.Kafka", "sink_kafka": {"topic": out, "connectionId": r.json()["id"],
                                               "keyTransform": [{"type": "ORIGINAL"}]}}
    sid = secured_stream(host, addr, source, sink, sasl("PLAIN"))
    operate(host, sid, "START")
    consumer = KafkaConsumer(out, group_id=unique("check"), auto_offset_reset="earliest", consumer_timeout_ms=1000,
                             **client_args(addr, cert))
    got, deadline = [], time.time() + 60
    while len(got) < 2 and time.time() < deadline:
        got.extend(consumer)
    consumer.close()
    assert [(m.key, json.loads(m.value)["data"]["value"]) for m in got] == [(b"k", {"n": 1}), (b"k", {"n": 2})]
    assert status(host, sid) == "RUNNING"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_a_wrong_password_is_an_error_state(trusting_host, secured_kafka, mechanism):
    host = trusting_host
    addr, _, front = secured_kafka
    fn, sink = collector_sink(host)
    sid = secured_stream(host, addr, unique("t"), sink, sasl(mechanism, password="wrong"))
    operate(host, sid, "START")
    wait_for(lambda: status(host, sid) == "ERROR", within=60, what="authentication to fail")
    assert front.failures >= 1
    assert values(received(host, fn)) == []


def test_an_untrusted_certificate_is_an_error_state(fresh_fgs, secured_kafka):
    host = fresh_fgs()
    addr, _, front = secured_kafka
    fn, sink = collector_sink(host)
    sid = secured_stream(host, addr, unique("t"), sink, sasl())
    operate(host, sid, "START")
    wait_for(lambda: status(host, sid) == "ERROR", within=60, what="certificate verification to fail")
    assert front.failures == 0, "no credentials reach a server that was not verified"
