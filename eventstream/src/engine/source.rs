//! Consuming a broker (Kafka or RocketMQ, behind [`Source`]) for whoever delivers the
//! records: an event stream (filter, transform, sink) or a function's Kafka trigger (the
//! FunctionGraph Kafka event). One batching and retry discipline, one commit rule for every
//! broker: only a delivered batch's offsets are committed, so delivery is at least once and
//! nothing is skipped.
//!
//! The consumer hands each record to the lane of its partition or queue (its number mod
//! `threads`), so all records of a partition pass through one lane, in order. A lane cuts its
//! records into batches of up to `window.count`, waiting at most `window.interval` after a
//! batch's first record, and delivers them one after another. A failed batch is retried whole,
//! after the [`Backoff`], up to `window.retries` times (`None`: until it succeeds); when the
//! retries run out the consumption ends with the reason, without committing the batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use serde_json::Value;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinSet};

use super::envelope::Record;
use super::SinkFuture;

/// A broker call in progress.
pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where a consumption's records come from, and where it records what was delivered.
pub trait Source: Send + Sync + 'static {
    /// The next record; an error when the broker cannot be read (the consumption retries
    /// every second).
    fn recv(&self) -> SourceFuture<'_, Record>;
    /// Records that `batch` was delivered: the offset after each partition's last record is
    /// committed (a commit lost to a crash only means the batch is delivered again).
    fn commit<'a>(&'a self, batch: &'a [Record]) -> SourceFuture<'a, ()>;
}

/// The longest pause between two attempts of a failed batch.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What is done with a batch of records; `Ok` lets their offsets be committed. `attempt` is
/// 0 for a batch's first delivery, then counts its retries.
pub trait Deliver: Send + Sync + 'static {
    fn deliver<'a>(&'a self, batch: &'a [Record], attempt: u64) -> SinkFuture<'a>;
}

/// How records are batched and retried.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub count: usize,
    pub interval: Duration,
    /// Retries of a failed batch; `None`: until it succeeds.
    pub retries: Option<u64>,
}

impl Window {
    /// A stream's `option.batch_window` (where `time`, the retries, is 0 for "until it
    /// succeeds").
    pub fn of(json: &Value) -> Self {
        let window = &json["option"]["batch_window"];
        Window {
            count: window["count"].as_u64().unwrap_or(1).max(1) as usize,
            interval: Duration::from_secs(window["interval"].as_u64().unwrap_or(0)),
            retries: window["time"].as_u64().filter(|&n| n != 0),
        }
    }
}

/// The pause before each retry of a failed batch.
#[derive(Debug, Clone, Copy)]
pub enum Backoff {
    /// Twice the last pause (from the first, up to a minute): the Kafka sources'.
    Doubling(Duration),
    /// Always the same: RocketMQ's `suspend_current_queue_time_millis`.
    Fixed(Duration),
}

impl Backoff {
    /// The pause before retry `attempt` (1 for the first retry).
    fn before(self, attempt: u64) -> Duration {
        match self {
            Backoff::Doubling(first) => first.saturating_mul(1 << attempt.min(6)).min(MAX_BACKOFF),
            Backoff::Fixed(pause) => pause,
        }
    }
}

/// The consumption's own counters (deliveries are counted by whoever delivers).
#[derive(Clone)]
pub struct SourceCounters {
    /// Records read.
    pub consumed: IntCounter,
    /// Retries of failed batches.
    pub retries: IntCounter,
    /// Records of the assigned partitions after the committed offsets.
    pub lag: IntGauge,
}

/// The state of a consumption, as it changes.
pub enum Health {
    /// Records are read again after a failure.
    Running,
    /// The broker cannot be read (retried every second).
    Failing(String),
}

/// A consumption: the consumer and how its records are delivered.
pub struct Consumption {
    /// For logs: the stream or trigger consuming.
    pub name: String,
    pub source: Arc<dyn Source>,
    pub window: Window,
    /// Parallel lanes.
    pub threads: usize,
    pub backoff: Backoff,
    /// How long one delivery of a batch may take before it counts as failed (and is
    /// retried); `None`: as long as the sink takes.
    pub timeout: Option<Duration>,
    pub counters: SourceCounters,
}

