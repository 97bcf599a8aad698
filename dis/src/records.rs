//! Records: send (partitioned, durable before the answer), cursors, consume.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

use crate::cursor::{self, Cursor};
use crate::error::DisError;
use crate::log::{frame::MAX_DATA, Entry, Record};
use crate::partition_key::{hash_key, partition_of, MAX_HASH};
use crate::policies::{Action, Caller};
use crate::streams::{now_ms, parse_partition, Dis, Stream};

/// Records in one send_records request, at most (the benchmark's and the Java SDK's
/// producer's batch; DIS documents no number).
pub const MAX_RECORDS: usize = 500;
/// Data in one send_records request, at most (5 MB before base64, as DIS documents).
pub const MAX_REQUEST_DATA: usize = 5 * 1024 * 1024;
/// The longest partition key.
pub const MAX_KEY: usize = 256;
/// Most data one consume_records answers (a larger `max_fetch_bytes` is lowered to it).
pub const MAX_FETCH_BYTES: u64 = 4 * 1024 * 1024;
/// `max_fetch_bytes` when the request names none.
pub const DEFAULT_FETCH_BYTES: u64 = 1024 * 1024;
/// Most records one consume_records answers.
pub const MAX_FETCH_RECORDS: usize = 10_000;

/// The send_records body.
#[derive(Debug, Deserialize)]
pub struct PutRecords {
    pub stream_name: Option<String>,
    pub stream_id: Option<String>,
    pub records: Option<Vec<PutEntry>>,
}

#[derive(Debug, Deserialize)]
pub struct PutEntry {
    pub data: Option<String>,
    pub explicit_hash_key: Option<String>,
    pub partition_id: Option<String>,
    pub partition_key: Option<String>,
}

/// Where one record went, or why it did not.
pub type Placed = Result<(u32, u64), DisError>;

/// A record ready to append.
struct Ready {
    slot: usize,
    partition: u32,
    key: String,
    data: Vec<u8>,
}

/// The show_cursor query.
#[derive(Debug, Default, Deserialize)]
pub struct CursorQuery {
    #[serde(rename = "stream-name")]
    pub stream_name: Option<String>,
    #[serde(rename = "stream-id")]
    pub stream_id: Option<String>,
    #[serde(rename = "partition-id")]
    pub partition_id: Option<String>,
    #[serde(rename = "cursor-type")]
    pub cursor_type: Option<String>,
    #[serde(rename = "starting-sequence-number")]
    pub starting_sequence_number: Option<String>,
    pub timestamp: Option<String>,
}

/// What consume_records found.
#[derive(Debug)]
pub struct Fetched {
    pub records: Vec<Record>,
    /// The sequence number after the last record.
    pub next: u64,
    pub next_cursor: String,
    pub millis_behind_latest: i64,
}

