//! Stream definitions and statuses, and target connections, persisted in the host's SQLite
//! store.
//!
//! Broker passwords ([`STREAM_SECRETS`], [`CONNECTION_SECRETS`]) are sealed with the host key
//! on the way in and opened on the way out: the rows never hold them in clear, while the
//! engine, which must log in to the broker, reads them as given.

use std::sync::{Arc, Mutex};

use fgs_secrets::HostKey;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

/// Where a stream definition holds a secret (JSON pointers).
pub const STREAM_SECRETS: &[&str] = &[
    "/source/source_kafka/password",
    "/source/source_kafka/ssl_certificate_pwd",
    "/source/source_community_rocketmq/secret_key",
    "/source/source_dms_rocketmq/secret_key",
    "/source/source_mobile_rocketmq/secret_key",
];
/// Where a connection holds a secret.
pub const CONNECTION_SECRETS: &[&str] = &["/kafka_detail/password"];

/// One stored stream.
#[derive(Debug, Clone)]
pub struct StoredStream {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub definition: Value,
    pub status: String,
    pub created_time: String,
    pub updated_time: String,
}

/// A stored target connection: its id, name and full JSON (what show and list return, plus
/// the password, which they leave out).
#[derive(Debug, Clone)]
pub struct StoredConnection {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub detail: Value,
}

