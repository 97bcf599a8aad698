//! Running streams: consume Kafka, filter, transform, deliver in batches, commit.
//!
//! Each started stream is a task with its own Kafka consumer (group `source_kafka.group`,
//! `auto.offset.reset` = `seek_to`, no auto-commit). It collects up to `batch_window.count`
//! records, waiting at most `batch_window.interval` seconds after the first, turns each record
//! into a CloudEvents 1.0 envelope, keeps those the filter passes, transforms them and
//! delivers them to the sink. Offsets are committed only after the sink succeeded, so
//! delivery is at least once; a failed batch is retried whole, with backoff, up to
//! `batch_window.time` times (0: until it succeeds); then the stream goes to ERROR and stops
//! without committing, so nothing is skipped. A broker that cannot be reached puts the
//! stream in ERROR with the reason; it returns to RUNNING when records flow again.
//!
//! The envelope of a record (fgs's choice; EventGrid does not document it):
//! `{"specversion": "1.0", "id": "<topic>-<partition>-<offset>", "source": "HC.Kafka",
//! "type": "kafka:message", "subject": "<topic>", "time": "<record timestamp, RFC 3339>",
//! "datacontenttype": "application/json", "data": {"topic", "partition", "offset", "key",
//! "value" (JSON when it parses, else a string), "timestamp" (ms)}}`. A FunctionGraph sink
//! receives one event as the event when `batch_window.count` is 1, else a JSON array of the
//! batch's events.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::api::{ERROR, RUNNING};
use crate::definition::Definition;
use crate::metrics::StreamMetrics;
use crate::store::{StoredStream, StreamStore};

/// A delivery in progress.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// The FunctionGraph side of the host: invokes a function with a payload.
pub trait FunctionSink: Send + Sync + 'static {
    /// Invokes the function `urn` of `project_id` with `payload`; `sync` waits for the result
    /// (a function error is a failed delivery), otherwise the request is accepted durably.
    fn deliver<'a>(
        &'a self,
        project_id: &'a str,
        urn: &'a str,
        payload: Vec<u8>,
        sync: bool,
    ) -> SinkFuture<'a>;
}

/// The running streams of the host.
pub struct Engine {
    store: StreamStore,
    sink: Arc<dyn FunctionSink>,
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    retry_delay: Duration,
    metrics: StreamMetrics,
}

impl Engine {
    pub fn new(
        store: StreamStore,
        sink: Arc<dyn FunctionSink>,
        retry_delay: Duration,
        metrics: StreamMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            sink,
            running: Mutex::new(HashMap::new()),
            retry_delay,
            metrics,
        })
    }

    /// Starts consuming; the stream is RUNNING.
    pub fn start(self: &Arc<Self>, stream: &StoredStream) -> Result<(), String> {
        let definition = Definition::parse(&stream.definition).map_err(|e| e.to_string())?;
        self.stop(&stream.id);
        let (tx, rx) = watch::channel(false);
        self.running.lock().unwrap().insert(stream.id.clone(), tx);
        self.set_status(stream, RUNNING, None);
        tokio::spawn(run(self.clone(), stream.clone(), definition, rx));
        Ok(())
    }

    /// Stops consuming (if it was); the caller sets the new status.
    pub fn stop(&self, id: &str) {
        if let Some(stop) = self.running.lock().unwrap().remove(id) {
            let _ = stop.send(true);
        }
    }

    /// Starts again every stream that was running (or failing) when the host stopped.
    pub fn resume(self: &Arc<Self>) -> Result<usize, rusqlite::Error> {
        let streams = self.store.with_status(&[RUNNING, ERROR])?;
        for stream in &streams {
            if let Err(e) = self.start(stream) {
                tracing::error!(stream = %stream.id, error = %e, "cannot resume event stream");
            }
        }
        Ok(streams.len())
    }

    fn set_status(&self, stream: &StoredStream, status: &str, reason: Option<&str>) {
        if let Some(reason) = reason {
            tracing::warn!(stream = %stream.id, %reason, "event stream {status}");
        }
        if let Err(e) = self
            .store
            .set_status(&stream.project_id, &stream.id, status)
        {
            tracing::error!(stream = %stream.id, error = %e, "cannot record event stream status");
        }
    }
}

/// One record as delivered.
struct Record {
    topic: String,
    partition: i32,
    offset: i64,
    event: Value,
}

fn envelope(m: &BorrowedMessage<'_>) -> Record {
    let value = m
        .payload()
        .map(|p| serde_json::from_slice(p).unwrap_or_else(|_| json!(String::from_utf8_lossy(p))));
    let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
    let ms = m.timestamp().to_millis().unwrap_or(0);
    let time = chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let event = json!({
        "specversion": "1.0",
        "id": format!("{}-{}-{}", m.topic(), m.partition(), m.offset()),
        "source": "HC.Kafka",
        "type": "kafka:message",
        "subject": m.topic(),
        "time": time,
        "datacontenttype": "application/json",
        "data": {"topic": m.topic(), "partition": m.partition(), "offset": m.offset(), "key": key, "value": value, "timestamp": ms},
    });
    Record {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        event,
    }
}

