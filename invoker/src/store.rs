//! The function store: definitions, published versions, aliases, triggers and dependency
//! packages, in the host's database (SQLite by default; PostgreSQL when hosts share one).
//!
//! Function definitions are written here before an API call answers, and read back at
//! start-up; while running, the registry serves reads from memory, and in a shared database it
//! reads a function again when a write's notice says it changed (`NOTICE_FUNCTION`). A record's
//! `encrypted_user_data` and a trigger's secrets are sealed with the host key in the row and
//! opened when read, so the database never holds them in clear. In a shared database the code
//! packages are kept here too (`put_package`), for hosts that have not unpacked them yet.

use std::borrow::Cow;
use std::sync::Arc;

use fgs_secrets::HostKey;
use fgs_store::{params, Db, Migration, Row, Statement};
use serde_json::Value;
use thiserror::Error;

use crate::registry::{Alias, DependencyVersion, FunctionRecord, Trigger};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Db(fgs_store::Error),
    #[error("store: corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("store: a function with this name already exists")]
    Conflict,
    #[error("store: {0}")]
    Io(String),
    #[error("store: {0}")]
    Secret(#[from] fgs_secrets::SecretError),
}

impl From<fgs_store::Error> for StoreError {
    fn from(e: fgs_store::Error) -> Self {
        match e {
            fgs_store::Error::Conflict => StoreError::Conflict,
            other => StoreError::Db(other),
        }
    }
}

/// The stores of this host alone (the async journal, invocation logs) still use their own
/// SQLite connections.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        fgs_store::Error::from(e).into()
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(e: tokio::task::JoinError) -> Self {
        StoreError::Db(e.into())
    }
}

/// The schema of the function store, per engine.
static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "functions, versions, aliases, triggers, dependencies",
        sqlite: include_str!("../migrations/functions/0001_sqlite.sql"),
        postgres: include_str!("../migrations/functions/0001_postgres.sql"),
    },
    Migration {
        version: 2,
        name: "code packages shared by the hosts",
        // A single host keeps its packages in its code store only.
        sqlite: "",
        postgres: include_str!("../migrations/functions/0002_postgres.sql"),
    },
];

/// The topic of a notice that one function (its versions, aliases or triggers) changed; the
/// key is the JSON of its [`FunctionKey`].
pub const NOTICE_FUNCTION: &str = "function";
/// The topic of a notice that a project's dependency packages changed; the key is the project.
pub const NOTICE_DEPENDENCIES: &str = "dependencies";

/// A package is stored in chunks of this size.
const CHUNK: usize = 1 << 20;

/// A function's identity in the store: project, package, name.
pub type FunctionKey = (String, String, String);

/// Everything stored of some functions, read at one instant: all of them at start-up, one
/// when a notice says it changed.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Each function's `latest` with its creation sequence number, oldest first.
    pub functions: Vec<(i64, FunctionRecord)>,
    /// Published versions, oldest first.
    pub versions: Vec<FunctionRecord>,
    pub aliases: Vec<(FunctionKey, Alias)>,
    pub triggers: Vec<Trigger>,
}

/// How a stored package was uploaded, which says how to unpack it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageKind {
    Zip,
    /// Inline source code, the single file `filename` of its package.
    Inline(String),
}

/// A handle to the function store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    key: Arc<HostKey>,
}

fn notice(key: &FunctionKey) -> Option<(String, String)> {
    Some((
        NOTICE_FUNCTION.to_string(),
        serde_json::to_string(key).unwrap_or_default(),
    ))
}

fn key_of(record: &FunctionRecord) -> FunctionKey {
    (
        record.project_id.clone(),
        record.package.clone(),
        record.func_name.clone(),
    )
}

impl Store {
    /// The function store in `db`, its schema brought up to date; secrets an older fgs kept
    /// in clear are sealed now.
    pub async fn open(db: Db, key: Arc<HostKey>) -> Result<Self, StoreError> {
        db.migrate("functions", MIGRATIONS).await?;
        let store = Self { db, key };
        store.seal_clear_rows().await?;
        Ok(store)
    }

    /// Whether other hosts share the database (and so need the code packages from it).
    pub fn is_shared(&self) -> bool {
        self.db.is_shared()
    }