/// The `event_streams` and `eg_connections` tables.
#[derive(Clone)]
pub struct StreamStore {
    conn: Arc<Mutex<Connection>>,
    key: Arc<HostKey>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS event_streams (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    project_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    definition   TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_time TEXT NOT NULL,
    updated_time TEXT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS eg_resources (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    project_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    UNIQUE (project_id, kind, name)
);
CREATE TABLE IF NOT EXISTS eg_connections (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    project_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    UNIQUE (project_id, name)
);
";

type Row = (String, String, String, String, String, String, String);

fn stream(row: Row) -> rusqlite::Result<StoredStream> {
    let (id, project_id, name, definition, status, created_time, updated_time) = row;
    let definition = serde_json::from_str(&definition).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(StoredStream {
        id,
        project_id,
        name,
        definition,
        status,
        created_time,
        updated_time,
    })
}

const COLUMNS: &str = "id, project_id, name, definition, status, created_time, updated_time";

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

impl StreamStore {
    /// Uses `conn` (set up by the host, which owns the database) and creates the table;
    /// secrets are sealed with `key`. Rows written before secrets were sealed are sealed now.
    pub fn new(conn: Connection, key: Arc<HostKey>) -> rusqlite::Result<Self> {
        conn.execute_batch(SCHEMA)?;
        let store = Self {
            conn: Arc::new(Mutex::new(conn)),
            key,
        };
        store.seal_clear_rows()?;
        Ok(store)
    }

    /// `value` as stored: its secrets at `pointers` sealed.
    fn sealed(&self, value: &Value, pointers: &[&str]) -> String {
        let mut value = value.clone();
        for pointer in pointers {
            if let Some(Value::String(secret)) = value.pointer_mut(pointer) {
                if !secret.is_empty() && !HostKey::is_sealed(secret) {
                    *secret = self.key.seal(secret);
                }
            }
        }
        value.to_string()
    }

    /// `value` as read: its secrets at `pointers` opened.
    fn open(&self, mut value: Value, pointers: &[&str]) -> rusqlite::Result<Value> {
        for pointer in pointers {
            if let Some(Value::String(secret)) = value.pointer_mut(pointer) {
                if HostKey::is_sealed(secret) {
                    *secret = self.key.open(secret).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?;
                }
            }
        }
        Ok(value)
    }

    fn open_stream(&self, mut s: StoredStream) -> rusqlite::Result<StoredStream> {
        s.definition = self.open(s.definition, STREAM_SECRETS)?;
        Ok(s)
    }

    fn open_connection(&self, mut c: StoredConnection) -> rusqlite::Result<StoredConnection> {
        c.detail = self.open(c.detail, CONNECTION_SECRETS)?;
        Ok(c)
    }

    /// Seals the secrets of rows that hold them in clear (written by an older fgs); SQLite
    /// picks those rows, so a start reads nothing else.
    fn seal_clear_rows(&self) -> rusqlite::Result<()> {
        let conn = self.conn.lock().unwrap();
        let mut sealed_now = 0;
        for (table, column, pointers) in [
            ("event_streams", "definition", STREAM_SECRETS),
            ("eg_connections", "detail", CONNECTION_SECRETS),
        ] {
            for pointer in pointers {
                let path = format!("${}", pointer.replace('/', "."));
                let rows: Vec<(String, String)> = conn
                    .prepare(&format!(
                        "SELECT id, {column} FROM {table} WHERE json_extract({column}, ?1) <> ''
                         AND json_extract({column}, ?1) NOT LIKE 'fgs-sealed:%'"
                    ))?
                    .query_map([&path], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (id, text) in rows {
                    let Ok(value) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    conn.execute(
                        &format!("UPDATE {table} SET {column} = ?2 WHERE id = ?1"),
                        params![id, self.sealed(&value, pointers)],
                    )?;
                    sealed_now += 1;
                }
            }
        }
        if sealed_now > 0 {
            // The clear pages stay in the main file until the WAL is written back: do it now.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Inserts a stream within `bound`, its name unique in the project.
    pub fn insert(&self, s: &StoredStream, bound: Bound) -> rusqlite::Result<Inserted> {
        let conn = self.conn.lock().unwrap();
        bound.insert(&conn, "event_streams", None, &s.project_id, |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO event_streams ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    s.id,
                    s.project_id,
                    s.name,
                    self.sealed(&s.definition, STREAM_SECRETS),
                    s.status,
                    s.created_time,
                    s.updated_time
                ],
            )
        })
    }

    /// Replaces a stream's definition (and name) and status; `Ok(false)` on a name clash.
    pub fn update(&self, s: &StoredStream) -> rusqlite::Result<bool> {
        let conn = self.conn.lock().unwrap();
        unless_name_taken(conn.execute(
            "UPDATE event_streams SET name = ?3, definition = ?4, status = ?5, updated_time = ?6
             WHERE project_id = ?1 AND id = ?2",
            params![
                s.project_id,
                s.id,
                s.name,
                self.sealed(&s.definition, STREAM_SECRETS),
                s.status,
                s.updated_time
            ],
        ))
    }

    pub fn get(&self, project_id: &str, id: &str) -> rusqlite::Result<Option<StoredStream>> {
        let conn = self.conn.lock().unwrap();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM event_streams WHERE project_id = ?1 AND id = ?2"),
            params![project_id, id],
            read,
        )
        .optional()?
        .map(|row| stream(row).and_then(|s| self.open_stream(s)))
        .transpose()
    }

    /// A page of a project's streams in creation order, and the total.
    pub fn list(
        &self,
        project_id: &str,
        offset: i64,
        limit: i64,
    ) -> rusqlite::Result<(Vec<StoredStream>, i64)> {
        let conn = self.conn.lock().unwrap();
        let (rows, total) = page(
            &conn,
            "event_streams",
            COLUMNS,
            (project_id, offset, limit),
            read,
        )?;
        Ok((
            rows.into_iter()
                .map(|row| stream(row).and_then(|s| self.open_stream(s)))
                .collect::<rusqlite::Result<_>>()?,
            total,
        ))
    }

    pub fn set_status(&self, project_id: &str, id: &str, status: &str) -> rusqlite::Result<()> {
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "UPDATE event_streams SET status = ?3 WHERE project_id = ?1 AND id = ?2",
            params![project_id, id, status],
        )?;
        Ok(())
    }

