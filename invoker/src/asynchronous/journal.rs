//! The durable journal of async requests, in the SQLite store.
//!
//! Every accepted request is committed (WAL, `synchronous=FULL`) before the caller gets its
//! 202; every status change is written too. One writer thread owns a connection and commits
//! whatever has queued up in one transaction (group commit), so concurrent accepts share an
//! fsync instead of each paying one. Reads (records, recovery) use a second connection.

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::store::StoreError;

/// Request statuses, as FunctionGraph names them.
pub const WAIT: &str = "WAIT";
pub const RUNNING: &str = "RUNNING";
pub const SUCCESS: &str = "SUCCESS";
pub const FAIL: &str = "FAIL";
pub const DISCARD: &str = "DISCARD";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS async_requests (
    request_id    TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    package       TEXT NOT NULL,
    func_name     TEXT NOT NULL,
    func_id       TEXT NOT NULL,
    event         BLOB NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error_code    INTEGER NOT NULL DEFAULT 0,
    error_message TEXT NOT NULL DEFAULT '',
    accepted_ms   INTEGER NOT NULL,
    end_ms        INTEGER,
    depth         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS async_requests_by_function ON async_requests (func_id, accepted_ms);
CREATE INDEX IF NOT EXISTS async_requests_unfinished ON async_requests (status) WHERE status IN ('WAIT', 'RUNNING');
CREATE INDEX IF NOT EXISTS async_requests_by_end ON async_requests (end_ms) WHERE end_ms IS NOT NULL;
";

/// An accepted request, as journaled.
#[derive(Debug, Clone)]
pub struct Request {
    pub request_id: String,
    pub project_id: String,
    pub package: String,
    pub func_name: String,
    pub func_id: String,
    pub event: Vec<u8>,
    pub accepted_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    pub status: String,
    /// 0 for a request from a caller; one more for each destination hop that led to it.
    pub depth: u32,
}

/// A request's state after an attempt or a decision.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub request_id: String,
    pub status: &'static str,
    pub attempts: u32,
    pub error_code: u32,
    pub error_message: String,
    pub end_ms: Option<i64>,
}

/// One record as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub request_id: String,
    pub status: String,
    pub error_code: i64,
    pub error_message: String,
    pub accepted_ms: i64,
    pub end_ms: Option<i64>,
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    pub func_id: String,
    pub request_ids: Vec<String>,
    pub statuses: Vec<String>,
    pub begin_ms: i64,
    pub end_ms: i64,
    pub offset: usize,
    pub limit: usize,
}

enum Write {
    Accept(Request, oneshot::Sender<Result<(), String>>),
    Status(StatusChange),
}

/// Handle to the journal; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    writes: mpsc::Sender<Write>,
    reader: Arc<Mutex<Connection>>,
}

