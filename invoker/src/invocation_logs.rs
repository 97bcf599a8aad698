//! Invocation logs: every invocation's log (sync, async, triggers, streams, the gateway) kept
//! per function with its request id, version, status and duration, for `GET
//! /v2/{project_id}/fgs/functions/{function_urn}/logs` and `fgs logs`.
//!
//! A store of its own, `logs.sqlite3` in the data dir, so a busy function's logs neither bloat
//! nor contend with the function store. Recording never waits: an invocation hands its log to
//! a bounded queue and one writer thread commits whatever has queued up, every 100 ms, in one
//! transaction.
//! When the queue is full (the disk cannot keep up) the log is dropped and counted in
//! `fgs_invocation_logs_dropped_total`: a log is not an accepted request, and no invocation
//! is slowed or refused for it. Commits use `synchronous=NORMAL`: a crash of fgs loses
//! nothing committed, a power cut may lose the last moments of logs.
//!
//! Retention: logs older than the configured age (default 7 days) go, and so do the oldest
//! whenever the host's logs together pass their byte budget (default 1 GB), down to 90% of it.

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use fgs_runtime::{InvokeOutcome, LogFrame};
use rusqlite::{params, Connection};
use tokio::sync::watch;

use crate::store::StoreError;

/// At most this much of what one invocation wrote is kept (its newest part).
pub const MAX_LOG_BYTES: usize = 64 * 1024;
/// Logs waiting for the writer, at most; beyond it new ones are dropped (and counted).
const QUEUE: usize = 16 * 1024;
/// How often the writer commits what has queued up (so how late a follower sees a log).
const COMMIT_EVERY: Duration = Duration::from_millis(100);
/// What a row costs beside its log text, for the byte budget.
const ROW_OVERHEAD: u64 = 256;
/// A query answers at most this many bytes of output (at least one log).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS invocation_logs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    func_id     TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    version     TEXT NOT NULL,
    invoke_type TEXT NOT NULL,
    error_code  INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    memory_mb   REAL NOT NULL,
    memory_size INTEGER NOT NULL,
    cold_start  INTEGER NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER NOT NULL,
    output      BLOB NOT NULL,
    bytes       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS invocation_logs_by_function ON invocation_logs (func_id, seq);
";
// No index on request ids: they are random, so every commit would write one index page per
// log it adds; a lookup by request id reads the function's logs newest first instead.

/// How long and how much is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub age: Duration,
    pub max_bytes: u64,
}

/// One invocation's log, as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Its place in the host's logs: later logs have larger numbers (the paging marker).
    pub seq: i64,
    /// The function (`func_id`, the same for all its versions).
    pub func_id: String,
    pub request_id: String,
    pub version: String,
    /// `sync` or `async`.
    pub invoke_type: String,
    /// 0 when the invocation succeeded, otherwise FunctionGraph's runtime error code.
    pub error_code: u32,
    pub duration_ms: f64,
    pub memory_used_mb: f64,
    pub memory_size_mb: u32,
    pub cold_start: bool,
    pub started_ms: i64,
    pub finished_ms: i64,
    /// What the function wrote (at most [`MAX_LOG_BYTES`], its newest part). Kept without
    /// the start and finish lines, which [`LogRecord::log`] makes again from the fields:
    /// framing is paid by the rare reader, not by every invocation.
    pub output: Vec<u8>,
}

/// An invocation to log, as the invocation path hands it over: the outcome is framed into
/// its log by the writer thread, off the invocation's way.
pub struct Finished {
    pub func_id: String,
    pub invoke_type: &'static str,
    pub outcome: InvokeOutcome,
}

impl LogRecord {
    fn of(finished: Finished) -> Self {
        let Finished {
            func_id,
            invoke_type,
            outcome,
        } = finished;
        LogRecord {
            seq: 0,
            func_id,
            error_code: outcome.result.as_ref().err().map_or(0, |f| f.code()),
            duration_ms: outcome.duration.as_secs_f64() * 1000.0,
            memory_used_mb: outcome.memory_used_mb,
            memory_size_mb: outcome.memory_size_mb,
            cold_start: outcome.cold_start,
            started_ms: outcome.started_at.timestamp_millis(),
            finished_ms: outcome.finished_at.timestamp_millis(),
            output: capped(outcome.output),
            invoke_type: invoke_type.to_string(),
            request_id: outcome.request_id,
            version: outcome.version,
        }
    }

    /// The framed log: start line, what the function wrote, finish line.
    pub fn log(&self) -> String {
        let time = |ms| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let frame = LogFrame {
            request_id: &self.request_id,
            version: &self.version,
            started_at: time(self.started_ms),
            finished_at: time(self.finished_ms),
            duration: Duration::from_secs_f64(self.duration_ms.max(0.0) / 1000.0),
            memory_used_mb: self.memory_used_mb,
            memory_size_mb: self.memory_size_mb,
            failed: self.error_code != 0,
        };
        String::from_utf8_lossy(&frame.render(&self.output)).into_owned()
    }
}

