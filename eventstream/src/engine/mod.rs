//! Running streams: consume Kafka or RocketMQ, filter, transform, deliver in batches, commit.
//!
//! Each started stream is a task with its own consumer feeding `thread_num` [`lane`]s, the
//! stream's parallel sinks; a partition (or queue) always goes to the same lane, so its order
//! holds. A Kafka source consumes in group `source_kafka.group` (`auto.offset.reset` =
//! `seek_to`, no auto-commit); a RocketMQ source as [`rocketmq`] describes. Offsets are
//! committed only after the sink succeeded, so delivery is at least once; when a lane's
//! retries run out the stream goes to ERROR and stops without committing, so nothing is
//! skipped. A broker that cannot be reached puts the stream in ERROR with the reason; it
//! returns to RUNNING when records flow again.
//!
//! - [`envelope`]: a consumed record and its CloudEvents envelope.
//! - [`kafka`]: the Kafka source's consumer (and its lag) and a Kafka sink's producer.
//! - [`rocketmq`]: the RocketMQ source's consumer (and its lag), for the three flavours.
//! - [`source`]: consuming in lanes, batching, delivery with retries, commits (shared with
//!   functions' Kafka triggers).
//! - [`sink`]: the FunctionGraph and Kafka sinks, and the batch form they receive.

pub mod envelope;
pub mod kafka;
pub mod rocketmq;
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
use crate::definition::{Definition, RocketMqSettings};
use crate::metrics::{StreamCounters, StreamMetrics};
use crate::store::{StoredStream, StreamStore};
use envelope::Record;
use rocketmq::RocketMqSource;
use sink::Sink;
use source::{Backoff, Consumption, Deliver, Health, Source, SourceCounters, Window};

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
    /// The name servers of the DMS RocketMQ instances the host knows, by instance id.
    dms_instances: HashMap<String, String>,
}

impl Engine {
    pub fn new(
        store: StreamStore,
        sink: Arc<dyn FunctionSink>,
        retry_delay: Duration,
        metrics: StreamMetrics,
        dms_instances: HashMap<String, String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            sink,
            running: Mutex::new(HashMap::new()),
            starts: AtomicU64::new(0),
            retry_delay,
            metrics,
            dms_instances,
        })
    }

    /// The name servers of a RocketMQ source: its `addr`, or those the host maps its DMS
    /// instance to.
    pub fn rocketmq_address(&self, settings: &RocketMqSettings) -> Result<String, String> {
        if let Some(addr) = &settings.addr {
            return Ok(addr.clone());
        }
        let id = settings.instance_id.as_deref().unwrap_or_default();
        self.dms_instances.get(id).cloned().ok_or_else(|| {
            format!(
                "source.source_dms_rocketmq.instance_id {id:?} is not an instance this host knows \
                 (serve --rocketmq-instance {id}=HOST:PORT) and the source gives no addr"
            )
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
    let clients = async {
        let consumption = consumption(&engine, &stream, json, &counters).await?;
        let batch = consumption.window.count;
        let sink = Sink::new(json, batch, &stream.project_id, &engine.sink, &engine.store)?;
        Ok::<_, String>((consumption, sink))
    };
    let (consumption, sink) = match clients.await {
        Ok(clients) => clients,
        Err(reason) => return engine.fail(&stream, generation, &reason),
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

/// A stream's source consumer, and how its records are batched, retried and spread over
/// lanes: the stream's `option`, where a RocketMQ source's own settings (batch size and
/// wait, threads, `max_reconsume_times` at a fixed interval, `consume_timeout`) win.
async fn consumption(
    engine: &Engine,
    stream: &StoredStream,
    json: &Value,
    counters: &StreamCounters,
) -> Result<Consumption, String> {
    let mut window = Window::of(json);
    let mut threads = json["option"]["thread_num"].as_u64().unwrap_or(1).max(1) as usize;
    let mut backoff = Backoff::Doubling(engine.retry_delay);
    let mut timeout = None;
    let member = format!("fgs-{}", stream.id);
    let source: Arc<dyn Source> = match RocketMqSettings::of(&json["source"]) {
        Ok(Some(rocketmq)) => {
            let addr = engine.rocketmq_address(&rocketmq)?;
            window.count = rocketmq.batch.unwrap_or(window.count);
            window.interval = rocketmq.max_wait.unwrap_or(window.interval);
            window.retries = rocketmq.retries;
            threads = rocketmq.threads.unwrap_or(threads);
            backoff = Backoff::Fixed(rocketmq.retry_interval);
            timeout = Some(rocketmq.consume_timeout);
            Arc::new(RocketMqSource::start(&member, &rocketmq, &addr, counters.lag.clone()).await?)
        }
        Ok(None) => {
            let source_kafka = &json["source"]["source_kafka"];
            let topic = source_kafka["topic"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Arc::new(kafka::consumer(
                &member,
                source_kafka,
                &[topic],
                counters.lag.clone(),
            )?)
        }
        Err(e) => return Err(e.to_string()),
    };
    Ok(Consumption {
        name: stream.id.clone(),
        source,
        window,
        threads,
        backoff,
        timeout,
        counters: SourceCounters {
            consumed: counters.consumed.clone(),
            retries: counters.retries.clone(),
            lag: counters.lag.clone(),
        },
    })
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
