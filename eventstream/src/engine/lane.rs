//! A lane: one of a stream's `thread_num` parallel sinks.
//!
//! The stream's consumer hands each record to the lane of its partition (partition mod
//! `thread_num`), so all records of a partition pass through one lane, in order. A lane cuts
//! its records into batches of up to `batch_window.count`, waiting at most
//! `batch_window.interval` seconds after a batch's first record; it keeps the events the filter
//! passes, transforms them and delivers them, one batch after another. A failed batch is
//! retried whole, with exponential backoff, up to `batch_window.time` times (0: until it
//! succeeds); only a delivered batch's offsets are committed. When the retries run out the lane
//! ends with the reason, and the stream stops without committing the batch.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, watch};

use super::envelope::Record;
use super::kafka::Source;
use super::sink::Sink;
use crate::definition::Definition;
use crate::metrics::StreamCounters;

/// The longest pause between two attempts of a failed batch.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A stream's `batch_window`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub count: usize,
    pub interval: Duration,
    pub retries: u64,
}

impl Window {
    pub fn of(json: &Value) -> Self {
        let window = &json["option"]["batch_window"];
        Window {
            count: window["count"].as_u64().unwrap_or(1).max(1) as usize,
            interval: Duration::from_secs(window["interval"].as_u64().unwrap_or(0)),
            retries: window["time"].as_u64().unwrap_or(0),
        }
    }
}

/// What a lane shares with its stream.
pub struct Lane {
    pub stream_id: String,
    /// The source topic (a stream reads one), for commits.
    pub topic: Arc<str>,
    pub rules: Arc<Definition>,
    pub sink: Arc<Sink>,
    pub source: Arc<Source>,
    pub window: Window,
    pub retry_delay: Duration,
    pub counters: StreamCounters,
}

impl Lane {
    /// Delivers the records of `inbox` until the stream stops (`Ok`) or a batch cannot be
    /// delivered (`Err` with the reason).
    pub async fn run(
        self,
        mut inbox: mpsc::Receiver<Record>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), String> {
        while let Some(batch) = self.next_batch(&mut inbox, &mut stop).await {
            match self.deliver(&batch, &mut stop).await {
                None => return Ok(()),
                Some(Err(reason)) => return Err(reason),
                Some(Ok(())) => {
                    if let Err(e) = commit(&self.source, &self.topic, &batch) {
                        tracing::warn!(stream = %self.stream_id, error = %e, "cannot commit offsets; they are delivered again after a restart");
                    }
                }
            }
        }
        Ok(())
    }

    /// The next batch: the records at hand up to `count`, then, while `interval` allows,
    /// those that arrive. `None` when the stream stops.
    async fn next_batch(
        &self,
        inbox: &mut mpsc::Receiver<Record>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Vec<Record>> {
        let first = tokio::select! {
            biased;
            _ = stop.changed() => return None,
            r = inbox.recv() => r?,
        };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + self.window.interval;
        while batch.len() < self.window.count {
            match inbox.try_recv() {
                Ok(r) => {
                    batch.push(r);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) if self.window.interval.is_zero() => break,
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

    /// Filters, transforms and delivers a batch, retrying as the window allows. `None` when
    /// the stream stops meanwhile.
    async fn deliver(
        &self,
        batch: &[Record],
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Result<(), String>> {
        let counters = &self.counters;
        let originals: Vec<&Value> = batch
            .iter()
            .map(|r| &r.event)
            .filter(|event| self.rules.filter.as_ref().is_none_or(|f| f.matches(event)))
            .collect();
        counters.consumed.inc_by(batch.len() as u64);
        counters
            .filtered_out
            .inc_by((batch.len() - originals.len()) as u64);
        if originals.is_empty() {
            return Some(Ok(()));
        }
        let events: Vec<Cow<'_, Value>> = originals
            .iter()
            .map(|e| self.rules.transform.apply(e))
            .collect();
        let mut attempt = 0u64;
        loop {
            let delivered = tokio::select! {
                biased;
                _ = stop.changed() => return None,
                r = self.sink.deliver(&events, &originals) => r,
            };
            let error = match delivered {
                Ok(()) => {
                    counters.delivered.inc_by(events.len() as u64);
                    return Some(Ok(()));
                }
                Err(e) => e,
            };
            counters.failed.inc();
            let retries = self.window.retries;
            if retries != 0 && attempt >= retries {
                return Some(Err(format!(
                    "delivery failed after {retries} retries, stopped without committing: {error}"
                )));
            }
            attempt += 1;
            counters.retries.inc();
            tracing::warn!(stream = %self.stream_id, attempt, %error, "event stream delivery failed; retrying");
            let backoff = self.retry_delay.saturating_mul(1 << attempt.min(6));
            tokio::select! {
                biased;
                _ = stop.changed() => return None,
                _ = tokio::time::sleep(backoff.min(MAX_BACKOFF)) => {}
            }
        }
    }
}

/// Commits, per partition, the offset after the batch's last record (asynchronously: a commit
/// lost to a crash only means the batch is delivered again).
fn commit(source: &Source, topic: &str, batch: &[Record]) -> Result<(), String> {
    let mut next: HashMap<i32, i64> = HashMap::new();
    for r in batch {
        let e = next.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    let mut list = TopicPartitionList::new();
    for (partition, offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(|e| e.to_string())?;
    }
    source
        .commit(&list, CommitMode::Async)
        .map_err(|e| e.to_string())
}
