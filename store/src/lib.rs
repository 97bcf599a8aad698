//! The storage layer: the one SQL database behind fgs's durable stores. SQLite is the embedded
//! default of a single host; PostgreSQL lets several hosts share one database (cluster mode).
//!
//! A store writes its queries once, with PostgreSQL's `$1` placeholders (SQLite is handed them
//! as `?1`), in the SQL both engines speak (`INSERT ... ON CONFLICT`, `RETURNING`); only its
//! schema [`Migration`]s are written per engine. Values cross the boundary as [`Value`]s and
//! come back in [`Row`]s, so no store sees an engine's types. Writes that other hosts must
//! learn of carry a [`Notice`], delivered by PostgreSQL's `NOTIFY` when the transaction commits
//! (a single SQLite host has no one to tell).

mod migrate;
mod postgres;
pub mod sqlite;
mod value;

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::broadcast;

pub use migrate::Migration;
pub use value::{FromValue, Row, Value};

#[derive(Debug, Error)]
pub enum Error {
    /// A unique key or primary key is taken.
    #[error("a row with this key already exists")]
    Conflict,
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(tokio_postgres::Error),
    #[error("postgres: no connection: {0}")]
    Pool(String),
    #[error("column {index}: {expected} expected, found {found}")]
    Type {
        index: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("schema: {0}")]
    Schema(String),
    #[error("store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Which database a host uses: `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path".into());
            }
            Ok(StoreUrl::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            s.parse::<tokio_postgres::Config>()
                .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
            Ok(StoreUrl::Postgres(s.to_string()))
        } else {
            Err("a store is sqlite://PATH or postgres://USER@HOST:PORT/DATABASE".into())
        }
    }
}

/// Shown without a password, so that a URL can be logged.
impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StoreUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// One statement of a write: SQL with `$n` placeholders and its parameters.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: Cow<'static, str>,
    pub params: Vec<Value>,
    /// Whether the statement's rows are wanted (a query, or `RETURNING`), else only the count
    /// of rows it changed.
    pub returns_rows: bool,
}

impl Statement {
    /// A statement whose changed-row count is wanted.
    pub fn execute(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Statement {
            sql: sql.into(),
            params,
            returns_rows: false,
        }
    }

    /// A statement whose rows are wanted.
    pub fn query(sql: impl Into<Cow<'static, str>>, params: Vec<Value>) -> Self {
        Statement {
            sql: sql.into(),
            params,
            returns_rows: true,
        }
    }
}

/// What one statement of a transaction did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Rows changed (for a statement that returns rows: rows returned).
    pub changed: u64,
    pub rows: Vec<Row>,
}

/// A change another host must learn of: `topic` names the kind of thing (a store's own word),
/// `key` which one. `Resync` says notices may have been missed (the listening connection was
/// lost, or a receiver fell behind): everything is to be read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Changed { topic: String, key: String },
    Resync,
}

/// The database; cheap to clone.
#[derive(Clone)]
pub struct Db(Arc<Engine>);

// One per database, behind the `Db`'s Arc: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Engine {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

impl Db {
    /// Opens (SQLite: creates) the database a URL names.
    pub async fn open(url: &StoreUrl) -> Result<Db, Error> {
        let engine = match url {
            StoreUrl::Sqlite(path) => {
                let path = path.clone();
                let conn = tokio::task::spawn_blocking(move || sqlite::connect(&path))
                    .await?
                    .map_err(Error::Sqlite)?;
                Engine::Sqlite(sqlite::Sqlite::new(conn))
            }
            StoreUrl::Postgres(url) => Engine::Postgres(postgres::Postgres::connect(url).await?),
        };
        Ok(Db(Arc::new(engine)))
    }

    /// A database over a SQLite connection a store has opened itself.
    pub fn from_sqlite(conn: rusqlite::Connection) -> Db {
        Db(Arc::new(Engine::Sqlite(sqlite::Sqlite::new(conn))))
    }

    /// Whether other hosts may share this database (PostgreSQL): then what a host keeps in
    /// memory or on its own disk must follow the notices.
    pub fn is_shared(&self) -> bool {
        matches!(*self.0, Engine::Postgres(_))
    }

    /// Brings `store`'s schema up to the newest of `migrations` (ordered by version), each
    /// applied once in its own transaction; refused if the database has a version this fgs
    /// does not know (a newer release wrote it). Hosts starting together apply each once.
    pub async fn migrate(
        &self,
        store: &'static str,
        migrations: &'static [Migration],
    ) -> Result<(), Error> {
        match &*self.0 {
            Engine::Sqlite(db) => db.migrate(store, migrations).await,
            Engine::Postgres(db) => db.migrate(store, migrations).await,
        }
    }

    /// The rows of one query.
    pub async fn query(
        &self,
        sql: impl Into<Cow<'static, str>>,
        params: Vec<Value>,
    ) -> Result<Vec<Row>, Error> {
        let mut outcome = self.read(vec![Statement::query(sql, params)]).await?;
        Ok(outcome.pop().unwrap_or_default().rows)
    }

    /// Runs one statement; the number of rows it changed.
    pub async fn execute(
        &self,
        sql: impl Into<Cow<'static, str>>,
        params: Vec<Value>,
    ) -> Result<u64, Error> {
        let mut outcome = self
            .write(vec![Statement::execute(sql, params)], None)
            .await?;
        Ok(outcome.pop().unwrap_or_default().changed)
    }

    /// Runs `statements` in one transaction, and delivers `notice` to every host sharing the
    /// database when it commits.
    pub async fn write(
        &self,
        statements: Vec<Statement>,
        notice: Option<(String, String)>,
    ) -> Result<Vec<Outcome>, Error> {
        match &*self.0 {
            Engine::Sqlite(db) => db.run(statements, false).await,
            Engine::Postgres(db) => db.write(statements, notice).await,
        }
    }

    /// Runs read-only `statements` on one snapshot of the database.
    pub async fn read(&self, statements: Vec<Statement>) -> Result<Vec<Outcome>, Error> {
        match &*self.0 {
            Engine::Sqlite(db) => db.run(statements, true).await,
            Engine::Postgres(db) => db.read(statements).await,
        }
    }

    /// The notices of every host's writes (this one's too), from now on; `None` for a database
    /// no other host shares. The first receiver starts listening.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Notice>> {
        match &*self.0 {
            Engine::Sqlite(_) => None,
            Engine::Postgres(db) => Some(db.subscribe()),
        }
    }

    /// Writes SQLite's write-ahead log back into the main file, so that pages a rewrite
    /// replaced (a secret once held in clear) leave the WAL; PostgreSQL: nothing to do.
    pub async fn checkpoint(&self) -> Result<(), Error> {
        match &*self.0 {
            Engine::Sqlite(db) => db.checkpoint().await,
            Engine::Postgres(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_hide_passwords() {
        assert_eq!(
            "sqlite:///var/fgs/fgs.sqlite3".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite("/var/fgs/fgs.sqlite3".into())
        );
        let pg: StoreUrl = "postgres://fgs:hunter2@db:5432/fgs".parse().unwrap();
        assert_eq!(pg.to_string(), "postgres://fgs:***@db:5432/fgs");
        assert!(!format!("{pg:?}").contains("hunter2"));
        let plain: StoreUrl = "postgresql://fgs@127.0.0.1/fgs".parse().unwrap();
        assert_eq!(plain.to_string(), "postgresql://fgs@127.0.0.1/fgs");
        assert!("mysql://x".parse::<StoreUrl>().is_err());
        assert!("sqlite://".parse::<StoreUrl>().is_err());
    }
}