/// `output` cut to its newest [`MAX_LOG_BYTES`], after a line saying how much was left out.
fn capped(output: Vec<u8>) -> Vec<u8> {
    if output.len() <= MAX_LOG_BYTES {
        return output;
    }
    let cut = output.len() - MAX_LOG_BYTES;
    let mut kept = format!("[... {cut} bytes cut ...]\n").into_bytes();
    kept.extend_from_slice(&output[cut..]);
    kept
}

/// Which logs of one function to answer.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub func_id: String,
    /// Only this version's.
    pub version: Option<String>,
    pub request_id: Option<String>,
    /// Invocations that started at or after / at or before these times (ms since the epoch).
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only logs after this marker, oldest first; without it the newest `limit`.
    pub after: Option<i64>,
    pub limit: usize,
}

/// The host's invocation logs; cheap to clone.
#[derive(Clone)]
pub struct InvocationLogs {
    /// Boxed: the channel allocates (and touches) every slot up front, 16 384 outcomes'
    /// worth of memory otherwise.
    writes: mpsc::SyncSender<Box<Finished>>,
    reader: Arc<Mutex<Connection>>,
    /// The newest committed `seq`: followers wait on it.
    latest: watch::Receiver<i64>,
    dropped: prometheus::IntCounter,
}

impl InvocationLogs {
    /// Opens the logs at `path` and starts the writer thread, which also enforces `retention`.
    pub fn open(
        path: &Path,
        retention: Retention,
        metrics: &prometheus::Registry,
    ) -> Result<Self, StoreError> {
        let dropped = prometheus::IntCounter::new(
            "fgs_invocation_logs_dropped_total",
            "Invocation logs dropped because their writer could not keep up",
        )
        .and_then(|c| metrics.register(Box::new(c.clone())).map(|()| c))
        .map_err(|e| StoreError::Io(e.to_string()))?;
        let writer = connect(path)?;
        writer.execute_batch(SCHEMA)?;
        // Room for the pages a commit touches and those of the newest logs (16 MB).
        writer.pragma_update(None, "cache_size", -16_000)?;
        let (total, newest): (i64, i64) = writer.query_row(
            "SELECT COALESCE(SUM(bytes), 0), COALESCE(MAX(seq), 0) FROM invocation_logs",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let reader = connect(path)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (latest_tx, latest) = watch::channel(newest);
        let mut state = Writer {
            conn: writer,
            total: total as u64,
            retention,
            latest: latest_tx,
        };
        std::thread::Builder::new()
            .name("fgs-invocation-logs".into())
            .spawn(move || state.run(rx))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(Self {
            writes: tx,
            reader: Arc::new(Mutex::new(reader)),
            latest,
            dropped,
        })
    }

    /// Queues an invocation's log for the writer; drops it (counted) when the queue is full.
    pub fn record(&self, finished: Finished) {
        if self.writes.try_send(Box::new(finished)).is_err() {
            self.dropped.inc();
        }
    }

    /// The newest committed marker.
    pub fn latest(&self) -> i64 {
        *self.latest.borrow()
    }

    /// Logs matching `query`, oldest first.
    pub async fn query(&self, query: LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || select(&reader.lock().unwrap(), &query)).await?
    }