    /// The row's JSON of `record`, its secret sealed.
    fn row(&self, record: &FunctionRecord) -> Result<String, StoreError> {
        let mut sealed = record.clone();
        if !sealed.encrypted_user_data.is_empty() {
            sealed.encrypted_user_data = self.key.seal(&record.encrypted_user_data);
        }
        Ok(serde_json::to_string(&sealed)?)
    }

    /// A record read back: its secret opened.
    fn open_record(&self, json: &str) -> Result<FunctionRecord, StoreError> {
        let mut record: FunctionRecord = serde_json::from_str(json)?;
        if HostKey::is_sealed(&record.encrypted_user_data) {
            record.encrypted_user_data = self.key.open(&record.encrypted_user_data)?;
        }
        Ok(record)
    }

    fn open_trigger(&self, json: &str) -> Result<Trigger, StoreError> {
        let mut trigger: Trigger = serde_json::from_str(json)?;
        for field in Trigger::SECRETS {
            if let Some(Value::String(sealed)) = trigger.event_data.get_mut(*field) {
                if HostKey::is_sealed(sealed) {
                    *sealed = self.key.open(sealed)?;
                }
            }
        }
        Ok(trigger)
    }

    /// Rows written before secrets were sealed: sealed now, and the clear pages written out of
    /// SQLite's WAL.
    async fn seal_clear_rows(&self) -> Result<(), StoreError> {
        let rows = self
            .db
            .query("SELECT seq, record FROM functions", Vec::new())
            .await?;
        let mut updates = Vec::new();
        for row in rows {
            let seq: i64 = row.get(0)?;
            let record: FunctionRecord = serde_json::from_str(&row.get::<String>(1)?)?;
            if !record.encrypted_user_data.is_empty()
                && !HostKey::is_sealed(&record.encrypted_user_data)
            {
                updates.push(Statement::execute(
                    "UPDATE functions SET record = $2 WHERE seq = $1",
                    params![seq, self.row(&record)?],
                ));
            }
        }
        if !updates.is_empty() {
            self.db.write(updates, None).await?;
            self.db.checkpoint().await?;
        }
        Ok(())
    }

    /// Every function (or only `only`), read at one instant.
    pub async fn snapshot(&self, only: Option<&FunctionKey>) -> Result<Snapshot, StoreError> {
        let (filter, params) = match only {
            Some((project, package, name)) => (
                " WHERE project_id = $1 AND package = $2 AND func_name = $3",
                params![project, package, name],
            ),
            None => ("", Vec::new()),
        };
        let select = |columns: &str, table: &str| {
            Statement::query(
                Cow::Owned(format!(
                    "SELECT {columns} FROM {table}{filter} ORDER BY seq"
                )),
                params.clone(),
            )
        };
        let mut outcomes = self
            .db
            .read(vec![
                select("seq, record", "functions"),
                select("record", "function_versions"),
                select("project_id, package, func_name, alias", "function_aliases"),
                select("record", "triggers"),
            ])
            .await?
            .into_iter()
            .map(|o| o.rows);
        let mut next = || outcomes.next().unwrap_or_default();
        let (functions, versions, aliases, triggers) = (next(), next(), next(), next());
        let text = |row: &Row, i| row.get::<String>(i).map_err(StoreError::from);
        Ok(Snapshot {
            functions: functions
                .iter()
                .map(|row| Ok((row.get::<i64>(0)?, self.open_record(&text(row, 1)?)?)))
                .collect::<Result<_, StoreError>>()?,
            versions: versions
                .iter()
                .map(|row| self.open_record(&text(row, 0)?))
                .collect::<Result<_, _>>()?,
            aliases: aliases
                .iter()
                .map(|row| {
                    let key = (text(row, 0)?, text(row, 1)?, text(row, 2)?);
                    Ok((key, serde_json::from_str::<Alias>(&text(row, 3)?)?))
                })
                .collect::<Result<_, StoreError>>()?,
            triggers: triggers
                .iter()
                .map(|row| self.open_trigger(&text(row, 0)?))
                .collect::<Result<_, _>>()?,
        })
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
        let key = (trigger.project_id, trigger.package, trigger.func_name);
        self.db.write(vec![Statement::execute(
            "INSERT INTO triggers (trigger_id, project_id, package, func_name, record) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (trigger_id) DO UPDATE SET record = excluded.record",
            params![trigger.trigger_id, &key.0, &key.1, &key.2, json],
        )], notice(&key)).await?;
        Ok(())
    }