impl Dis {
    /// Appends the records to their partitions and returns once they are on disk. A record
    /// that cannot be placed (bad data, partition, key) fails alone; the others go in.
    pub fn send_records(&self, caller: &Caller, put: PutRecords) -> Result<Vec<Placed>, DisError> {
        let records = put.records.unwrap_or_default();
        if records.is_empty() {
            return Err(DisError::Empty);
        }
        if records.len() > MAX_RECORDS {
            return Err(DisError::Invalid(format!(
                "{} records in one request; at most {MAX_RECORDS}",
                records.len()
            )));
        }
        let started = std::time::Instant::now();
        let stream = self.writable_stream(caller, put.stream_name, put.stream_id)?;
        let writable = stream.record.read().unwrap().writable();
        let mut placed: Vec<Placed> = Vec::with_capacity(records.len());
        let mut ready = Vec::with_capacity(records.len());
        let mut total = 0usize;
        for (slot, entry) in records.into_iter().enumerate() {
            match place(entry, &writable) {
                Ok((partition, key, data)) => {
                    total += data.len();
                    ready.push(Ready {
                        slot,
                        partition,
                        key,
                        data,
                    });
                    placed.push(Ok((partition, 0)));
                }
                Err(e) => placed.push(Err(e)),
            }
        }
        if total > MAX_REQUEST_DATA {
            return Err(DisError::Invalid(format!(
                "the request holds {total} bytes of data; at most {MAX_REQUEST_DATA}"
            )));
        }
        // One append per partition, in the order the records came; then one sync each.
        let now = now_ms();
        let mut partitions: Vec<u32> = ready.iter().map(|r| r.partition).collect();
        partitions.sort_unstable();
        partitions.dedup();
        let mut pending = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let group: Vec<&Ready> = ready.iter().filter(|r| r.partition == partition).collect();
            let log = stream
                .log(partition)
                .expect("a writable partition has a log");
            let entries: Vec<Entry> = group
                .iter()
                .map(|r| Entry {
                    key: &r.key,
                    data: &r.data,
                })
                .collect();
            let outcome = log.append(&entries, now);
            pending.push((log, group, outcome));
        }
        for (log, group, outcome) in pending {
            let outcome = outcome.and_then(|first| {
                log.sync(first + group.len() as u64)?;
                Ok(first)
            });
            match outcome {
                Ok(first) => {
                    let bytes: usize = group.iter().map(|r| r.data.len()).sum();
                    if let Some(counters) = stream.partition_counters(group[0].partition) {
                        counters.add(now, [bytes as u64, group.len() as u64, 0, 0]);
                    }
                    self.host_metrics.put_records.inc_by(group.len() as u64);
                    self.host_metrics.put_bytes.inc_by(bytes as u64);
                    for (i, r) in group.iter().enumerate() {
                        placed[r.slot] = Ok((r.partition, first + i as u64));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "DIS append failed");
                    for r in group {
                        placed[r.slot] =
                            Err(DisError::Io(std::io::Error::new(e.kind(), e.to_string())));
                    }
                }
            }
        }
        let micros = started.elapsed().as_micros() as u64;
        stream.counters.add(now, [1, micros, 0, 0, 0, 0]);
        Ok(placed)
    }

    /// The stream a send names: by name, or by id when the name finds none (a stream of
    /// another project, when a policy lets the caller put records).
    fn writable_stream(
        &self,
        caller: &Caller,
        name: Option<String>,
        id: Option<String>,
    ) -> Result<Arc<Stream>, DisError> {
        let name = name.filter(|n| !n.is_empty());
        if name.is_none() && id.as_deref().is_none_or(str::is_empty) {
            return Err(DisError::Invalid("stream_name is required".into()));
        }
        let by_name = name.as_deref().map(|n| self.stream(&caller.project, n));
        match (by_name, id.filter(|i| !i.is_empty())) {
            (Some(Ok(stream)), _) => Ok(stream),
            (_, Some(id)) => self
                .stream_for(caller, &id, Action::Put)
                .ok_or(DisError::NoStream(id)),
            (Some(Err(e)), None) => Err(e),
            (None, None) => unreachable!("checked above"),
        }
    }

    /// A partition cursor (show_cursor).
    pub fn cursor(&self, caller: &Caller, q: CursorQuery) -> Result<String, DisError> {
        let stream = match q.stream_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => self.stream(&caller.project, name)?,
            None => match q.stream_id.as_deref().filter(|n| !n.is_empty()) {
                Some(id) => self
                    .stream_for(caller, id, Action::Get)
                    .ok_or_else(|| DisError::NoStream(id.to_string()))?,
                None => return Err(DisError::Invalid("stream-name is required".into())),
            },
        };
        let partition_text = q
            .partition_id
            .filter(|p| !p.is_empty())
            .ok_or_else(|| DisError::Invalid("partition-id is required".into()))?;
        let partition = parse_partition(&partition_text)?;
        let log = readable(&stream, partition, &partition_text)?;
        let (earliest, end) = log.bounds();
        let sequence_number = || -> Result<u64, DisError> {
            let text = q.starting_sequence_number.as_deref().unwrap_or("");
            if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(DisError::SequenceNumber(format!(
                    "starting-sequence-number {text:?} is not a number from 0 to 9223372036854775807"
                )));
            }
            text.parse::<u64>()
                .ok()
                .filter(|&n| n <= MAX_HASH)
                .ok_or_else(|| DisError::SequenceNumber(text.to_string()))
        };
        let out_of_range = |given: u64| DisError::OutOfRange {
            given: given.to_string(),
            earliest,
            latest: end,
        };
        let cursor_type = q.cursor_type.as_deref().filter(|t| !t.is_empty());
        let sequence = match cursor_type.unwrap_or("AT_SEQUENCE_NUMBER") {
            "AT_SEQUENCE_NUMBER" => {
                let n = sequence_number()?;
                if n < earliest || n > end {
                    return Err(out_of_range(n));
                }
                n
            }
            "AFTER_SEQUENCE_NUMBER" => {
                let n = sequence_number()?;
                if n < earliest || n >= end {
                    return Err(out_of_range(n));
                }
                n + 1
            }
            "TRIM_HORIZON" => earliest,
            "LATEST" => end,
            "AT_TIMESTAMP" => {
                let text = q.timestamp.as_deref().unwrap_or("");
                let ts: i64 = text.parse().map_err(|_| {
                    DisError::Request(format!(
                        "timestamp {text:?} is not a time in milliseconds since the epoch"
                    ))
                })?;
                log.seek_timestamp(ts)?.max(earliest)
            }
            other => return Err(DisError::CursorType(other.to_string())),
        };
        Ok(Cursor {
            stream_id: stream.id.clone(),
            stream_name: stream.name.clone(),
            partition,
            sequence,
            generated: now_ms(),
        }
        .encode())
    }

    /// Reads records at a cursor (consume_records): of a stream of the caller's project, or
    /// one a policy lets the caller get records of.
    pub fn consume(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        max_fetch_bytes: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Fetched, DisError> {
        let text = cursor
            .filter(|c| !c.is_empty())
            .ok_or_else(|| DisError::Cursor("partition-cursor is required".into()))?;
        let started = std::time::Instant::now();
        let cursor = Cursor::decode(text)?;
        let age_ms = now_ms() - cursor.generated;
        if age_ms > cursor::TTL_MS {
            return Err(DisError::CursorExpired { age_ms });
        }
        let max_bytes = match max_fetch_bytes {
            None => DEFAULT_FETCH_BYTES,
            Some(n) if n > 0 => (n as u64).min(MAX_FETCH_BYTES),
            Some(n) => {
                return Err(DisError::Invalid(format!(
                    "max_fetch_bytes {n} must be positive"
                )))
            }
        };
        let max_records = match limit {
            None => MAX_FETCH_RECORDS,
            Some(n) if (1..=MAX_FETCH_RECORDS as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(DisError::Invalid(format!(
                    "limit {n} is not between 1 and {MAX_FETCH_RECORDS}"
                )))
            }
        };
        let stream = self
            .stream_for(caller, &cursor.stream_id, Action::Get)
            .ok_or_else(|| DisError::NoStream(cursor.stream_name.clone()))?;
        read_counted(
            self,
            &stream,
            cursor.partition,
            cursor.sequence,
            max_bytes,
            max_records,
            started,
        )
    }
}

