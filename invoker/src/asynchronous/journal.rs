//! The durable journal of async requests, in the host's database (SQLite, or PostgreSQL that
//! several hosts share).
//!
//! Every accepted request is committed before the caller gets its 202; every status change is
//! written too. One writer task commits whatever has queued up in one transaction (group
//! commit), so concurrent accepts share a commit instead of each paying one. Reads (records,
//! recovery) use a second connection.
//!
//! Each request is owned by one host: the one that accepted it, or the one that claimed it
//! after its owner stopped renewing its membership (`fgs_hosts`, see `cluster`). Only the owner
//! writes a request's status (`WHERE owner = $me`), so a host that lost a request (it was
//! thought dead) cannot overwrite what its new owner did.

use fgs_store::{params, Db, Migration, Row, Statement};
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

/// Request statuses, as FunctionGraph names them.
pub const WAIT: &str = "WAIT";
pub const RUNNING: &str = "RUNNING";
pub const SUCCESS: &str = "SUCCESS";
pub const FAIL: &str = "FAIL";
pub const DISCARD: &str = "DISCARD";

/// The topic of a notice asking the owner of a request to cancel it; the key is
/// `func_id \t request_id`.
pub const NOTICE_CANCEL: &str = "async-cancel";

/// Writes committed together at most.
const GROUP: usize = 1024;

static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "async requests",
        sqlite: include_str!("../../migrations/journal/0001_sqlite.sql"),
        postgres: include_str!("../../migrations/journal/0001_postgres.sql"),
    },
    Migration {
        version: 2,
        name: "async requests have an owner",
        sqlite: "ALTER TABLE async_requests ADD COLUMN owner TEXT NOT NULL DEFAULT '';",
        postgres: "ALTER TABLE async_requests ADD COLUMN owner TEXT NOT NULL DEFAULT '';
                   CREATE INDEX async_requests_by_owner ON async_requests (owner) WHERE end_ms IS NULL;",
    },
];

const COLUMNS: &str =
    "request_id, project_id, package, func_name, func_id, event, accepted_ms, attempts, status, depth";

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

impl Request {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Request {
            request_id: row.get(0)?,
            project_id: row.get(1)?,
            package: row.get(2)?,
            func_name: row.get(3)?,
            func_id: row.get(4)?,
            event: row.get(5)?,
            accepted_ms: row.get(6)?,
            attempts: row.get::<i64>(7)? as u32,
            status: row.get(8)?,
            depth: row.get::<i64>(9)? as u32,
        })
    }
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
    writes: mpsc::UnboundedSender<Write>,
    reader: Db,
    /// This host's id: the owner of what it accepts.
    host: String,
}

impl Journal {
    /// Opens the journal (`writer` and `reader` two connections to one database: reads need
    /// not wait for a group commit) and starts its writer task.
    pub async fn open(writer: Db, reader: Db, host: String) -> Result<Self, StoreError> {
        if !writer.is_shared() {
            add_depth_to_an_old_journal(&writer).await?;
        }
        writer.migrate("journal", MIGRATIONS).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(writer, host.clone(), rx));
        Ok(Self {
            writes: tx,
            reader,
            host,
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

    /// Whether other hosts share the journal.
    pub fn is_shared(&self) -> bool {
        self.reader.is_shared()
    }

    /// Asks the host that owns a request of `func_id` (another host of a shared database) to
    /// cancel it.
    pub async fn ask_owner_to_cancel(
        &self,
        func_id: &str,
        request_id: &str,
    ) -> Result<(), StoreError> {
        let notice = (
            NOTICE_CANCEL.to_string(),
            format!("{func_id}\t{request_id}"),
        );
        self.reader.write(Vec::new(), Some(notice)).await?;
        Ok(())
    }

    /// Records a status change (written with the next commit; not awaited).
    pub fn set_status(&self, change: StatusChange) {
        let _ = self.writes.send(Write::Status(change));
    }

    /// Deletes the records of requests that ended before `before_ms`; how many.
    pub async fn prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(self
            .reader
            .execute(
                "DELETE FROM async_requests WHERE end_ms IS NOT NULL AND end_ms < $1",
                params![before_ms],
            )
            .await?)
    }

    /// This host's requests that were waiting or running when it stopped, oldest first.
    pub async fn unfinished(&self) -> Result<Vec<Request>, StoreError> {
        // A journal written before requests had owners: its requests are this host's.
        let rows = self
            .reader
            .query(
                format!(
                    "SELECT {COLUMNS} FROM async_requests
                     WHERE status IN ('WAIT', 'RUNNING') AND owner IN ($1, '')
                     ORDER BY accepted_ms, rowid"
                ),
                params![&self.host],
            )
            .await?;
        rows.iter().map(Request::from_row).collect()
    }

    /// Takes over the unfinished requests of hosts that stopped renewing their membership
    /// (`dead`), at most `limit`, oldest first; hosts claiming at once each get other rows
    /// (`SKIP LOCKED`). Only for a shared database.
    pub async fn claim(&self, dead: &[String], limit: i64) -> Result<Vec<Request>, StoreError> {
        if dead.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (0..dead.len()).map(|i| format!("${}", i + 3)).collect();
        let mut values = params![&self.host, limit];
        values.extend(dead.iter().map(fgs_store::Value::from));
        let sql = format!(
            "UPDATE async_requests SET owner = $1 WHERE request_id IN (
                 SELECT request_id FROM async_requests
                 WHERE end_ms IS NULL AND status IN ('WAIT', 'RUNNING') AND owner IN ({})
                 ORDER BY accepted_ms, rowid LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}",
            marks.join(", ")
        );
        let outcome = self
            .reader
            .write(vec![Statement::query(sql, values)], None)
            .await?;
        outcome
            .first()
            .map_or(&[][..], |o| &o.rows[..])
            .iter()
            .map(Request::from_row)
            .collect()
    }

