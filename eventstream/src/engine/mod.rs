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
//! - [`envelope`]: the CloudEvents envelope of a record.
//! - [`kafka`]: the source's consumer (and its lag) and a Kafka sink's producer.
//! - [`lane`]: batching, rules, delivery with retries, commits.
//! - [`sink`]: the FunctionGraph and Kafka sinks, and the batch form they receive.

pub mod envelope;
pub mod kafka;
pub mod lane;
pub mod sink;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinSet};

use crate::api::{ERROR, RUNNING};
use crate::definition::Definition;
use crate::metrics::StreamMetrics;
use crate::store::{StoredStream, StreamStore};
use envelope::Record;
use lane::{Lane, Window};
use sink::Sink;

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

/// Why a lane ended.
fn lane_ended(ended: Result<Result<(), String>, JoinError>) -> Option<String> {
    match ended {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(e) => Some(format!("a sink lane stopped unexpectedly: {e}")),
    }
}

/// One start of a stream: the consumer loop handing records to the lanes.
async fn run(
    engine: Arc<Engine>,
    stream: StoredStream,
    definition: Definition,
    generation: u64,
    mut stop: watch::Receiver<bool>,
) {
    let definition = Arc::new(definition);
    let json = &definition.json;
    let counters = engine.metrics.stream(&stream.id);
    let clients = kafka::consumer(
        &stream.id,
        &json["source"]["source_kafka"],
        counters.lag.clone(),
    )
    .and_then(|source| {
        let sink = Sink::new(json, &stream.project_id, &engine.sink, &engine.store)?;
        Ok((source, sink))
    });
    let (source, sink) = match clients {
        Ok(clients) => clients,
        Err(reason) => return engine.fail(&stream, generation, &reason),
    };
    let (source, sink) = (Arc::new(source), Arc::new(sink));
    let window = Window::of(json);
    let threads = json["option"]["thread_num"].as_u64().unwrap_or(1).max(1) as usize;
    let topic: Arc<str> = json["source"]["source_kafka"]["topic"]
        .as_str()
        .unwrap_or_default()
        .into();
    let mut lanes = JoinSet::new();
    let inboxes: Vec<mpsc::Sender<Record>> = (0..threads)
        .map(|_| {
            let (inbox, records) = mpsc::channel((window.count * 2).max(256));
            let lane = Lane {
                stream_id: stream.id.clone(),
                topic: topic.clone(),
                rules: definition.clone(),
                sink: sink.clone(),
                source: source.clone(),
                window,
                retry_delay: engine.retry_delay,
                counters: counters.clone(),
            };
            lanes.spawn(lane.run(records, stop.clone()));
            inbox
        })
        .collect();
    let mut failing = false;
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return,
            Some(ended) = lanes.join_next() => match lane_ended(ended) {
                Some(reason) => return engine.fail(&stream, generation, &reason),
                None => return,
            },
            m = source.recv() => m,
        };
        let record = match message {
            Ok(m) => Record::from_message(&m),
            Err(e) => {
                failing = true;
                engine.report(
                    &stream,
                    generation,
                    ERROR,
                    Some(&format!("Kafka source: {e}")),
                );
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if failing {
            failing = false;
            engine.report(&stream, generation, RUNNING, None);
        }
        let lane = &inboxes[record.partition.unsigned_abs() as usize % threads];
        tokio::select! {
            _ = stop.changed() => return,
            Some(ended) = lanes.join_next() => match lane_ended(ended) {
                Some(reason) => return engine.fail(&stream, generation, &reason),
                None => return,
            },
            _ = lane.send(record) => {}
        }
    }
}
