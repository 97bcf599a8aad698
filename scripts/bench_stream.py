"""The event-stream benchmark of BENCHMARKS.md (run by scripts/bench-stream.sh).

1. Throughput: RECORDS records pre-produced into a PARTITIONS-partition topic of a tansu broker
   (memory storage); a stream (seek_to earliest, batch_window.count COUNT, thread_num THREADS,
   SYNC) delivers them to a no-op Python function. The rate is read from
   fgs_stream_delivered_total, sustained = between 10% and 90% of the records.
   With SOURCE=rocketmq: a rocketmq-rust 1.0.0 name server and broker instead (4 queues), the
   RECORDS messages sent in batches of 1000 by eventstream/examples/rocketmq_produce, the
   broker's maxTransferCountOnMessageInMemory PULL (default 128; the broker's own default, 32,
   caps the messages a pull gets), and an HC.COMMUNITY_ROCKETMQ stream with
   consumer_batch_max_size COUNT (latency is not measured).
2. Latency: one record at a time (every 20 ms) through a stream with batch_window.count 1; the
   function reports time.time() minus the producer's time.time() carried in the record. The
   same measured for a plain consumer of the broker (kafka-python, default fetch settings)
   gives the broker's share: tansu 0.6.0 answers every fetch only after sleeping half of the
   consumer's fetch wait (fetch.wait.max.ms, 500 ms by default), even when it has records.
"""

import base64
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from conftest import Fgs, free_port, python_fn  # noqa: E402

RECORDS = int(os.environ.get("RECORDS", 500_000))
PARTITIONS = int(os.environ.get("PARTITIONS", 4))
THREADS = int(os.environ.get("THREADS", 4))
COUNT = int(os.environ.get("COUNT", 100))
SOURCE = os.environ.get("SOURCE", "kafka")
# Messages a RocketMQ broker answers a pull with from memory (its default is 32; fgs asks for 128).
PULL = int(os.environ.get("PULL", 128))
LATENCY_SAMPLES = int(os.environ.get("LATENCY_SAMPLES", 500))

NOOP = "def handler(event, context):\n    return 'ok'\n"


