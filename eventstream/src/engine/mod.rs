//! Running streams: consume Kafka, filter, transform, deliver in batches, commit.
//!
//! Each started stream is a task with its own Kafka consumer (group `source_kafka.group`,
//! `auto.offset.reset` = `seek_to`, no auto-commit) feeding `thread_num` [`lane`]s, the
//! stream's parallel sinks; a partition always goes to the same lane, so its order holds.
//! Offsets are committed only after the sink succeeded, so delivery is at least once; when a
//! lane's retries run out the stream goes to ERROR and stops without committing, so nothing is
//! skipped. A broker that cannot be reached puts the stream in ERROR with the reason; it
//! returns to RUNNING when records flow again.
//!
//! - [`envelope`]: a consumed record and its CloudEvents envelope.
//! - [`kafka`]: the source's consumer (and its lag) and a Kafka sink's producer.
//! - [`source`]: consuming in lanes, batching, delivery with retries, commits (shared with
//!   functions' Kafka triggers).
//! - [`sink`]: the FunctionGraph and Kafka sinks, and the batch form they receive.

pub mod envelope;
pub mod kafka;
pub mod sink;
pub mod source;

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::api::{ERROR, RUNNING};
use crate::definition::Definition;
use crate::metrics::{StreamCounters, StreamMetrics};
use crate::store::{StoredStream, StreamStore};
use envelope::Record;
use sink::Sink;
use source::{Consumption, Deliver, Health, SourceCounters, Window};

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

/// A started stream: which start it is, and how to stop it.
struct Started {
    generation: u64,
    stop: watch::Sender<bool>,
}

/// The running streams of the host.
pub struct Engine {
    store: StreamStore,
    sink: Arc<dyn FunctionSink>,
    running: Mutex<HashMap<String, Started>>,
    starts: AtomicU64,
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
            starts: AtomicU64::new(0),
            retry_delay,
            metrics,
        })
    }

    /// Starts consuming; the stream is RUNNING.
    pub fn start(self: &Arc<Self>, stream: &StoredStream) -> Result<(), String> {
        let definition = Definition::parse(&stream.definition).map_err(|e| e.to_string())?;
        let generation = self.starts.fetch_add(1, Ordering::Relaxed);
        let (stop, stopped) = watch::channel(false);
        let previous = self
            .running
            .lock()
            .unwrap()
            .insert(stream.id.clone(), Started { generation, stop });
        if let Some(previous) = previous {
            let _ = previous.stop.send(true);
        }
        self.set_status(stream, RUNNING, None);
        tokio::spawn(run(
            self.clone(),
            stream.clone(),
            definition,
            generation,
            stopped,
        ));
        Ok(())
    }

    /// Stops consuming (if it was); the caller sets the new status.
    pub fn stop(&self, id: &str) {
        if let Some(started) = self.running.lock().unwrap().remove(id) {
            let _ = started.stop.send(true);
            self.metrics.forget_lag(id);
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

    /// Ends start `generation` of a stream in ERROR, unless it was stopped or started again.
    fn fail(&self, stream: &StoredStream, generation: u64, reason: &str) {
        let mut running = self.running.lock().unwrap();
        if is_current(&running, stream, generation) {
            running.remove(&stream.id);
            self.metrics.forget_lag(&stream.id);
            self.set_status(stream, ERROR, Some(reason));
        }
    }

    /// Records the status of start `generation` while it is still the stream's current start.
    /// The status is written under the lock `stop` takes, so a PAUSE or a new START meanwhile
    /// has the last word.
    fn report(&self, stream: &StoredStream, generation: u64, status: &str, reason: Option<&str>) {
        let running = self.running.lock().unwrap();
        if is_current(&running, stream, generation) {
            self.set_status(stream, status, reason);
        }
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

fn is_current(running: &HashMap<String, Started>, stream: &StoredStream, generation: u64) -> bool {
    running
        .get(&stream.id)
        .is_some_and(|s| s.generation == generation)
}

/// One start of a stream: its consumer delivering through its rules to its sink.
async fn run(
    engine: Arc<Engine>,
    stream: StoredStream,
    definition: Definition,
    generation: u64,
    stop: watch::Receiver<bool>,
) {
    let definition = Arc::new(definition);
    let json = &definition.json;
    let counters = engine.metrics.stream(&stream.id);
    let source_kafka = &json["source"]["source_kafka"];
    let topic = source_kafka["topic"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let member = format!("fgs-{}", stream.id);
    let clients =
        kafka::consumer(&member, source_kafka, &[topic], counters.lag.clone()).and_then(|source| {
            let sink = Sink::new(json, &stream.project_id, &engine.sink, &engine.store)?;
            Ok((source, sink))
        });
    let (source, sink) = match clients {
        Ok(clients) => clients,
        Err(reason) => return engine.fail(&stream, generation, &reason),
    };
    let consumption = Consumption {
        name: stream.id.clone(),
        source: Arc::new(source),
        window: Window::of(json),
        threads: json["option"]["thread_num"].as_u64().unwrap_or(1).max(1) as usize,
        retry_delay: engine.retry_delay,
        counters: SourceCounters {
            consumed: counters.consumed.clone(),
            retries: counters.retries.clone(),
            lag: counters.lag.clone(),
        },
    };
    let delivery = Arc::new(StreamDelivery {
        rules: definition.clone(),
        sink,
        counters,
    });
    let health = |health| match health {
        Health::Running => engine.report(&stream, generation, RUNNING, None),
        Health::Failing(reason) => engine.report(&stream, generation, ERROR, Some(&reason)),
    };
    if let Err(reason) = consumption.run(delivery, stop, health).await {
        engine.fail(&stream, generation, &reason);
    }
}

/// A stream's delivery of a batch: the events its filter passes, transformed, to its sink.
struct StreamDelivery {
    rules: Arc<Definition>,
    sink: Sink,
    counters: StreamCounters,
}

impl Deliver for StreamDelivery {
    fn deliver<'a>(&'a self, batch: &'a [Record], attempt: u64) -> SinkFuture<'a> {
        Box::pin(async move {
            let envelopes: Vec<Value> = batch.iter().map(Record::envelope).collect();
            let originals: Vec<&Value> = envelopes
                .iter()
                .filter(|event| self.rules.filter.as_ref().is_none_or(|f| f.matches(event)))
                .collect();
            if attempt == 0 {
                self.counters
                    .filtered_out
                    .inc_by((batch.len() - originals.len()) as u64);
            }
            if originals.is_empty() {
                return Ok(());
            }
            let events: Vec<Cow<'_, Value>> = originals
                .iter()
                .map(|e| self.rules.transform.apply(e))
                .collect();
            match self.sink.deliver(&events, &originals).await {
                Ok(()) => {
                    self.counters.delivered.inc_by(events.len() as u64);
                    Ok(())
                }
                Err(e) => {
                    self.counters.failed.inc();
                    Err(e)
                }
            }
        })
    }
}
