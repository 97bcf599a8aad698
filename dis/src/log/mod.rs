//! A partition's durable, append-only log: segment files of CRC-checked frames, a sparse
//! in-memory index per segment, group commit, retention by whole segments.
//!
//! Durability: [`PartitionLog::append`] writes the frames; [`PartitionLog::sync`] returns
//! once they are on disk. Concurrent writers share one `fdatasync`: a writer that finds a
//! sync under way waits for it and is often covered by it (group commit). Readers see only
//! records that are on disk, so a consumer never reads a record that a crash could take
//! back. Memory is the index (one entry per `index_interval` bytes) and segment metadata,
//! whatever is stored; data is read from the files (the page cache holds what is hot).

pub mod frame;
mod segment;

use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use frame::Record;
use segment::Segment;

/// Sizes of a log.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    /// A segment is sealed and a new one started past this size.
    pub segment_bytes: u64,
    /// Bytes between sparse index entries.
    pub index_interval: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
            index_interval: 64 * 1024,
        }
    }
}

/// Why a read could not start where asked.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The records from there on were deleted by retention.
    #[error("sequence number {requested} has expired; the earliest is {earliest}")]
    Expired { requested: u64, earliest: u64 },
    /// Past the end of the log.
    #[error("sequence number {requested} is past the end {end}")]
    Beyond { requested: u64, end: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What a read found.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Record>,
    /// Where the next read starts.
    pub next: u64,
}

/// One record to append.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Empty when the record was sent without a partition key.
    pub key: &'a str,
    pub data: &'a [u8],
}

pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    state: Mutex<State>,
    /// Held while one writer syncs for everyone.
    sync_lock: Mutex<()>,
    /// Records below this sequence number are on disk.
    durable: AtomicU64,
}

struct State {
    /// Oldest first; the last one takes appends.
    segments: Vec<Segment>,
    buffer: Vec<u8>,
}

impl State {
    fn active(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log has a segment")
    }

