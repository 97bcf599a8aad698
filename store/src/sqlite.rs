//! The SQLite engine: one connection, used off the async workers.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, ToSql, TransactionBehavior};

use crate::{Error, Migration, Outcome, Row, Statement, Value};

/// A connection to a SQLite file, set up the same way for every store: WAL, synchronous
/// (durable) commits, waiting for other writers instead of failing, and `secure_delete`, so
/// that what a row held before it was rewritten (a secret an older fgs kept in clear) does not
/// linger in free pages of the file.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

pub(crate) struct Sqlite {
    conn: Arc<Mutex<Connection>>,
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
                Error::Conflict
            }
            _ => Error::Sqlite(e),
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Real(v) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Value::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
    }
}

/// PostgreSQL's `$1` placeholders as SQLite's numbered `?1` (outside quoted text).
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '$' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn run_one(conn: &Connection, statement: &Statement) -> Result<Outcome, Error> {
    let mut prepared = conn.prepare_cached(&placeholders(&statement.sql))?;
    let params = rusqlite::params_from_iter(statement.params.iter());
    if !statement.returns_rows {
        let changed = prepared.execute(params)? as u64;
        return Ok(Outcome {
            changed,
            rows: Vec::new(),
        });
    }
    let columns = prepared.column_count();
    let mut rows = Vec::new();
    let mut cursor = prepared.query(params)?;
    while let Some(row) = cursor.next()? {
        let values = (0..columns)
            .map(|i| row.get_ref(i).map(value))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(Row(values));
    }
    Ok(Outcome {
        changed: rows.len() as u64,
        rows,
    })
}

impl Sqlite {
    pub(crate) fn new(conn: Connection) -> Self {
        Sqlite {
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap())).await?
    }

    /// `statements` in one transaction: a deferred one for reads (one snapshot in WAL mode),
    /// an immediate one for writes (the write lock from the start, no upgrade deadlock).
    pub(crate) async fn run(
        &self,
        statements: Vec<Statement>,
        read_only: bool,
    ) -> Result<Vec<Outcome>, Error> {
        self.with(move |conn| {
            if statements.len() == 1 {
                return Ok(vec![run_one(conn, &statements[0])?]);
            }
            let behavior = if read_only {
                TransactionBehavior::Deferred
            } else {
                TransactionBehavior::Immediate
            };
            let tx = conn.transaction_with_behavior(behavior)?;
            let outcomes = statements
                .iter()
                .map(|s| run_one(&tx, s))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(outcomes)
        })
        .await
    }

    pub(crate) async fn checkpoint(&self) -> Result<(), Error> {
        self.with(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn migrate(
        &self,
        store: &'static str,
        migrations: &'static [Migration],
    ) -> Result<(), Error> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(crate::migrate::SQLITE_TABLE)?;
            let applied: i64 = tx.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM fgs_migrations WHERE store = ?1",
                [store],
                |row| row.get(0),
            )?;
            for migration in crate::migrate::pending(store, migrations, applied)? {
                tx.execute_batch(migration.sqlite)?;
                tx.execute(
                    "INSERT INTO fgs_migrations (store, version, name, applied_ms) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![store, migration.version, migration.name, crate::migrate::now_ms()],
                )?;
                tracing::info!(store, version = migration.version, name = migration.name, "schema migrated");
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered() {
        assert_eq!(
            placeholders("UPDATE t SET a = $2 WHERE b = $1 AND c = '$1'"),
            "UPDATE t SET a = ?2 WHERE b = ?1 AND c = '$1'"
        );
    }
}
