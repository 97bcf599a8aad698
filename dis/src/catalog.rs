//! What DIS knows besides the records: streams, consumer apps and their checkpoints, in one
//! SQLite file (`dis.sqlite3`, WAL, synchronous writes). The records themselves live in the
//! partition logs ([`crate::log`]).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A stream's definition and partitions, stored as one JSON row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRecord {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub stream_type: String,
    pub data_type: String,
    /// `data_duration`, hours.
    pub retention_hours: u32,
    pub data_schema: Option<String>,
    pub compression_format: Option<String>,
    pub csv_properties: Option<serde_json::Value>,
    pub auto_scale_enabled: bool,
    pub auto_scale_min_partition_count: Option<u32>,
    pub auto_scale_max_partition_count: Option<u32>,
    pub tags: Vec<Tag>,
    pub sys_tags: Vec<Tag>,
    /// Milliseconds since the epoch.
    pub create_time: i64,
    pub last_modified_time: i64,
    /// Every partition the stream ever had, by index.
    pub partitions: Vec<PartitionRecord>,
    pub partition_changes: Vec<PartitionChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A partition: writable while ACTIVE; after a scale-down DELETED (still readable) until
/// its records expire, then EXPIRED.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub status: PartitionStatus,
    /// When a scale-down removed it (milliseconds).
    pub deleted_time: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartitionStatus {
    Active,
    Deleted,
    Expired,
}

impl PartitionStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Deleted => "DELETED",
            Self::Expired => "EXPIRED",
        }
    }
}

/// One `update_partition_count`, as describe-stream lists them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionChange {
    pub create_timestamp: i64,
    pub src_partition_count: u32,
    pub target_partition_count: u32,
}

impl StreamRecord {
    /// The indexes of the writable (ACTIVE) partitions, in order: the hash space is cut
    /// among these.
    pub fn writable(&self) -> Vec<u32> {
        (0..self.partitions.len() as u32)
            .filter(|&i| self.partitions[i as usize].status == PartitionStatus::Active)
            .collect()
    }

    /// Whether partition `index` can be read (ACTIVE or DELETED).
    pub fn readable(&self, index: u32) -> bool {
        self.partitions
            .get(index as usize)
            .is_some_and(|p| p.status != PartitionStatus::Expired)
    }
}

/// A consumer app.
#[derive(Debug, Clone)]
pub struct AppRecord {
    pub name: String,
    pub id: String,
    pub create_time: i64,
}

/// A committed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub sequence_number: String,
    pub metadata: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("a stored stream: {0}")]
    Json(#[from] serde_json::Error),
}