    fn end(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.end)
    }
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering from a crash: the intact frames of
    /// the last segment are kept, a torn tail is cut off.
    pub fn open(dir: &Path, config: LogConfig) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let bases = segment::list(dir)?;
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let sealed = i + 1 < bases.len();
            segments.push(Segment::open(dir, base, sealed, config.index_interval)?);
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0)?);
            sync_dir(dir)?;
        }
        let end = segments.last().map_or(0, |s| s.end);
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            state: Mutex::new(State {
                segments,
                buffer: Vec::new(),
            }),
            sync_lock: Mutex::new(()),
            durable: AtomicU64::new(end),
        })
    }

    /// Appends `entries` in order, stamped `now` (milliseconds; never earlier than the
    /// previous record's stamp, so timestamps order like sequence numbers). Answers the
    /// sequence number of the first; call [`sync`](Self::sync) before acknowledging them.
    pub fn append(&self, entries: &[Entry<'_>], now: i64) -> io::Result<u64> {
        let mut state = self.state.lock().unwrap();
        let first = state.end();
        let timestamp = now.max(state.segments.last().map_or(now, |s| s.last_timestamp));
        let mut buffer = std::mem::take(&mut state.buffer);
        buffer.clear();
        let mut headers = Vec::with_capacity(entries.len());
        for (sequence, entry) in (first..).zip(entries) {
            let len = frame::frame_len(entry.key, entry.data) as u64;
            let pending = state.segments.last().unwrap().size + buffer.len() as u64;
            if pending > 0 && pending + len > self.config.segment_bytes {
                self.write(&mut state, &buffer, &headers)?;
                buffer.clear();
                headers.clear();
                self.roll(&mut state)?;
            }
            frame::encode(&mut buffer, sequence, timestamp, entry.key, entry.data);
            headers.push(frame::Header {
                sequence,
                timestamp,
                len: len as usize,
            });
        }
        self.write(&mut state, &buffer, &headers)?;
        state.buffer = buffer;
        Ok(first)
    }

    /// Writes encoded frames at the active segment's end and notes them; a failed write
    /// leaves the segment as it was.
    fn write(&self, state: &mut State, bytes: &[u8], headers: &[frame::Header]) -> io::Result<()> {
        let active = state.active();
        if let Err(e) = (&*active.file).write_all(bytes) {
            active.file.set_len(active.size)?;
            return Err(e);
        }
        for header in headers {
            active.note(*header, self.config.index_interval);
        }
        Ok(())
    }

    /// Seals the active segment (synced, index written) and starts the next.
    fn roll(&self, state: &mut State) -> io::Result<()> {
        let active = state.active();
        active.file.sync_data()?;
        active.write_index(&self.dir)?;
        let end = active.end;
        self.durable.fetch_max(end, Ordering::AcqRel);
        state.segments.push(Segment::create(&self.dir, end)?);
        sync_dir(&self.dir)
    }

    /// Returns once every record below `end` is on disk.
    pub fn sync(&self, end: u64) -> io::Result<()> {
        if self.durable.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        let _syncing = self.sync_lock.lock().unwrap();
        if self.durable.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        let (file, written) = {
            let state = self.state.lock().unwrap();
            let active = state.segments.last().unwrap();
            (active.file.clone(), active.end)
        };
        file.sync_data()?;
        self.durable.fetch_max(written, Ordering::AcqRel);
        Ok(())
    }

    /// The earliest readable sequence number and the end (the sequence number the next
    /// record will get, counting only records on disk).
    pub fn bounds(&self) -> (u64, u64) {
        let state = self.state.lock().unwrap();
        let earliest = state.segments.first().map_or(0, |s| s.base);
        (earliest, self.durable.load(Ordering::Acquire))
    }

    /// When the newest record on disk was written (`None` when the log is empty).
    pub fn last_timestamp(&self) -> Option<i64> {
        let state = self.state.lock().unwrap();
        state
            .segments
            .iter()
            .rev()
            .find(|s| s.end > s.base)
            .map(|s| s.last_timestamp)
    }

    /// Bytes stored.
    pub fn stored_bytes(&self) -> u64 {
        let state = self.state.lock().unwrap();
        state.segments.iter().map(|s| s.size).sum()
    }

    /// Reads records from `from` on: as many as fit in `max_bytes` of data (a record larger
    /// than that is never returned, as DIS documents) and at most `max_records`.
    pub fn read(&self, from: u64, max_bytes: u64, max_records: usize) -> Result<Batch, ReadError> {
        let end = self.durable.load(Ordering::Acquire);
        // What to read, taken under the lock; the files are read without it.
        let plan: Vec<(Arc<std::fs::File>, u64, u64)> = {
            let state = self.state.lock().unwrap();
            let earliest = state.segments.first().map_or(0, |s| s.base);
            if from < earliest {
                return Err(ReadError::Expired {
                    requested: from,
                    earliest,
                });
            }
            if from > end {
                return Err(ReadError::Beyond {
                    requested: from,
                    end,
                });
            }
            let first = state.segments.partition_point(|s| s.base <= from) - 1;
            state.segments[first..]
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let start = if i == 0 { s.locate(from) } else { 0 };
                    (s.file.clone(), start, s.size)
                })
                .collect()
        };
        let mut batch = Batch {
            records: Vec::new(),
            next: from,
        };
        let mut bytes = 0u64;
        let chunk = max_bytes.clamp(64 * 1024, 4 << 20) + 64 * 1024;
        'segments: for (file, mut position, size) in plan {
            // Set when one frame is longer than a chunk: the next read takes it whole.
            let mut need = 0u64;
            while position < size {
                let want = (size - position).min(chunk.max(need));
                // Each chunk is read into a buffer of its own that the records then share.
                let mut buf = bytes::BytesMut::zeroed(want as usize);
                file.read_exact_at(&mut buf, position)?;
                let buf = buf.freeze();
                let mut offset = 0;
                while let Some(header) = frame::check(&buf[offset..]) {
                    if header.sequence >= end || batch.records.len() >= max_records {
                        break 'segments;
                    }
                    if header.sequence >= from {
                        let record = frame::decode(&buf, offset, header);
                        if bytes + record.data.len() as u64 > max_bytes {
                            break 'segments;
                        }
                        bytes += record.data.len() as u64;
                        batch.next = header.sequence + 1;
                        batch.records.push(record);
                    }
                    offset += header.len;
                }
                if offset == 0 {
                    let len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as u64 + 8;
                    if len as usize > frame::MAX_FRAME || position + len > size || need >= len {
                        // Not a frame: the end of what can be read.
                        break 'segments;
                    }
                    need = len;
                    continue;
                }
                need = 0;
                position += offset as u64;
            }
        }
        Ok(batch)
    }

    /// The sequence number of the first record written at or after `timestamp` (the end
    /// when there is none).
    pub fn seek_timestamp(&self, timestamp: i64) -> Result<u64, ReadError> {
        let (start, segment_end) = {
            let state = self.state.lock().unwrap();
            match state
                .segments
                .iter()
                .find(|s| s.last_timestamp >= timestamp)
            {
                None => return Ok(self.durable.load(Ordering::Acquire)),
                Some(s) => (s.locate_time(timestamp), s.end),
            }
        };
        // Scan forward from the index entry to the first record stamped late enough.
        let mut from = start;
        while from < segment_end {
            let batch = self.read(from, 4 << 20, 1024)?;
            if let Some(r) = batch.records.iter().find(|r| r.timestamp >= timestamp) {
                return Ok(r.sequence);
            }
            if batch.records.is_empty() {
                break;
            }
            from = batch.next;
        }
        Ok(from)
    }

    /// Deletes the oldest segments whose newest record is older than `before`
    /// (milliseconds); the segment taking appends stays. Answers how many went.
    pub fn expire(&self, before: i64) -> io::Result<usize> {
        let mut state = self.state.lock().unwrap();
        let mut removed = 0;
        while state.segments.len() > 1 && state.segments[0].last_timestamp < before {
            state.segments[0].remove(&self.dir)?;
            state.segments.remove(0);
            removed += 1;
        }
        Ok(removed)
    }

    /// Deletes the whole log.
    pub fn destroy(self) -> io::Result<()> {
        drop(self.state);
        std::fs::remove_dir_all(&self.dir)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> LogConfig {
        LogConfig {
            segment_bytes: 4096,
            index_interval: 256,
        }
    }

    fn put(log: &PartitionLog, n: usize, now: i64) -> u64 {
        let data: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("record-{i:04}").into_bytes())
            .collect();
        let entries: Vec<Entry> = data.iter().map(|d| Entry { key: "k", data: d }).collect();
        let first = log.append(&entries, now).unwrap();
        log.sync(first + n as u64).unwrap();
        first
    }

    #[test]
    fn records_read_back_in_order_across_segments_and_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small()).unwrap();
        assert_eq!(put(&log, 300, 1000), 0);
        assert_eq!(put(&log, 200, 2000), 300);
        assert!(segment::list(dir.path()).unwrap().len() > 3);
        let batch = log.read(0, u64::MAX, 10_000).unwrap();
        assert_eq!(batch.records.len(), 500);
        assert_eq!(batch.next, 500);
        for (i, r) in batch.records.iter().enumerate() {
            assert_eq!(r.sequence, i as u64);
        }
        drop(log);
        let log = PartitionLog::open(dir.path(), small()).unwrap();
        assert_eq!(log.bounds(), (0, 500));
        let batch = log.read(123, u64::MAX, 5).unwrap();
        let got: Vec<u64> = batch.records.iter().map(|r| r.sequence).collect();
        assert_eq!(got, [123, 124, 125, 126, 127]);
        assert_eq!(&batch.records[0].data[..], b"record-0123");
        assert_eq!(put(&log, 1, 3000), 500);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_appends_continue_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        put(&log, 10, 1000);
        drop(log);
        let path = segment::log_path(dir.path(), 0);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&[42, 0, 0, 0, 1, 2, 3]).unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        assert_eq!(log.bounds(), (0, 10));
        assert_eq!(put(&log, 1, 1000), 10);
        assert_eq!(log.read(0, u64::MAX, 100).unwrap().records.len(), 11);
    }

    #[test]
    fn the_byte_budget_stops_before_a_record_that_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        put(&log, 10, 1000);
        // Each record holds 11 bytes of data.
        assert_eq!(log.read(0, 33, 100).unwrap().records.len(), 3);
        let none = log.read(0, 10, 100).unwrap();
        assert!(none.records.is_empty());
        assert_eq!(none.next, 0);
    }

    #[test]
    fn timestamps_find_the_first_record_at_or_after() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small()).unwrap();
        put(&log, 100, 1000);
        put(&log, 100, 2000);
        put(&log, 100, 3000);
        assert_eq!(log.seek_timestamp(0).unwrap(), 0);
        assert_eq!(log.seek_timestamp(1500).unwrap(), 100);
        assert_eq!(log.seek_timestamp(2000).unwrap(), 100);
        assert_eq!(log.seek_timestamp(2001).unwrap(), 200);
        assert_eq!(log.seek_timestamp(9999).unwrap(), 300);
        // A clock going back never stamps a record earlier than the one before.
        let first = put(&log, 1, 500);
        assert_eq!(
            log.read(first, u64::MAX, 1).unwrap().records[0].timestamp,
            3000
        );
    }

    #[test]
    fn retention_deletes_whole_old_segments_and_reads_before_them_expire() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), small()).unwrap();
        put(&log, 200, 1000);
        put(&log, 200, 5000);
        let removed = log.expire(2000).unwrap();
        assert!(removed > 0);
        let (earliest, end) = log.bounds();
        assert!(earliest > 0 && earliest <= 200, "{earliest}");
        assert_eq!(end, 400);
        assert!(matches!(
            log.read(0, u64::MAX, 1),
            Err(ReadError::Expired { earliest: e, .. }) if e == earliest
        ));
        assert!(matches!(
            log.read(401, u64::MAX, 1),
            Err(ReadError::Beyond { .. })
        ));
        // Reopened, the sealed segments come from their index files.
        drop(log);
        let log = PartitionLog::open(dir.path(), small()).unwrap();
        assert_eq!(log.bounds(), (earliest, 400));
        assert_eq!(
            log.read(earliest, u64::MAX, 1000).unwrap().records.len() as u64,
            400 - earliest
        );
    }

    #[test]
    fn concurrent_writers_get_dense_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(PartitionLog::open(dir.path(), small()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || (0..50).map(|_| put(&log, 3, 1)).collect::<Vec<_>>())
            })
            .collect();
        let mut firsts: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        firsts.sort_unstable();
        assert_eq!(firsts, (0..200).map(|i| i * 3).collect::<Vec<_>>());
        assert_eq!(log.read(0, u64::MAX, 10_000).unwrap().records.len(), 600);
    }
}