    /// Deletes the triggers `ids` of the function `key` in one transaction.
    pub async fn delete_triggers(
        &self,
        key: &FunctionKey,
        ids: Vec<String>,
    ) -> Result<(), StoreError> {
        let statements = ids
            .into_iter()
            .map(|id| Statement::execute("DELETE FROM triggers WHERE trigger_id = $1", params![id]))
            .collect();
        self.db.write(statements, notice(key)).await?;
        Ok(())
    }

    /// Every dependency package version, oldest first.
    pub async fn load_dependencies(&self) -> Result<Vec<DependencyVersion>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT record FROM dependency_versions ORDER BY seq",
                Vec::new(),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(serde_json::from_str::<DependencyVersion>(
                    &row.get::<String>(0)?,
                )?)
            })
            .collect()
    }

    fn dependencies_notice(project_id: &str) -> Option<(String, String)> {
        Some((NOTICE_DEPENDENCIES.to_string(), project_id.to_string()))
    }

    pub async fn insert_dependency(&self, version: DependencyVersion) -> Result<(), StoreError> {
        let json = serde_json::to_string(&version)?;
        self.db
            .write(
                vec![Statement::execute(
                    "INSERT INTO dependency_versions (id, project_id, record) VALUES ($1, $2, $3)",
                    params![&version.id, &version.project_id, json],
                )],
                Self::dependencies_notice(&version.project_id),
            )
            .await?;
        Ok(())
    }

    pub async fn delete_dependency(&self, project_id: &str, id: String) -> Result<(), StoreError> {
        self.db
            .write(
                vec![Statement::execute(
                    "DELETE FROM dependency_versions WHERE id = $1",
                    params![id],
                )],
                Self::dependencies_notice(project_id),
            )
            .await?;
        Ok(())
    }

    /// Stores a published version; `Conflict` if the name is taken.
    pub async fn insert_version(&self, record: FunctionRecord) -> Result<(), StoreError> {
        let json = self.row(&record)?;
        let key = key_of(&record);
        self.db.write(vec![Statement::execute(
            "INSERT INTO function_versions (project_id, package, func_name, version, record) VALUES ($1, $2, $3, $4, $5)",
            params![&key.0, &key.1, &key.2, record.version, json],
        )], notice(&key)).await?;
        Ok(())
    }

    /// Rewrites a published version's record (its settings; code and config never change).
    pub async fn update_version(&self, record: FunctionRecord) -> Result<(), StoreError> {
        let json = self.row(&record)?;
        let key = key_of(&record);
        self.db.write(vec![Statement::execute(
            "UPDATE function_versions SET record = $5 WHERE project_id = $1 AND package = $2 AND func_name = $3 AND version = $4",
            params![&key.0, &key.1, &key.2, record.version, json],
        )], notice(&key)).await?;
        Ok(())
    }

    pub async fn delete_version(
        &self,
        key: &FunctionKey,
        version: String,
    ) -> Result<(), StoreError> {
        self.db.write(vec![Statement::execute(
            "DELETE FROM function_versions WHERE project_id = $1 AND package = $2 AND func_name = $3 AND version = $4",
            params![&key.0, &key.1, &key.2, version],
        )], notice(key)).await?;
        Ok(())
    }

    /// Creates or replaces an alias of the function `key`.
    pub async fn put_alias(&self, key: &FunctionKey, alias: Alias) -> Result<(), StoreError> {
        let json = serde_json::to_string(&alias)?;
        self.db.write(vec![Statement::execute(
            "INSERT INTO function_aliases (project_id, package, func_name, name, alias) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id, package, func_name, name) DO UPDATE SET alias = excluded.alias",
            params![&key.0, &key.1, &key.2, alias.name, json],
        )], notice(key)).await?;
        Ok(())
    }

    pub async fn delete_alias(&self, key: &FunctionKey, name: String) -> Result<(), StoreError> {
        self.db.write(vec![Statement::execute(
            "DELETE FROM function_aliases WHERE project_id = $1 AND package = $2 AND func_name = $3 AND name = $4",
            params![&key.0, &key.1, &key.2, name],
        )], notice(key)).await?;
        Ok(())
    }

    /// Inserts a new function; returns its sequence number (`Conflict` if the name is taken).
    pub async fn insert_function(&self, record: FunctionRecord) -> Result<i64, StoreError> {
        let json = self.row(&record)?;
        let key = key_of(&record);
        let outcome = self.db.write(vec![Statement::query(
            "INSERT INTO functions (project_id, package, func_name, record) VALUES ($1, $2, $3, $4) RETURNING seq",
            params![&key.0, &key.1, &key.2, json],
        )], notice(&key)).await?;
        let seq = outcome
            .first()
            .and_then(|o| o.rows.first())
            .ok_or_else(|| StoreError::Io("the insert returned no sequence number".into()))?
            .get(0)?;
        Ok(seq)
    }

    pub async fn update_function(&self, record: FunctionRecord) -> Result<(), StoreError> {
        let json = self.row(&record)?;
        let key = key_of(&record);
        self.db.write(vec![Statement::execute(
            "UPDATE functions SET record = $4 WHERE project_id = $1 AND package = $2 AND func_name = $3",
            params![&key.0, &key.1, &key.2, json],
        )], notice(&key)).await?;
        Ok(())
    }

    /// Deletes the function with its versions, aliases and triggers, in one transaction.
    pub async fn delete_function(&self, key: &FunctionKey) -> Result<(), StoreError> {
        let statements = [
            "functions",
            "function_versions",
            "function_aliases",
            "triggers",
        ]
        .into_iter()
        .map(|table| {
            Statement::execute(
                format!(
                    "DELETE FROM {table} WHERE project_id = $1 AND package = $2 AND func_name = $3"
                ),
                params![&key.0, &key.1, &key.2],
            )
        })
        .collect();
        self.db.write(statements, notice(key)).await?;
        Ok(())
    }

    /// Whether the shared database has the package `digest`.
    pub async fn has_package(&self, digest: &str) -> Result<bool, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT 1 FROM code_packages WHERE digest = $1",
                params![digest],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Keeps a package in the shared database (once per digest), in chunks of 1 MiB.
    pub async fn put_package(
        &self,
        digest: &str,
        kind: &PackageKind,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let (kind, filename) = match kind {
            PackageKind::Zip => ("zip", ""),
            PackageKind::Inline(filename) => ("inline", filename.as_str()),
        };
        let mut statements = vec![Statement::execute(
            "INSERT INTO code_packages (digest, kind, filename, size) VALUES ($1, $2, $3, $4)
             ON CONFLICT (digest) DO NOTHING",
            params![digest, kind, filename, bytes.len() as i64],
        )];
        for (n, chunk) in bytes.chunks(CHUNK).enumerate() {
            statements.push(Statement::execute(
                "INSERT INTO code_chunks (digest, n, data) VALUES ($1, $2, $3) ON CONFLICT (digest, n) DO NOTHING",
                params![digest, n as i64, chunk.to_vec()],
            ));
        }
        self.db.write(statements, None).await?;
        Ok(())
    }

    /// A package of the shared database: how it was uploaded and its bytes.
    pub async fn package(
        &self,
        digest: &str,
    ) -> Result<Option<(PackageKind, Vec<u8>)>, StoreError> {
        let mut outcomes = self
            .db
            .read(vec![
                Statement::query(
                    "SELECT kind, filename, size FROM code_packages WHERE digest = $1",
                    params![digest],
                ),
                Statement::query(
                    "SELECT data FROM code_chunks WHERE digest = $1 ORDER BY n",
                    params![digest],
                ),
            ])
            .await?
            .into_iter();
        let header = outcomes.next().unwrap_or_default().rows;
        let Some(header) = header.first() else {
            return Ok(None);
        };
        let kind = match header.get::<String>(0)?.as_str() {
            "inline" => PackageKind::Inline(header.get(1)?),
            _ => PackageKind::Zip,
        };
        let size: i64 = header.get(2)?;
        let mut bytes = Vec::with_capacity(size.max(0) as usize);
        for row in outcomes.next().unwrap_or_default().rows {
            bytes.extend_from_slice(&row.get::<Vec<u8>>(0)?);
        }
        if bytes.len() as i64 != size {
            return Err(StoreError::Io(format!(
                "package {digest}: {} of {size} bytes stored",
                bytes.len()
            )));
        }
        Ok(Some((kind, bytes)))
    }
}