pub struct Catalog {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dis_streams (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    record     TEXT NOT NULL,
    UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS dis_apps (
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    id          TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
);
CREATE TABLE IF NOT EXISTS dis_policies (
    stream_id      TEXT NOT NULL,
    principal_name TEXT NOT NULL,
    action_type    TEXT NOT NULL,
    PRIMARY KEY (stream_id, principal_name, action_type)
);
CREATE TABLE IF NOT EXISTS dis_checkpoints (
    project_id      TEXT NOT NULL,
    app_name        TEXT NOT NULL,
    stream_id       TEXT NOT NULL,
    partition       INTEGER NOT NULL,
    checkpoint_type TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    metadata        TEXT,
    PRIMARY KEY (project_id, app_name, stream_id, partition, checkpoint_type)
);
";

impl Catalog {
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub fn streams(&self) -> Result<Vec<StreamRecord>, CatalogError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare("SELECT record FROM dis_streams")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// Inserts a new stream; `false` when the project has one of that name.
    pub fn insert_stream(&self, s: &StreamRecord) -> Result<bool, CatalogError> {
        let json = serde_json::to_string(s)?;
        let conn = self.conn.lock().unwrap();
        let n = conn.execute(
            "INSERT OR IGNORE INTO dis_streams (id, project_id, name, record) VALUES (?1, ?2, ?3, ?4)",
            params![s.id, s.project_id, s.name, json],
        )?;
        Ok(n == 1)
    }

    pub fn update_stream(&self, s: &StreamRecord) -> Result<(), CatalogError> {
        let json = serde_json::to_string(s)?;
        self.conn.lock().unwrap().execute(
            "UPDATE dis_streams SET record = ?2 WHERE id = ?1",
            params![s.id, json],
        )?;
        Ok(())
    }

    /// Deletes a stream and every checkpoint committed on it.
    pub fn delete_stream(&self, id: &str) -> Result<(), CatalogError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM dis_streams WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM dis_checkpoints WHERE stream_id = ?1", [id])?;
        tx.execute("DELETE FROM dis_policies WHERE stream_id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Inserts an app; `false` when the project has one of that name.
    pub fn insert_app(&self, project_id: &str, app: &AppRecord) -> Result<bool, CatalogError> {
        let n = self.conn.lock().unwrap().execute(
            "INSERT OR IGNORE INTO dis_apps (project_id, name, id, create_time) VALUES (?1, ?2, ?3, ?4)",
            params![project_id, app.name, app.id, app.create_time],
        )?;
        Ok(n == 1)
    }

    /// The project's apps, by name.
    pub fn apps(&self, project_id: &str) -> Result<Vec<AppRecord>, CatalogError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(
            "SELECT name, id, create_time FROM dis_apps WHERE project_id = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([project_id], |r| {
            Ok(AppRecord {
                name: r.get(0)?,
                id: r.get(1)?,
                create_time: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn app(&self, project_id: &str, name: &str) -> Result<Option<AppRecord>, CatalogError> {
        Ok(self
            .conn
            .lock()
            .unwrap()
            .query_row(
                "SELECT name, id, create_time FROM dis_apps WHERE project_id = ?1 AND name = ?2",
                [project_id, name],
                |r| {
                    Ok(AppRecord {
                        name: r.get(0)?,
                        id: r.get(1)?,
                        create_time: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Deletes an app and its checkpoints; `false` when there was none.
    pub fn delete_app(&self, project_id: &str, name: &str) -> Result<bool, CatalogError> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM dis_apps WHERE project_id = ?1 AND name = ?2",
            [project_id, name],
        )?;
        tx.execute(
            "DELETE FROM dis_checkpoints WHERE project_id = ?1 AND app_name = ?2",
            [project_id, name],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// The ids of the streams an app has committed checkpoints on.
    pub fn checkpointed_streams(
        &self,
        project_id: &str,
        app: &str,
    ) -> Result<Vec<String>, CatalogError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(
            "SELECT DISTINCT stream_id FROM dis_checkpoints WHERE project_id = ?1 AND app_name = ?2",
        )?;
        let rows = stmt.query_map([project_id, app], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn commit_checkpoint(
        &self,
        project_id: &str,
        app: &str,
        stream_id: &str,
        partition: u32,
        checkpoint_type: &str,
        checkpoint: &Checkpoint,
    ) -> Result<(), CatalogError> {
        self.conn.lock().unwrap().execute(
            "INSERT INTO dis_checkpoints
                 (project_id, app_name, stream_id, partition, checkpoint_type, sequence_number, metadata)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO UPDATE SET sequence_number = excluded.sequence_number,
                                       metadata = excluded.metadata",
            params![
                project_id,
                app,
                stream_id,
                partition,
                checkpoint_type,
                checkpoint.sequence_number,
                checkpoint.metadata
            ],
        )?;
        Ok(())
    }

    pub fn checkpoint(
        &self,
        project_id: &str,
        app: &str,
        stream_id: &str,
        partition: u32,
        checkpoint_type: &str,
    ) -> Result<Option<Checkpoint>, CatalogError> {
        Ok(self
            .conn
            .lock()
            .unwrap()
            .query_row(
                "SELECT sequence_number, metadata FROM dis_checkpoints
                 WHERE project_id = ?1 AND app_name = ?2 AND stream_id = ?3 AND partition = ?4
                   AND checkpoint_type = ?5",
                params![project_id, app, stream_id, partition, checkpoint_type],
                |r| {
                    Ok(Checkpoint {
                        sequence_number: r.get(0)?,
                        metadata: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Deletes an app's checkpoints on a stream (one partition's, or all); answers how
    /// many went.
    pub fn delete_checkpoints(
        &self,
        project_id: &str,
        app: &str,
        stream_id: &str,
        checkpoint_type: &str,
        partition: Option<u32>,
    ) -> Result<usize, CatalogError> {
        let conn = self.conn.lock().unwrap();
        Ok(match partition {
            Some(p) => conn.execute(
                "DELETE FROM dis_checkpoints WHERE project_id = ?1 AND app_name = ?2
                   AND stream_id = ?3 AND checkpoint_type = ?4 AND partition = ?5",
                params![project_id, app, stream_id, checkpoint_type, p],
            )?,
            None => conn.execute(
                "DELETE FROM dis_checkpoints WHERE project_id = ?1 AND app_name = ?2
                   AND stream_id = ?3 AND checkpoint_type = ?4",
                params![project_id, app, stream_id, checkpoint_type],
            )?,
        })
    }

    /// A stream's policy rules, by principal.
    pub fn policies(&self, stream_id: &str) -> Result<Vec<crate::policies::Rule>, CatalogError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(
            "SELECT principal_name, action_type FROM dis_policies WHERE stream_id = ?1
             ORDER BY principal_name, action_type",
        )?;
        let rows = stmt.query_map([stream_id], |r| {
            Ok(crate::policies::Rule {
                principal_name: r.get(0)?,
                action_type: r.get(1)?,
                effect: "accept".into(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn add_policy(
        &self,
        stream_id: &str,
        principal: &str,
        action: &str,
    ) -> Result<(), CatalogError> {
        self.conn.lock().unwrap().execute(
            "INSERT OR IGNORE INTO dis_policies (stream_id, principal_name, action_type) VALUES (?1, ?2, ?3)",
            params![stream_id, principal, action],
        )?;
        Ok(())
    }

    /// Deletes a principal's rules (of one action type when given); answers how many went.
    pub fn delete_policy(
        &self,
        stream_id: &str,
        principal: &str,
        action: Option<&str>,
    ) -> Result<usize, CatalogError> {
        let conn = self.conn.lock().unwrap();
        Ok(match action {
            Some(a) => conn.execute(
                "DELETE FROM dis_policies WHERE stream_id = ?1 AND principal_name = ?2 AND action_type = ?3",
                params![stream_id, principal, a],
            )?,
            None => conn.execute(
                "DELETE FROM dis_policies WHERE stream_id = ?1 AND principal_name = ?2",
                params![stream_id, principal],
            )?,
        })
    }
}