    /// The status of one request of `func_id`.
    pub async fn status_of(
        &self,
        func_id: String,
        request_id: String,
    ) -> Result<Option<String>, StoreError> {
        let rows = self
            .reader
            .query(
                "SELECT status FROM async_requests WHERE func_id = $1 AND request_id = $2",
                params![func_id, request_id],
            )
            .await?;
        Ok(match rows.first() {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// Records matching `query`, newest first, and how many match in all.
    pub async fn records(&self, query: RecordQuery) -> Result<(Vec<Record>, usize), StoreError> {
        let mut filter = String::from(
            "FROM async_requests WHERE func_id = $1 AND accepted_ms >= $2 AND accepted_ms <= $3",
        );
        let mut values = params![query.func_id, query.begin_ms, query.end_ms];
        for (column, list) in [
            ("request_id", &query.request_ids),
            ("status", &query.statuses),
        ] {
            if !list.is_empty() {
                let marks: Vec<String> = (0..list.len())
                    .map(|i| format!("${}", values.len() + i + 1))
                    .collect();
                filter.push_str(&format!(" AND {column} IN ({})", marks.join(",")));
                values.extend(list.iter().map(fgs_store::Value::from));
            }
        }
        let outcomes = self
            .reader
            .read(vec![
                Statement::query(format!("SELECT COUNT(*) {filter}"), values.clone()),
                Statement::query(
                    format!(
                        "SELECT request_id, status, error_code, error_message, accepted_ms, end_ms {filter}
                         ORDER BY accepted_ms DESC, rowid DESC LIMIT {} OFFSET {}",
                        query.limit, query.offset
                    ),
                    values,
                ),
            ])
            .await?;
        let count: i64 = outcomes[0].rows.first().map_or(Ok(0), |r| r.get(0))?;
        let records = outcomes[1]
            .rows
            .iter()
            .map(|row| {
                Ok(Record {
                    request_id: row.get(0)?,
                    status: row.get(1)?,
                    error_code: row.get(2)?,
                    error_message: row.get(3)?,
                    accepted_ms: row.get(4)?,
                    end_ms: row.get(5)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((records, count as usize))
    }
}

/// A journal an fgs wrote before destination depths were counted (and before migrations were
/// numbered) gets its `depth` column, so that migration 1 finds the table it describes.
async fn add_depth_to_an_old_journal(db: &Db) -> Result<(), StoreError> {
    let columns = db
        .query(
            "SELECT name FROM pragma_table_info('async_requests')",
            Vec::new(),
        )
        .await?;
    let has_depth = columns
        .iter()
        .any(|row| row.get::<String>(0).is_ok_and(|name| name == "depth"));
    if !columns.is_empty() && !has_depth {
        db.execute(
            "ALTER TABLE async_requests ADD COLUMN depth INTEGER NOT NULL DEFAULT 0",
            Vec::new(),
        )
        .await?;
    }
    Ok(())
}

fn statement(write: &Write, host: &str) -> Statement {
    match write {
        Write::Accept(r, _) => Statement::execute(
            "INSERT INTO async_requests (request_id, project_id, package, func_name, func_id, event, status, accepted_ms, depth, owner)
             VALUES ($1, $2, $3, $4, $5, $6, 'WAIT', $7, $8, $9)",
            params![
                &r.request_id,
                &r.project_id,
                &r.package,
                &r.func_name,
                &r.func_id,
                r.event.clone(),
                r.accepted_ms,
                r.depth,
                host
            ],
        ),
        Write::Status(c) => Statement::execute(
            "UPDATE async_requests SET status = $2, attempts = $3, error_code = $4, error_message = $5, end_ms = $6
             WHERE request_id = $1 AND owner IN ($7, '')",
            params![
                &c.request_id,
                c.status,
                c.attempts,
                c.error_code,
                &c.error_message,
                c.end_ms,
                host
            ],
        ),
    }
}

/// The writer task: commits everything queued in one transaction, then acknowledges.
async fn write_loop(db: Db, host: String, mut rx: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP {
            match rx.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        let statements = batch.iter().map(|w| statement(w, &host)).collect();
        let outcome = db
            .write(statements, None)
            .await
            .map(drop)
            .map_err(|e| e.to_string());
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