impl Journal {
    /// Opens the journal in the SQLite database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = crate::store::connect(path)?;
        writer.execute_batch(SCHEMA)?;
        // Journals written before destination depths were counted.
        let has_depth: bool = writer
            .prepare("SELECT 1 FROM pragma_table_info('async_requests') WHERE name = 'depth'")?
            .exists([])?;
        if !has_depth {
            writer.execute_batch(
                "ALTER TABLE async_requests ADD COLUMN depth INTEGER NOT NULL DEFAULT 0",
            )?;
        }
        let reader = crate::store::connect(path)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("fgs-async-journal".into())
            .spawn(move || write_loop(writer, rx))
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(Self {
            writes: tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Commits a newly accepted request; returns once it is durable.
    pub async fn accept(&self, request: Request) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.writes
            .send(Write::Accept(request, ack))
            .map_err(|_| StoreError::Io("journal writer stopped".into()))?;
        done.await
            .map_err(|_| StoreError::Io("journal writer stopped".into()))?
            .map_err(StoreError::Io)
    }

    /// Records a status change (written with the next commit; not awaited).
    pub fn set_status(&self, change: StatusChange) {
        let _ = self.writes.send(Write::Status(change));
    }

    /// Deletes the records of requests that ended before `before_ms`; how many. (On the
    /// second connection: a delete of finished rows need not join the accepts' group commit.)
    pub async fn prune(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.read(move |conn| {
            Ok(conn.execute(
                "DELETE FROM async_requests WHERE end_ms IS NOT NULL AND end_ms < ?1",
                [before_ms],
            )?)
        })
        .await
    }

    /// Requests that were waiting or running when the host stopped, oldest first.
    pub fn unfinished(&self) -> Result<Vec<Request>, StoreError> {
        let conn = self.reader.lock().unwrap();
        let mut stmt = conn.prepare(
            "SELECT request_id, project_id, package, func_name, func_id, event, accepted_ms, attempts, status, depth
             FROM async_requests WHERE status IN ('WAIT', 'RUNNING') ORDER BY accepted_ms, rowid",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(Request {
                request_id: row.get(0)?,
                project_id: row.get(1)?,
                package: row.get(2)?,
                func_name: row.get(3)?,
                func_id: row.get(4)?,
                event: row.get(5)?,
                accepted_ms: row.get(6)?,
                attempts: row.get(7)?,
                status: row.get(8)?,
                depth: row.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs `f` on the read connection, off the async workers.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || f(&reader.lock().unwrap())).await?
    }

    /// The status of one request of `func_id`.
    pub async fn status_of(
        &self,
        func_id: String,
        request_id: String,
    ) -> Result<Option<String>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT status FROM async_requests WHERE func_id = ?1 AND request_id = ?2",
                    params![func_id, request_id],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// Records matching `query`, newest first, and how many match in all.
    pub async fn records(&self, query: RecordQuery) -> Result<(Vec<Record>, usize), StoreError> {
        self.read(move |conn| {
            let mut sql = String::from(
                "FROM async_requests WHERE func_id = ?1 AND accepted_ms >= ?2 AND accepted_ms <= ?3",
            );
            let mut values: Vec<rusqlite::types::Value> =
                vec![query.func_id.into(), query.begin_ms.into(), query.end_ms.into()];
            for (column, list) in [("request_id", &query.request_ids), ("status", &query.statuses)] {
                if !list.is_empty() {
                    let marks: Vec<String> = (0..list.len()).map(|i| format!("?{}", values.len() + i + 1)).collect();
                    sql.push_str(&format!(" AND {column} IN ({})", marks.join(",")));
                    values.extend(list.iter().cloned().map(rusqlite::types::Value::from));
                }
            }
            let count: i64 = conn.query_row(
                &format!("SELECT COUNT(*) {sql}"),
                rusqlite::params_from_iter(values.iter()),
                |row| row.get(0),
            )?;
            let select = format!(
                "SELECT request_id, status, error_code, error_message, accepted_ms, end_ms {sql}
                 ORDER BY accepted_ms DESC, rowid DESC LIMIT {} OFFSET {}",
                query.limit, query.offset
            );
            let mut stmt = conn.prepare(&select)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |row| {
                Ok(Record {
                    request_id: row.get(0)?,
                    status: row.get(1)?,
                    error_code: row.get(2)?,
                    error_message: row.get(3)?,
                    accepted_ms: row.get(4)?,
                    end_ms: row.get(5)?,
                })
            })?;
            Ok((rows.collect::<Result<_, _>>()?, count as usize))
        })
        .await
    }
}

/// The writer thread: commits everything queued in one transaction, then acknowledges.
fn write_loop(mut conn: Connection, rx: mpsc::Receiver<Write>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let outcome = commit(&mut conn, &batch).map_err(|e| e.to_string());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "async journal commit failed");
        }
        for write in batch {
            if let Write::Accept(_, ack) = write {
                let _ = ack.send(outcome.clone());
            }
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Write]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO async_requests (request_id, project_id, package, func_name, func_id, event, status, accepted_ms, depth)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'WAIT', ?7, ?8)",
        )?;
        let mut update = tx.prepare_cached(
            "UPDATE async_requests SET status = ?2, attempts = ?3, error_code = ?4, error_message = ?5, end_ms = ?6
             WHERE request_id = ?1",
        )?;
        for write in batch {
            match write {
                Write::Accept(r, _) => {
                    insert.execute(params![
                        r.request_id,
                        r.project_id,
                        r.package,
                        r.func_name,
                        r.func_id,
                        r.event,
                        r.accepted_ms,
                        r.depth
                    ])?;
                }
                Write::Status(c) => {
                    update.execute(params![
                        c.request_id,
                        c.status,
                        c.attempts,
                        c.error_code,
                        c.error_message,
                        c.end_ms
                    ])?;
                }
            }
        }
    }
    tx.commit()
}