/// Reads a partition from `from` on, counted in the stream's and the host's metrics; the
/// answer carries the cursor of what follows.
pub(crate) fn read_counted(
    dis: &Dis,
    stream: &Stream,
    partition: u32,
    from: u64,
    max_bytes: u64,
    max_records: usize,
    started: std::time::Instant,
) -> Result<Fetched, DisError> {
    let log = readable(stream, partition, &partition.to_string())?;
    let batch = log.read(from, max_bytes, max_records)?;
    let now = now_ms();
    let bytes: u64 = batch.records.iter().map(|r| r.data.len() as u64).sum();
    let count = batch.records.len() as u64;
    if let Some(counters) = stream.partition_counters(partition) {
        counters.add(now, [0, 0, bytes, count]);
    }
    dis.host_metrics.get_records.inc_by(count);
    dis.host_metrics.get_bytes.inc_by(bytes);
    let micros = started.elapsed().as_micros() as u64;
    stream.counters.add(now, [0, 0, 1, micros, 0, 0]);
    let (_, end) = log.bounds();
    let millis_behind_latest = match batch.records.last() {
        Some(last) if batch.next < end => log
            .last_timestamp()
            .map_or(0, |latest| (latest - last.timestamp).max(0)),
        _ => 0,
    };
    Ok(Fetched {
        next_cursor: Cursor {
            stream_id: stream.id.clone(),
            stream_name: stream.name.clone(),
            partition,
            sequence: batch.next,
            generated: now,
        }
        .encode(),
        next: batch.next,
        records: batch.records,
        millis_behind_latest,
    })
}

/// The log of a readable partition of a stream.
pub(crate) fn readable(
    stream: &Stream,
    partition: u32,
    as_given: &str,
) -> Result<Arc<crate::log::PartitionLog>, DisError> {
    if !stream.record.read().unwrap().readable(partition) {
        return Err(DisError::NoPartition(as_given.to_string()));
    }
    stream
        .log(partition)
        .ok_or_else(|| DisError::NoPartition(as_given.to_string()))
}

/// The partition, key and data of one record, checked.
fn place(entry: PutEntry, writable: &[u32]) -> Result<(u32, String, Vec<u8>), DisError> {
    let data = entry
        .data
        .ok_or_else(|| DisError::Invalid("data is required".into()))?;
    let data = STANDARD
        .decode(data)
        .map_err(|_| DisError::Invalid("data is not base64".into()))?;
    if data.len() > MAX_DATA {
        return Err(DisError::Invalid(format!(
            "a record holds {} bytes; at most {MAX_DATA}",
            data.len()
        )));
    }
    let key = entry.partition_key.unwrap_or_default();
    if key.len() > MAX_KEY {
        return Err(DisError::Invalid(format!(
            "partition_key is {} bytes; at most {MAX_KEY}",
            key.len()
        )));
    }
    let partition = if let Some(id) = entry.partition_id.filter(|p| !p.is_empty()) {
        let index = parse_partition(&id)?;
        if !writable.contains(&index) {
            return Err(DisError::NoPartition(id));
        }
        index
    } else {
        let hash = match entry.explicit_hash_key.filter(|h| !h.is_empty()) {
            Some(h) => h
                .parse::<u64>()
                .ok()
                .filter(|&h| h <= MAX_HASH)
                .ok_or_else(|| {
                    DisError::Invalid(format!(
                        "explicit_hash_key {h:?} is not a number from 0 to {MAX_HASH}"
                    ))
                })?,
            None if !key.is_empty() => hash_key(&key),
            None => uuid::Uuid::new_v4().as_u64_pair().0 & MAX_HASH,
        };
        writable[partition_of(hash, writable.len() as u32) as usize]
    };
    Ok((partition, key, data))
}
