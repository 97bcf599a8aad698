//! The durable store: a SQLite file in the data dir (WAL, synchronous commits).
//!
//! Function definitions are written here before an API call answers, and read back at
//! start-up; while running, the registry serves reads from memory. A record's
//! `encrypted_user_data` is sealed with the host key in the row and opened when read, so the
//! file never holds it in clear.

use std::path::Path;
use std::sync::{Arc, Mutex};

use fgs_secrets::HostKey;
use rusqlite::{params, Connection, ErrorCode};
use serde_json::Value;
use thiserror::Error;

use crate::registry::{Alias, DependencyVersion, FunctionRecord, Trigger};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("store: a function with this name already exists")]
    Conflict,
    #[error("store: {0}")]
    Io(String),
    #[error("store: background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("store: {0}")]
    Secret(#[from] fgs_secrets::SecretError),
}

/// A handle to the SQLite database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    key: Arc<HostKey>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS functions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    record     TEXT NOT NULL,
    UNIQUE (project_id, package, func_name)
);
CREATE TABLE IF NOT EXISTS function_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    version    TEXT NOT NULL,
    record     TEXT NOT NULL,
    UNIQUE (project_id, package, func_name, version)
);
CREATE TABLE IF NOT EXISTS function_aliases (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    name       TEXT NOT NULL,
    alias      TEXT NOT NULL,
    UNIQUE (project_id, package, func_name, name)
);
CREATE TABLE IF NOT EXISTS triggers (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    package    TEXT NOT NULL,
    func_name  TEXT NOT NULL,
    record     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dependency_versions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    record     TEXT NOT NULL
);
";

/// A function's identity in the store: project, package, name.
pub type FunctionKey = (String, String, String);

/// A connection to the host's SQLite file, set up the same way for every user of it:
/// WAL, synchronous (durable) commits, waiting for other writers instead of failing, and
/// `secure_delete`, so that what a row held before it was rewritten (a secret an older fgs kept
/// in clear, before it was sealed) does not linger in free pages of the file.
pub fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