    /// Every stream (of any project) with one of `statuses`.
    pub fn with_status(&self, statuses: &[&str]) -> rusqlite::Result<Vec<StoredStream>> {
        let conn = self.conn.lock().unwrap();
        let marks: Vec<String> = (1..=statuses.len()).map(|i| format!("?{i}")).collect();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM event_streams WHERE status IN ({}) ORDER BY seq",
            marks.join(",")
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(statuses.iter()), read)?;
        rows.map(|r| r.and_then(stream).and_then(|s| self.open_stream(s)))
            .collect()
    }

    /// Deletes a stream; whether it existed.
    pub fn delete(&self, project_id: &str, id: &str) -> rusqlite::Result<bool> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.execute(
            "DELETE FROM event_streams WHERE project_id = ?1 AND id = ?2",
            params![project_id, id],
        )? > 0)
    }

    /// Inserts a connection within `bound`, its name unique in the project.
    pub fn insert_connection(
        &self,
        c: &StoredConnection,
        bound: Bound,
    ) -> rusqlite::Result<Inserted> {
        let conn = self.conn.lock().unwrap();
        bound.insert(&conn, "eg_connections", None, &c.project_id, |conn| {
            conn.execute(
                "INSERT INTO eg_connections (id, project_id, name, detail) VALUES (?1, ?2, ?3, ?4)",
                params![
                    c.id,
                    c.project_id,
                    c.name,
                    self.sealed(&c.detail, CONNECTION_SECRETS)
                ],
            )
        })
    }

    pub fn connection(
        &self,
        project_id: &str,
        id: &str,
    ) -> rusqlite::Result<Option<StoredConnection>> {
        let conn = self.conn.lock().unwrap();
        conn.query_row(
            &format!(
                "SELECT {CONNECTION_COLUMNS} FROM eg_connections WHERE project_id = ?1 AND id = ?2"
            ),
            params![project_id, id],
            read_connection,
        )
        .optional()?
        .map(|c| self.open_connection(c))
        .transpose()
    }

    /// A page of a project's connections in creation order, and the total.
    pub fn connections(
        &self,
        project_id: &str,
        offset: i64,
        limit: i64,
    ) -> rusqlite::Result<(Vec<StoredConnection>, i64)> {
        let conn = self.conn.lock().unwrap();
        let (rows, total) = page(
            &conn,
            "eg_connections",
            CONNECTION_COLUMNS,
            (project_id, offset, limit),
            read_connection,
        )?;
        Ok((
            rows.into_iter()
                .map(|c| self.open_connection(c))
                .collect::<rusqlite::Result<_>>()?,
            total,
        ))
    }

    /// The id of a stream of the project whose sink writes through connection `id`, if any.
    pub fn stream_using_connection(
        &self,
        project_id: &str,
        id: &str,
    ) -> rusqlite::Result<Option<String>> {
        let conn = self.conn.lock().unwrap();
        conn.query_row(
            "SELECT id FROM event_streams WHERE project_id = ?1
             AND json_extract(definition, '$.sink.sink_kafka.connectionId') = ?2 LIMIT 1",
            params![project_id, id],
            |r| r.get(0),
        )
        .optional()
    }

    /// Deletes a connection; whether it existed.
    pub fn delete_connection(&self, project_id: &str, id: &str) -> rusqlite::Result<bool> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.execute(
            "DELETE FROM eg_connections WHERE project_id = ?1 AND id = ?2",
            params![project_id, id],
        )? > 0)
    }
}

const CONNECTION_COLUMNS: &str = "id, project_id, name, detail";

/// Rows `offset..offset + limit` of a project's rows of `table` in creation order, and how many
/// it has.
fn page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    (project_id, offset, limit): (&str, i64, i64),
    read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<(Vec<T>, i64)> {
    let total = conn.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE project_id = ?1"),
        [project_id],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {columns} FROM {table} WHERE project_id = ?1 ORDER BY seq LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(params![project_id, limit, offset], read)?;
    Ok((rows.collect::<rusqlite::Result<Vec<T>>>()?, total))
}

fn read_connection(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredConnection> {
    let Resource {
        id,
        project_id,
        name,
        detail,
    } = read_resource(row)?;
    Ok(StoredConnection {
        id,
        project_id,
        name,
        detail,
    })
}

/// A channel, a subscription or an event source: kept as the JSON the API answers, under its
/// kind.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub detail: Value,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Done,
    NameTaken,
    ProjectFull,
    HostFull,
}

/// How many rows of a kind (streams, connections, channels, …) a project and the host may have.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub per_project: usize,
    pub per_host: usize,
}