fn consumer(source: &Value) -> Result<StreamConsumer, String> {
    let text = |k: &str| {
        source
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", text("addr"))
        .set("group.id", text("group"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", text("seek_to"))
        .set("session.timeout.ms", "10000");
    if source
        .get("enable_sasl_ssl")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        let mechanism = source
            .get("sasl_mechanism")
            .and_then(Value::as_str)
            .unwrap_or("PLAIN");
        config
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", mechanism)
            .set("sasl.username", text("user_name"))
            .set("sasl.password", text("password"));
    }
    let consumer: StreamConsumer = config
        .create()
        .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
    consumer
        .subscribe(&[&text("topic")])
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    Ok(consumer)
}

async fn run(
    engine: Arc<Engine>,
    stream: StoredStream,
    definition: Definition,
    mut stop: watch::Receiver<bool>,
) {
    let json = &definition.json;
    let consumer = match consumer(&json["source"]["source_kafka"]) {
        Ok(c) => c,
        Err(reason) => return engine.set_status(&stream, ERROR, Some(&reason)),
    };
    let window = &json["option"]["batch_window"];
    let count = window["count"].as_u64().unwrap_or(1) as usize;
    let interval = Duration::from_secs(window["interval"].as_u64().unwrap_or(0));
    let retries = window["time"].as_u64().unwrap_or(0);
    let sink = &json["sink"];
    let mut failing = false;
    loop {
        let first = tokio::select! {
            _ = stop.changed() => return,
            m = consumer.recv() => m,
        };
        let mut batch = match first {
            Ok(m) => vec![envelope(&m)],
            Err(e) => {
                failing = true;
                engine.set_status(&stream, ERROR, Some(&format!("Kafka source: {e}")));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if failing {
            failing = false;
            engine.set_status(&stream, RUNNING, None);
        }
        let deadline = tokio::time::Instant::now() + interval;
        while batch.len() < count {
            tokio::select! {
                _ = stop.changed() => return,
                m = consumer.recv() => match m {
                    Ok(m) => batch.push(envelope(&m)),
                    Err(_) => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let events: Vec<Value> = batch
            .iter()
            .filter(|r| {
                definition
                    .filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&r.event))
            })
            .map(|r| definition.transform.apply(&r.event))
            .collect();
        let label = [stream.id.as_str()];
        engine
            .metrics
            .consumed
            .with_label_values(&label)
            .inc_by(batch.len() as u64);
        engine
            .metrics
            .filtered_out
            .with_label_values(&label)
            .inc_by((batch.len() - events.len()) as u64);
        let passed = events.len() as u64;
        if !events.is_empty() {
            let payload = if count == 1 {
                events[0].clone()
            } else {
                Value::Array(events)
            };
            let mut attempt = 0u64;
            loop {
                let delivered = tokio::select! {
                    _ = stop.changed() => return,
                    r = deliver(&engine, &stream, sink, &payload) => r,
                };
                if delivered.is_err() {
                    engine.metrics.failed.with_label_values(&label).inc();
                }
                match delivered {
                    Ok(()) => {
                        engine
                            .metrics
                            .delivered
                            .with_label_values(&label)
                            .inc_by(passed);
                        break;
                    }
                    Err(e) if retries == 0 || attempt < retries => {
                        attempt += 1;
                        engine.metrics.retries.with_label_values(&label).inc();
                        tracing::warn!(stream = %stream.id, attempt, error = %e, "event stream delivery failed; retrying");
                        let backoff = engine.retry_delay.saturating_mul(1 << attempt.min(6));
                        tokio::select! {
                            _ = stop.changed() => return,
                            _ = tokio::time::sleep(backoff.min(Duration::from_secs(60))) => {}
                        }
                    }
                    Err(e) => {
                        engine.running.lock().unwrap().remove(&stream.id);
                        consumer.unsubscribe();
                        return engine.set_status(
                            &stream,
                            ERROR,
                            Some(&format!("delivery failed after {retries} retries, stopped without committing: {e}")),
                        );
                    }
                }
            }
        }
        if let Err(e) = commit(&consumer, &batch) {
            engine.set_status(&stream, ERROR, Some(&format!("cannot commit offsets: {e}")));
        }
    }
}

async fn deliver(
    engine: &Engine,
    stream: &StoredStream,
    sink: &Value,
    payload: &Value,
) -> Result<(), String> {
    match sink["name"].as_str() {
        Some("HC.FunctionGraph") => {
            let fg = &sink["sink_fg"];
            let urn = fg["urn"].as_str().unwrap_or_default();
            let sync = fg["invoke_type"].as_str() == Some("SYNC");
            engine
                .sink
                .deliver(
                    &stream.project_id,
                    urn,
                    payload.to_string().into_bytes(),
                    sync,
                )
                .await
        }
        other => Err(format!("sink {other:?} is not available yet")),
    }
}

/// Commits, per partition, the offset after the batch's last record.
fn commit(consumer: &StreamConsumer, batch: &[Record]) -> Result<(), String> {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for r in batch {
        let e = next.entry((r.topic.as_str(), r.partition)).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|e| e.to_string())?;
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .map_err(|e| e.to_string())
}