impl Store {
    pub fn open(path: &Path, key: Arc<HostKey>) -> Result<Self, StoreError> {
        let conn = connect(path)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            key,
        })
    }

    /// The row's JSON of `record`, its secret sealed.
    fn row(&self, record: &FunctionRecord) -> Result<String, StoreError> {
        let mut sealed = record.clone();
        if !sealed.encrypted_user_data.is_empty() {
            sealed.encrypted_user_data = self.key.seal(&record.encrypted_user_data);
        }
        Ok(serde_json::to_string(&sealed)?)
    }

    /// Runs `f` on the connection off the async workers.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap())).await?
    }

    /// All functions with their creation sequence numbers, oldest first.
    pub fn load_functions(&self) -> Result<Vec<(i64, FunctionRecord)>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare("SELECT seq, record FROM functions ORDER BY seq")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut records = Vec::new();
        let mut sealed_now = 0;
        for row in rows {
            let (seq, json) = row?;
            let mut record: FunctionRecord = serde_json::from_str(&json)?;
            if HostKey::is_sealed(&record.encrypted_user_data) {
                record.encrypted_user_data = self.key.open(&record.encrypted_user_data)?;
            } else if !record.encrypted_user_data.is_empty() {
                // Written before secrets were sealed: seal it now.
                conn.execute(
                    "UPDATE functions SET record = ?2 WHERE seq = ?1",
                    params![seq, self.row(&record)?],
                )?;
                sealed_now += 1;
            }
            records.push((seq, record));
        }
        drop(stmt);
        if sealed_now > 0 {
            // The clear pages stay in the main file until the WAL is written back: do it now.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(records)
    }

    /// A record read back: its secret opened.
    fn open_record(&self, json: &str) -> Result<FunctionRecord, StoreError> {
        let mut record: FunctionRecord = serde_json::from_str(json)?;
        if HostKey::is_sealed(&record.encrypted_user_data) {
            record.encrypted_user_data = self.key.open(&record.encrypted_user_data)?;
        }
        Ok(record)
    }

    /// Every published version, oldest first (always written sealed).
    pub fn load_versions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare("SELECT record FROM function_versions ORDER BY seq")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|json| self.open_record(&json?)).collect()
    }

    /// Every alias with its function, oldest first.
    pub fn load_aliases(&self) -> Result<Vec<(FunctionKey, Alias)>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(
            "SELECT project_id, package, func_name, alias FROM function_aliases ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                (row.get(0)?, row.get(1)?, row.get(2)?),
                row.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (key, json) = row?;
            Ok((key, serde_json::from_str(&json)?))
        })
        .collect()
    }

    /// Every trigger, oldest first, its secrets opened.
    pub fn load_triggers(&self) -> Result<Vec<Trigger>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare("SELECT record FROM triggers ORDER BY seq")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|json| {
            let mut trigger: Trigger = serde_json::from_str(&json?)?;
            for field in Trigger::SECRETS {
                if let Some(Value::String(sealed)) = trigger.event_data.get_mut(*field) {
                    if HostKey::is_sealed(sealed) {
                        *sealed = self.key.open(sealed)?;
                    }
                }
            }
            Ok(trigger)
        })
        .collect()
    }

    /// Stores a new trigger or replaces one (by id), its secrets (a Kafka password) sealed.
    pub async fn put_trigger(&self, mut trigger: Trigger) -> Result<(), StoreError> {
        for field in Trigger::SECRETS {
            if let Some(Value::String(secret)) = trigger.event_data.get_mut(*field) {
                if !secret.is_empty() {
                    *secret = self.key.seal(secret);
                }
            }
        }
        let json = serde_json::to_string(&trigger)?;
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO triggers (trigger_id, project_id, package, func_name, record) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (trigger_id) DO UPDATE SET record = excluded.record",
                params![trigger.trigger_id, trigger.project_id, trigger.package, trigger.func_name, json],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes the triggers `ids` in one transaction.
    pub async fn delete_triggers(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            for id in &ids {
                tx.execute("DELETE FROM triggers WHERE trigger_id = ?1", params![id])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Every dependency package version, oldest first.
    pub fn load_dependencies(&self) -> Result<Vec<DependencyVersion>, StoreError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare("SELECT record FROM dependency_versions ORDER BY seq")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|json| Ok(serde_json::from_str(&json?)?)).collect()
    }

    pub async fn insert_dependency(&self, version: DependencyVersion) -> Result<(), StoreError> {
        let json = serde_json::to_string(&version)?;
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO dependency_versions (id, project_id, record) VALUES (?1, ?2, ?3)",
                params![version.id, version.project_id, json],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_dependency(&self, id: String) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.execute("DELETE FROM dependency_versions WHERE id = ?1", params![id])?;
            Ok(())
        })
        .await
    }

    /// Stores a published version; `Conflict` if the name is taken.
    pub async fn insert_version(&self, record: FunctionRecord) -> Result<(), StoreError> {
        let json = self.row(&record)?;
        self.with(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO function_versions (project_id, package, func_name, version, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![record.project_id, record.package, record.func_name, record.version, json],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
                    Err(StoreError::Conflict)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Rewrites a published version's record (its settings; code and config never change).
    pub async fn update_version(&self, record: FunctionRecord) -> Result<(), StoreError> {
        let json = self.row(&record)?;
        self.with(move |conn| {
            conn.execute(
                "UPDATE function_versions SET record = ?5 WHERE project_id = ?1 AND package = ?2 AND func_name = ?3 AND version = ?4",
                params![record.project_id, record.package, record.func_name, record.version, json],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_version(
        &self,
        project_id: String,
        package: String,
        name: String,
        version: String,
    ) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.execute(
                "DELETE FROM function_versions WHERE project_id = ?1 AND package = ?2 AND func_name = ?3 AND version = ?4",
                params![project_id, package, name, version],
            )?;
            Ok(())
        })
        .await
    }

    /// Creates or replaces an alias of the function `key`.
    pub async fn put_alias(&self, key: FunctionKey, alias: Alias) -> Result<(), StoreError> {
        let json = serde_json::to_string(&alias)?;
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO function_aliases (project_id, package, func_name, name, alias) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (project_id, package, func_name, name) DO UPDATE SET alias = excluded.alias",
                params![key.0, key.1, key.2, alias.name, json],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_alias(&self, key: FunctionKey, name: String) -> Result<(), StoreError> {
        self.with(move |conn| {
            conn.execute(
                "DELETE FROM function_aliases WHERE project_id = ?1 AND package = ?2 AND func_name = ?3 AND name = ?4",
                params![key.0, key.1, key.2, name],
            )?;
            Ok(())
        })
        .await
    }

    /// Inserts a new function; returns its sequence number.
    pub async fn insert_function(&self, record: FunctionRecord) -> Result<i64, StoreError> {
        let json = self.row(&record)?;
        self.with(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO functions (project_id, package, func_name, record) VALUES (?1, ?2, ?3, ?4)",
                params![record.project_id, record.package, record.func_name, json],
            );
            match inserted {
                Ok(_) => Ok(conn.last_insert_rowid()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
                    Err(StoreError::Conflict)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    pub async fn update_function(&self, record: FunctionRecord) -> Result<(), StoreError> {
        let json = self.row(&record)?;
        self.with(move |conn| {
            conn.execute(
                "UPDATE functions SET record = ?4 WHERE project_id = ?1 AND package = ?2 AND func_name = ?3",
                params![record.project_id, record.package, record.func_name, json],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_function(
        &self,
        project_id: String,
        package: String,
        name: String,
    ) -> Result<(), StoreError> {
        self.with(move |conn| {
            // The function, its versions and its aliases go together.
            let tx = conn.transaction()?;
            for table in ["functions", "function_versions", "function_aliases", "triggers"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE project_id = ?1 AND package = ?2 AND func_name = ?3"),
                    params![project_id, package, name],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