def start_broker(work):
    port = free_port()
    addr = "127.0.0.1:%d" % port
    broker = subprocess.Popen(
        [os.environ["TANSU_BIN"], "broker", "--listener-url", "tcp://" + addr, "--advertised-listener-url",
         "tcp://" + addr, "--storage-engine", "memory://tansu/"],
        stdout=open(os.path.join(work, "tansu.log"), "wb"), stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            KafkaAdminClient(bootstrap_servers=addr).close()
            return broker, addr
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("tansu did not start")


def create_topic(addr, name, partitions):
    admin = KafkaAdminClient(bootstrap_servers=addr)
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    admin.close()


def stream(host, addr, topic, urn, count, threads):
    if SOURCE == "rocketmq":
        source = {"name": "HC.COMMUNITY_ROCKETMQ", "source_community_rocketmq": {
            "addr": addr, "group": "GID-" + topic, "topic": topic, "vpc_id": "v", "subnet_id": "s",
            "consumer_batch_max_size": count}}
    else:
        source = {"name": "HC.Kafka", "source_kafka": {"addr": addr, "group": "g-" + topic, "topic": topic,
                                                       "seek_to": "earliest"}}
    body = {"name": "bench-%s" % topic,
            "source": source,
            "sink": {"name": "HC.FunctionGraph", "sink_fg": {"urn": urn, "invoke_type": "SYNC"}},
            "option": {"thread_num": threads, "batch_window": {"count": count, "interval": 1}}}
    base = "%s/v1/%s/eventstreamings" % (host.url, "0a1b2c3d4e5f60718293a4b5c6d7e8f9")
    sid = host.http.post(base, json=body).json()["eventStreamingID"]
    r = host.http.post(base + "/operate/" + sid, json={"operation": "START"})
    assert r.status_code == 200, r.text
    return sid


def delivered(host, sid):
    text = host.http.get(host.url + "/metrics").text
    m = re.search(r'^fgs_stream_delivered_total\{stream="%s"\} (\d+)' % sid, text, re.M)
    return int(m.group(1)) if m else 0


def throughput(host, addr, mq=None):
    topic = "throughput"
    started = time.time()
    if mq:
        mq.produce(topic, RECORDS, batch=1000)
    else:
        create_topic(addr, topic, PARTITIONS)
        producer = KafkaProducer(bootstrap_servers=addr, linger_ms=20, batch_size=1 << 20)
        pad = "x" * 64
        for i in range(RECORDS):
            producer.send(topic, key=b"k%d" % (i % 1000), value=b'{"i": %d, "pad": "%s"}' % (i, pad.encode()))
        producer.flush()
        producer.close()
    print("produced %d records in %.1fs" % (RECORDS, time.time() - started), flush=True)
    fn = host.create(**python_fn("noop", NOOP, timeout=10, memory_size=256))
    host.invoke(fn["func_urn"], {})  # a warm instance
    sid = stream(host, addr, topic, fn["func_urn"], COUNT, THREADS)
    samples = []
    while True:
        samples.append((time.time(), delivered(host, sid)))
        if samples[-1][1] >= RECORDS:
            break
        time.sleep(0.2)
    first = next(t for t, n in samples if n > 0)
    lo = next((t, n) for t, n in samples if n >= RECORDS * 0.1)
    hi = next((t, n) for t, n in samples if n >= RECORDS * 0.9)
    print("throughput: %d events in %.2fs from the first delivery: %.0f events/s overall, %.0f events/s sustained "
          "(10%%–90%%), %s source, batch %d, thread_num %d, %d partitions"
          % (RECORDS, samples[-1][0] - first, RECORDS / (samples[-1][0] - first), (hi[1] - lo[1]) / (hi[0] - lo[0]),
             SOURCE, COUNT, THREADS, 4 if mq else PARTITIONS), flush=True)


class Latencies(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        Latencies.seen.append(float(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def percentiles(seconds):
    ms = sorted(x * 1000 for x in seconds)
    pct = lambda p: ms[min(len(ms) - 1, int(len(ms) * p))]
    return "%d samples, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms" % (len(ms), pct(0.5), pct(0.9), pct(0.99))


def produce_paced(producer, topic, samples):
    for _ in range(samples):
        producer.send(topic, value=json.dumps({"t": time.time()}).encode())
        producer.flush()
        time.sleep(0.02)


def broker_latency(addr):
    """The same pacing read by a plain consumer: what the broker alone costs."""
    topic = "latency-baseline"
    create_topic(addr, topic, 1)
    consumer = KafkaConsumer(topic, bootstrap_servers=addr, group_id="baseline", auto_offset_reset="earliest")
    producer = KafkaProducer(bootstrap_servers=addr, linger_ms=0)
    while not consumer.poll(timeout_ms=500):  # joined its group
        producer.send(topic, value=json.dumps({"t": time.time()}).encode())
        producer.flush()
    seen = []
    thread = threading.Thread(target=produce_paced, args=(producer, topic, LATENCY_SAMPLES))
    thread.start()
    while len(seen) < LATENCY_SAMPLES:
        for records in consumer.poll(timeout_ms=100).values():
            now = time.time()
            seen.extend(now - json.loads(r.value)["t"] for r in records)
    thread.join()
    consumer.close()
    print("latency of the broker alone (kafka-python consumer, produce → poll returns): " + percentiles(seen), flush=True)


def latency(host, addr):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Latencies)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = ("import time, urllib.request\n"
              "def handler(event, context):\n"
              "    now = time.time()\n"
              "    urllib.request.urlopen('http://127.0.0.1:%d/', data=str(now - event['data']['value']['t']).encode()).read()\n"
              "    return 'ok'\n" % server.server_address[1])
    fn = host.create(**python_fn("latency", source, timeout=10))
    host.invoke(fn["func_urn"], {"data": {"value": {"t": time.time()}}})  # a warm instance
    Latencies.seen.clear()
    topic = "latency"
    create_topic(addr, topic, 1)
    producer = KafkaProducer(bootstrap_servers=addr, linger_ms=0)
    stream(host, addr, topic, fn["func_urn"], 1, 1)
    while not Latencies.seen:  # until the consumer has joined its group and delivers
        producer.send(topic, value=json.dumps({"t": time.time()}).encode())
        producer.flush()
        time.sleep(0.5)
    time.sleep(1)
    Latencies.seen.clear()
    produce_paced(producer, topic, LATENCY_SAMPLES)
    deadline = time.time() + 30
    while len(Latencies.seen) < LATENCY_SAMPLES and time.time() < deadline:
        time.sleep(0.1)
    print("latency through fgs (batch_window.count 1, produce → function running): " + percentiles(Latencies.seen),
          flush=True)
    server.shutdown()


def main():
    if SOURCE == "rocketmq":
        from test_eventstream_rocketmq import RocketMq
        mq = RocketMq(store="maxTransferCountOnMessageInMemory = %d" % PULL)
        with tempfile.TemporaryDirectory(prefix="fgs-bench-stream-") as work:
            host = Fgs(os.path.join(work, "fgs")).start()
            try:
                throughput(host, mq.addr, mq)
            finally:
                host.stop()
                mq.close()
        return
    with tempfile.TemporaryDirectory(prefix="fgs-bench-stream-") as work:
        broker, addr = start_broker(work)
        host = Fgs(os.path.join(work, "fgs")).start()
        try:
            if RECORDS:
                throughput(host, addr)
            if LATENCY_SAMPLES:
                broker_latency(addr)
                latency(host, addr)
        finally:
            host.stop()
            broker.terminate()
            broker.wait()


if __name__ == "__main__":
    main()