impl Consumption {
    /// Consumes until `stop` turns true (`Ok`) or a batch cannot be delivered (`Err` with the
    /// reason); `health` hears when the broker fails and recovers.
    pub async fn run(
        self,
        deliver: Arc<dyn Deliver>,
        mut stop: watch::Receiver<bool>,
        health: impl Fn(Health),
    ) -> Result<(), String> {
        let this = Arc::new(self);
        let mut lanes = JoinSet::new();
        let inboxes: Vec<mpsc::Sender<Record>> = (0..this.threads)
            .map(|_| {
                let (inbox, records) = mpsc::channel((this.window.count * 2).max(256));
                lanes.spawn(lane(this.clone(), deliver.clone(), records, stop.clone()));
                inbox
            })
            .collect();
        let mut failing = false;
        loop {
            let message = tokio::select! {
                _ = stop.changed() => return Ok(()),
                Some(ended) = lanes.join_next() => return lane_ended(ended),
                m = this.source.recv() => m,
            };
            let record = match message {
                Ok(record) => record,
                Err(e) => {
                    failing = true;
                    health(Health::Failing(e));
                    tokio::select! {
                        _ = stop.changed() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            if failing {
                failing = false;
                health(Health::Running);
            }
            let inbox = &inboxes[record.partition.unsigned_abs() as usize % this.threads];
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                Some(ended) = lanes.join_next() => return lane_ended(ended),
                _ = inbox.send(record) => {}
            }
        }
    }
}

/// Why a lane ended.
fn lane_ended(ended: Result<Result<(), String>, JoinError>) -> Result<(), String> {
    match ended {
        Ok(result) => result,
        Err(e) => Err(format!("a delivery lane stopped unexpectedly: {e}")),
    }
}

/// One lane: delivers the records of `inbox` until the consumption stops (`Ok`) or a batch
/// cannot be delivered (`Err` with the reason).
async fn lane(
    c: Arc<Consumption>,
    deliver: Arc<dyn Deliver>,
    mut inbox: mpsc::Receiver<Record>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    while let Some(batch) = next_batch(&c.window, &mut inbox, &mut stop).await {
        c.counters.consumed.inc_by(batch.len() as u64);
        match deliver_with_retries(&c, &*deliver, &batch, &mut stop).await {
            None => return Ok(()),
            Some(Err(reason)) => return Err(reason),
            Some(Ok(())) => {
                if let Err(e) = c.source.commit(&batch).await {
                    tracing::warn!(consumer = %c.name, error = %e, "cannot commit offsets; they are delivered again after a restart");
                }
            }
        }
    }
    Ok(())
}

/// The next batch: the records at hand up to `count`, then, while `interval` allows, those
/// that arrive. `None` when the consumption stops.
async fn next_batch(
    window: &Window,
    inbox: &mut mpsc::Receiver<Record>,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<Record>> {
    let first = tokio::select! {
        biased;
        _ = stop.changed() => return None,
        r = inbox.recv() => r?,
    };
    let mut batch = vec![first];
    let deadline = tokio::time::Instant::now() + window.interval;
    while batch.len() < window.count {
        match inbox.try_recv() {
            Ok(r) => {
                batch.push(r);
                continue;
            }
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) if window.interval.is_zero() => break,
            Err(TryRecvError::Empty) => {}
        }
        tokio::select! {
            biased;
            _ = stop.changed() => return None,
            r = inbox.recv() => match r {
                Some(r) => batch.push(r),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    Some(batch)
}

/// Delivers a batch, retrying as the window allows. `None` when the consumption stops
/// meanwhile.
async fn deliver_with_retries(
    c: &Consumption,
    deliver: &dyn Deliver,
    batch: &[Record],
    stop: &mut watch::Receiver<bool>,
) -> Option<Result<(), String>> {
    let mut attempt = 0u64;
    loop {
        let delivery = deliver.deliver(batch, attempt);
        let delivered = tokio::select! {
            biased;
            _ = stop.changed() => return None,
            r = within(c.timeout, delivery) => r,
        };
        let error = match delivered {
            Ok(()) => return Some(Ok(())),
            Err(e) => e,
        };
        if let Some(retries) = c.window.retries.filter(|&r| attempt >= r) {
            return Some(Err(format!(
                "delivery failed after {retries} retries, stopped without committing: {error}"
            )));
        }
        attempt += 1;
        c.counters.retries.inc();
        tracing::warn!(consumer = %c.name, attempt, %error, "delivery failed; retrying");
        tokio::select! {
            biased;
            _ = stop.changed() => return None,
            _ = tokio::time::sleep(c.backoff.before(attempt)) => {}
        }
    }
}

/// `delivery`, failed when it takes longer than `timeout`.
async fn within(timeout: Option<Duration>, delivery: SinkFuture<'_>) -> Result<(), String> {
    match timeout {
        None => delivery.await,
        Some(limit) => tokio::time::timeout(limit, delivery)
            .await
            .unwrap_or_else(|_| Err(format!("the delivery took longer than {limit:?}"))),
    }
}