    /// Waits until a log newer than `seen` is committed, or `timeout` passes; whether one was.
    pub async fn wait_newer(&self, seen: i64, timeout: Duration) -> bool {
        let mut latest = self.latest.clone();
        tokio::time::timeout(timeout, latest.wait_for(|&seq| seq > seen))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

fn select(conn: &Connection, q: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
    let mut sql = String::from(
        "SELECT seq, func_id, request_id, version, invoke_type, error_code, duration_ms, memory_mb,
                memory_size, cold_start, started_ms, finished_ms, output
         FROM invocation_logs WHERE func_id = ?1",
    );
    let mut values: Vec<rusqlite::types::Value> = vec![q.func_id.clone().into()];
    let mut filter = |clause: &str, value: rusqlite::types::Value| {
        values.push(value);
        sql.push_str(&format!(" AND {clause} ?{}", values.len()));
    };
    if let Some(version) = &q.version {
        filter("version =", version.clone().into());
    }
    if let Some(id) = &q.request_id {
        filter("request_id =", id.clone().into());
    }
    if let Some(since) = q.since_ms {
        filter("started_ms >=", since.into());
    }
    if let Some(until) = q.until_ms {
        filter("started_ms <=", until.into());
    }
    if let Some(after) = q.after {
        filter("seq >", after.into());
    }
    let newest_first = q.after.is_none();
    sql.push_str(if newest_first {
        " ORDER BY seq DESC"
    } else {
        " ORDER BY seq ASC"
    });
    sql.push_str(&format!(" LIMIT {}", q.limit));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
    let (mut records, mut bytes) = (Vec::new(), 0);
    while let Some(row) = rows.next()? {
        let record = LogRecord {
            seq: row.get(0)?,
            func_id: row.get(1)?,
            request_id: row.get(2)?,
            version: row.get(3)?,
            invoke_type: row.get(4)?,
            error_code: row.get(5)?,
            duration_ms: row.get(6)?,
            memory_used_mb: row.get(7)?,
            memory_size_mb: row.get(8)?,
            cold_start: row.get(9)?,
            started_ms: row.get(10)?,
            finished_ms: row.get(11)?,
            output: row.get(12)?,
        };
        bytes += record.output.len();
        records.push(record);
        if bytes >= MAX_ANSWER_BYTES {
            break;
        }
    }
    if newest_first {
        records.reverse();
    }
    Ok(records)
}

/// The writer thread's state: its connection and the bytes kept.
struct Writer {
    conn: Connection,
    total: u64,
    retention: Retention,
    latest: watch::Sender<i64>,
}

impl Writer {
    /// Every [`COMMIT_EVERY`], commits what has queued up meanwhile in one transaction;
    /// enforces retention after a commit that passed the byte budget, and by age once a minute
    /// (more often for a shorter age). The thread sleeps between commits instead of waiting on
    /// the queue, so an invocation handing over its log never has to wake it.
    fn run(&mut self, rx: mpsc::Receiver<Box<Finished>>) {
        let every =
            (self.retention.age / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
        let mut last_prune = std::time::Instant::now();
        loop {
            std::thread::sleep(COMMIT_EVERY);
            let mut batch = Vec::new();
            let open = loop {
                match rx.try_recv() {
                    Ok(finished) => batch.push(LogRecord::of(*finished)),
                    Err(mpsc::TryRecvError::Empty) => break true,
                    Err(mpsc::TryRecvError::Disconnected) => break false,
                }
            };
            if !batch.is_empty() {
                match self.commit(&batch) {
                    Ok(newest) => {
                        self.latest.send_replace(newest);
                    }
                    Err(e) => tracing::error!(error = %e, "invocation logs: commit failed"),
                }
            }
            if !open {
                return;
            }
            if self.total > self.retention.max_bytes || last_prune.elapsed() >= every {
                last_prune = std::time::Instant::now();
                if let Err(e) = self.prune(chrono::Utc::now().timestamp_millis()) {
                    tracing::error!(error = %e, "invocation logs: retention failed");
                }
            }
        }
    }

    /// Inserts `batch` in one transaction; the newest `seq`.
    fn commit(&mut self, batch: &[LogRecord]) -> rusqlite::Result<i64> {
        let tx = self.conn.transaction()?;
        let mut added = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO invocation_logs (func_id, request_id, version, invoke_type, error_code,
                    duration_ms, memory_mb, memory_size, cold_start, started_ms, finished_ms, output, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for r in batch {
                let bytes = r.output.len() as u64 + ROW_OVERHEAD;
                insert.execute(params![
                    r.func_id,
                    r.request_id,
                    r.version,
                    r.invoke_type,
                    r.error_code,
                    r.duration_ms,
                    r.memory_used_mb,
                    r.memory_size_mb,
                    r.cold_start,
                    r.started_ms,
                    r.finished_ms,
                    r.output,
                    bytes
                ])?;
                added += bytes;
            }
        }
        let newest = tx.last_insert_rowid();
        tx.commit()?;
        self.total += added;
        Ok(newest)
    }

    /// Deletes, oldest first, the logs older than the retention age and, when the total is
    /// over the byte budget, as many more as bring it down to 90% of it.
    fn prune(&mut self, now_ms: i64) -> rusqlite::Result<()> {
        let cutoff = now_ms - self.retention.age.as_millis() as i64;
        let target = if self.total > self.retention.max_bytes {
            self.retention.max_bytes / 10 * 9
        } else {
            u64::MAX
        };
        let (mut last, mut freed) = (None, 0u64);
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT seq, bytes, finished_ms FROM invocation_logs ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (seq, bytes, finished): (i64, i64, i64) =
                    (row.get(0)?, row.get(1)?, row.get(2)?);
                if finished >= cutoff && self.total - freed <= target {
                    break;
                }
                last = Some(seq);
                freed += bytes as u64;
            }
        }
        if let Some(last) = last {
            let deleted = self
                .conn
                .execute("DELETE FROM invocation_logs WHERE seq <= ?1", [last])?;
            self.total -= freed;
            tracing::info!(deleted, bytes = freed, "invocation logs: retention");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(func_id: &str, request_id: &str, output: &str, finished_ms: i64) -> LogRecord {
        LogRecord {
            seq: 0,
            func_id: func_id.into(),
            request_id: request_id.into(),
            version: "latest".into(),
            invoke_type: "sync".into(),
            error_code: 0,
            duration_ms: 1.5,
            memory_used_mb: 10.0,
            memory_size_mb: 128,
            cold_start: false,
            started_ms: finished_ms - 1,
            finished_ms,
            output: output.as_bytes().to_vec(),
        }
    }

    fn writer(dir: &Path, retention: Retention) -> Writer {
        let conn = connect(&dir.join("logs.sqlite3")).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        Writer {
            conn,
            total: 0,
            retention,
            latest: watch::channel(0).0,
        }
    }

    fn all(w: &Writer, func_id: &str) -> Vec<String> {
        let q = LogQuery {
            func_id: func_id.into(),
            limit: 1000,
            ..Default::default()
        };
        select(&w.conn, &q)
            .unwrap()
            .into_iter()
            .map(|r| r.request_id)
            .collect()
    }

    #[test]
    fn queries_filter_page_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(
            dir.path(),
            Retention {
                age: Duration::from_secs(3600),
                max_bytes: u64::MAX,
            },
        );
        let batch: Vec<LogRecord> = (0..10)
            .map(|i| {
                record(
                    if i % 2 == 0 { "a" } else { "b" },
                    &format!("r{i}"),
                    "x",
                    1000 + i,
                )
            })
            .collect();
        let newest = w.commit(&batch).unwrap();
        assert_eq!(newest, 10);
        assert_eq!(all(&w, "a"), ["r0", "r2", "r4", "r6", "r8"]);
        let q = |f: &dyn Fn(&mut LogQuery)| {
            let mut q = LogQuery {
                func_id: "a".into(),
                limit: 2,
                ..Default::default()
            };
            f(&mut q);
            select(&w.conn, &q)
                .unwrap()
                .into_iter()
                .map(|r| r.request_id)
                .collect::<Vec<_>>()
        };
        // The newest two, oldest first; after a marker, the next two.
        assert_eq!(q(&|_| {}), ["r6", "r8"]);
        assert_eq!(q(&|q| q.after = Some(3)), ["r4", "r6"]);
        assert_eq!(q(&|q| q.request_id = Some("r2".into())), ["r2"]);
        assert_eq!(
            q(&|q| {
                q.since_ms = Some(1003);
                q.until_ms = Some(1004);
                q.limit = 10
            }),
            ["r4"]
        );
        assert!(q(&|q| q.version = Some("1".into())).is_empty());
    }

    #[test]
    fn retention_by_age_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let budget = 10 * (ROW_OVERHEAD + 100);
        let mut w = writer(
            dir.path(),
            Retention {
                age: Duration::from_millis(500),
                max_bytes: budget,
            },
        );
        let text = "y".repeat(100);
        let batch: Vec<LogRecord> = (0..12)
            .map(|i| record("a", &format!("r{i}"), &text, 10_000 + i))
            .collect();
        w.commit(&batch).unwrap();
        // Over the budget: the oldest go until 90% of it is left (9 rows).
        w.prune(10_000).unwrap();
        assert_eq!(all(&w, "a").len(), 9);
        assert_eq!(all(&w, "a")[0], "r3");
        assert_eq!(w.total, 9 * (ROW_OVERHEAD + 100));
        // Older than the age: gone, whatever the bytes.
        w.prune(10_000 + 500 + 6).unwrap();
        assert_eq!(all(&w, "a"), ["r6", "r7", "r8", "r9", "r10", "r11"]);
    }

    #[test]
    fn long_outputs_keep_their_newest_part_and_logs_are_framed_again() {
        let mut output = vec![b'z'; 3 * MAX_LOG_BYTES];
        output.extend_from_slice(b"the end\n");
        let kept = capped(output);
        assert_eq!(
            kept.len(),
            MAX_LOG_BYTES + "[... 131080 bytes cut ...]\n".len()
        );
        assert!(kept.starts_with(b"[... 131080 bytes cut ...]\nzzz"));
        assert!(kept.ends_with(b"zzthe end\n"));

        let mut r = record("a", "r1", "hello", 1_767_225_600_123);
        r.error_code = 4002;
        assert_eq!(
            r.log(),
            "2026-01-01T00:00:00Z Start invoke request 'r1', version: latest\nhello\n\
             2026-01-01T00:00:00Z Finish invoke request 'r1'(invoke Failed), duration: 1.500ms, \
             billing duration: 2ms, memory used: 10.000MB, billing memory: 128MB\n"
        );
    }
}