impl Bound {
    /// Runs `insert` unless the project already has `per_project` rows of `table` (of `kind`,
    /// for `eg_resources`) or the host `per_host`; the caller holds the store's lock, so
    /// concurrent inserts cannot pass the bound together.
    fn insert(
        self,
        conn: &rusqlite::Connection,
        table: &'static str,
        kind: Option<&str>,
        project_id: &str,
        insert: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<usize>,
    ) -> rusqlite::Result<Inserted> {
        // Only eg_resources has a kind column.
        let of_kind = if kind.is_some() {
            "kind = ?1"
        } else {
            "?1 IS NULL"
        };
        let count = |project: Option<&str>| -> rusqlite::Result<usize> {
            conn.query_row(
                &format!(
                    "SELECT COUNT(*) FROM {table}
                     WHERE {of_kind} AND (?2 IS NULL OR project_id = ?2)"
                ),
                params![kind, project],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as usize)
        };
        if count(Some(project_id))? >= self.per_project {
            return Ok(Inserted::ProjectFull);
        }
        if count(None)? >= self.per_host {
            return Ok(Inserted::HostFull);
        }
        Ok(if unless_name_taken(insert(conn))? {
            Inserted::Done
        } else {
            Inserted::NameTaken
        })
    }
}

/// The kinds of [`Resource`].
pub const CHANNEL: &str = "channel";
pub const SUBSCRIPTION: &str = "subscription";
pub const SOURCE: &str = "source";

fn read_resource(row: &rusqlite::Row<'_>) -> rusqlite::Result<Resource> {
    let detail: String = row.get(3)?;
    Ok(Resource {
        id: row.get(0)?,
        project_id: row.get(1)?,
        name: row.get(2)?,
        detail: serde_json::from_str(&detail).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
    })
}

impl StreamStore {
    /// Inserts a resource of `kind` within `bound` (of that kind), its name unique in the
    /// project.
    pub fn insert_resource(
        &self,
        kind: &str,
        r: &Resource,
        bound: Bound,
    ) -> rusqlite::Result<Inserted> {
        let conn = self.conn.lock().unwrap();
        bound.insert(&conn, "eg_resources", Some(kind), &r.project_id, |conn| {
            conn.execute(
                "INSERT INTO eg_resources (id, project_id, kind, name, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id, r.project_id, kind, r.name, r.detail.to_string()],
            )
        })
    }

    /// Replaces a resource's detail; whether it existed.
    pub fn update_resource(&self, kind: &str, r: &Resource) -> rusqlite::Result<bool> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.execute(
            "UPDATE eg_resources SET detail = ?4 WHERE project_id = ?1 AND kind = ?2 AND id = ?3",
            params![r.project_id, kind, r.id, r.detail.to_string()],
        )? > 0)
    }

    pub fn resource(
        &self,
        kind: &str,
        project_id: &str,
        id: &str,
    ) -> rusqlite::Result<Option<Resource>> {
        let conn = self.conn.lock().unwrap();
        conn.query_row(
            "SELECT id, project_id, name, detail FROM eg_resources WHERE project_id = ?1 AND kind = ?2 AND id = ?3",
            params![project_id, kind, id],
            read_resource,
        )
        .optional()
    }

    /// A project's resources of `kind`, in creation order.
    pub fn resources(&self, kind: &str, project_id: &str) -> rusqlite::Result<Vec<Resource>> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT id, project_id, name, detail FROM eg_resources WHERE project_id = ?1 AND kind = ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![project_id, kind], read_resource)?;
        rows.collect()
    }

    pub fn delete_resource(
        &self,
        kind: &str,
        project_id: &str,
        id: &str,
    ) -> rusqlite::Result<bool> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.execute(
            "DELETE FROM eg_resources WHERE project_id = ?1 AND kind = ?2 AND id = ?3",
            params![project_id, kind, id],
        )? > 0)
    }
}

/// `Ok(true)` when a write happened, `Ok(false)` when it broke a uniqueness constraint (a
/// name already taken in the project).
fn unless_name_taken(written: rusqlite::Result<usize>) -> rusqlite::Result<bool> {
    match written {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
