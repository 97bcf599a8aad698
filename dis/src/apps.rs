//! Consumer apps, their checkpoints, and consumer state.

use serde::Deserialize;

use crate::catalog::{AppRecord, Checkpoint};
use crate::error::DisError;
use crate::records::readable;
use crate::streams::{check_name, now_ms, parse_partition, Dis};

/// The only checkpoint type DIS has.
pub const LAST_READ: &str = "LAST_READ";
/// The longest checkpoint metadata.
pub const MAX_METADATA: usize = 1000;

/// An app as show and list answer it.
#[derive(Debug)]
pub struct AppView {
    pub app: AppRecord,
    /// The names of the streams it has committed checkpoints on.
    pub streams: Vec<String>,
}

/// The commit_checkpoint body.
#[derive(Debug, Deserialize)]
pub struct NewCheckpoint {
    pub app_name: Option<String>,
    pub checkpoint_type: Option<String>,
    pub stream_name: Option<String>,
    pub partition_id: Option<String>,
    pub sequence_number: Option<String>,
    pub metadata: Option<String>,
}

/// The query of show_checkpoint and delete_checkpoint.
#[derive(Debug, Default, Deserialize)]
pub struct CheckpointQuery {
    pub stream_name: Option<String>,
    pub app_name: Option<String>,
    pub checkpoint_type: Option<String>,
    pub partition_id: Option<String>,
}

/// One partition of show_consumer_state.
#[derive(Debug)]
pub struct PartitionState {
    pub partition: u32,
    /// The committed sequence number, `-1` when none.
    pub sequence_number: String,
    pub earliest: u64,
    pub latest: u64,
    pub status: &'static str,
}

fn required<'a>(what: &str, value: &'a Option<String>) -> Result<&'a str, DisError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| DisError::Invalid(format!("{what} is required")))
}

fn checkpoint_type(value: &Option<String>) -> Result<(), DisError> {
    match value.as_deref() {
        Some(LAST_READ) => Ok(()),
        None | Some("") => Err(DisError::Invalid("checkpoint_type is required".into())),
        Some(other) => Err(DisError::Invalid(format!(
            "checkpoint_type {other:?} is not LAST_READ"
        ))),
    }
}

impl Dis {
    pub fn create_app(&self, project_id: &str, name: Option<String>) -> Result<(), DisError> {
        let name = name.ok_or_else(|| DisError::Invalid("app_name is required".into()))?;
        check_name("app_name", &name, 200)?;
        if self.catalog.apps(project_id)?.len() >= self.config.app_quota {
            return Err(DisError::AppQuota(format!(
                "the project has {} apps, its quota",
                self.config.app_quota
            )));
        }
        let app = AppRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            name: name.clone(),
            create_time: now_ms(),
        };
        if !self.catalog.insert_app(project_id, &app)? {
            return Err(DisError::AppExists(name));
        }
        Ok(())
    }

    fn view(&self, project_id: &str, app: AppRecord) -> Result<AppView, DisError> {
        let mut streams: Vec<String> = self
            .catalog
            .checkpointed_streams(project_id, &app.name)?
            .iter()
            .filter_map(|id| self.stream_by_id(project_id, id))
            .map(|s| s.name.clone())
            .collect();
        streams.sort();
        Ok(AppView { app, streams })
    }

    /// The project's apps (those with checkpoints on `stream` if given), by name.
    pub fn apps(&self, project_id: &str, stream: Option<&str>) -> Result<Vec<AppView>, DisError> {
        let stream_id = match stream {
            Some(name) => Some(
                self.stream(project_id, name)?
                    .record
                    .read()
                    .unwrap()
                    .id
                    .clone(),
            ),
            None => None,
        };
        let mut out = Vec::new();
        for app in self.catalog.apps(project_id)? {
            if let Some(id) = &stream_id {
                if !self
                    .catalog
                    .checkpointed_streams(project_id, &app.name)?
                    .contains(id)
                {
                    continue;
                }
            }
            out.push(self.view(project_id, app)?);
        }
        Ok(out)
    }

    pub fn app(&self, project_id: &str, name: &str) -> Result<AppView, DisError> {
        let app = self
            .catalog
            .app(project_id, name)?
            .ok_or_else(|| DisError::NoApp(name.to_string()))?;
        self.view(project_id, app)
    }

    pub fn delete_app(&self, project_id: &str, name: &str) -> Result<(), DisError> {
        if !self.catalog.delete_app(project_id, name)? {
            return Err(DisError::NoApp(name.to_string()));
        }
        Ok(())
    }

    fn existing_app(&self, project_id: &str, name: &str) -> Result<(), DisError> {
        self.catalog
            .app(project_id, name)?
            .map(|_| ())
            .ok_or_else(|| DisError::NoApp(name.to_string()))
    }

    /// Commits a checkpoint: a sequence number within the partition's records.
    pub fn commit_checkpoint(&self, project_id: &str, c: NewCheckpoint) -> Result<(), DisError> {
        let app = required("app_name", &c.app_name)?;
        checkpoint_type(&c.checkpoint_type)?;
        let stream_name = required("stream_name", &c.stream_name)?;
        let partition_text = required("partition_id", &c.partition_id)?;
        let text = required("sequence_number", &c.sequence_number)?;
        if let Some(m) = &c.metadata {
            if m.chars().count() > MAX_METADATA {
                return Err(DisError::Invalid(format!(
                    "metadata is longer than {MAX_METADATA} characters"
                )));
            }
        }
        self.existing_app(project_id, app)?;
        let stream = self.stream(project_id, stream_name)?;
        let partition = parse_partition(partition_text)?;
        let log = readable(&stream, partition, partition_text)?;
        let sequence: u64 = text
            .parse()
            .map_err(|_| DisError::SequenceNumber(text.to_string()))?;
        let (earliest, end) = log.bounds();
        if sequence < earliest || sequence > end {
            return Err(DisError::OutOfRange {
                given: text.to_string(),
                earliest,
                latest: end,
            });
        }
        self.catalog.commit_checkpoint(
            project_id,
            app,
            &stream.id,
            partition,
            LAST_READ,
            &Checkpoint {
                sequence_number: sequence.to_string(),
                metadata: c.metadata,
            },
        )?;
        Ok(())
    }

    /// A committed checkpoint; `-1` when the app committed none on the partition.
    pub fn checkpoint(&self, project_id: &str, q: CheckpointQuery) -> Result<Checkpoint, DisError> {
        let app = required("app_name", &q.app_name)?;
        checkpoint_type(&q.checkpoint_type)?;
        let stream_name = required("stream_name", &q.stream_name)?;
        let partition_text = required("partition_id", &q.partition_id)?;
        self.existing_app(project_id, app)?;
        let stream = self.stream(project_id, stream_name)?;
        let partition = parse_partition(partition_text)?;
        readable(&stream, partition, partition_text)?;
        Ok(self
            .catalog
            .checkpoint(project_id, app, &stream.id, partition, LAST_READ)?
            .unwrap_or(Checkpoint {
                sequence_number: "-1".into(),
                metadata: None,
            }))
    }

    /// Deletes an app's checkpoints on a stream (one partition's when named).
    pub fn delete_checkpoint(&self, project_id: &str, q: CheckpointQuery) -> Result<(), DisError> {
        let app = required("app_name", &q.app_name)?;
        checkpoint_type(&q.checkpoint_type)?;
        let stream_name = required("stream_name", &q.stream_name)?;
        self.existing_app(project_id, app)?;
        let stream = self.stream(project_id, stream_name)?;
        let partition = match q.partition_id.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Some(parse_partition(p)?),
            None => None,
        };
        let id = stream.id.clone();
        if self
            .catalog
            .delete_checkpoints(project_id, app, &id, LAST_READ, partition)?
            == 0
        {
            return Err(DisError::NoCheckpoint {
                app: app.to_string(),
                stream: stream_name.to_string(),
            });
        }
        Ok(())
    }

    /// Per readable partition after `start` (at most `limit`): the app's checkpoint and the
    /// partition's offsets. Answers whether more partitions follow.
    pub fn consumer_state(
        &self,
        project_id: &str,
        app: &str,
        stream_name: &str,
        start: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<PartitionState>, bool), DisError> {
        self.existing_app(project_id, app)?;
        let stream = self.stream(project_id, stream_name)?;
        let record = stream.snapshot();
        let after = match start.filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_partition(s)?),
            None => None,
        };
        let mut states = Vec::new();
        let mut more = false;
        for (i, p) in record.partitions.iter().enumerate() {
            let i = i as u32;
            if after.is_some_and(|a| i <= a) || !record.readable(i) {
                continue;
            }
            if states.len() == limit {
                more = true;
                break;
            }
            let Some(log) = stream.log(i) else { continue };
            let (earliest, latest) = log.bounds();
            let sequence_number = self
                .catalog
                .checkpoint(project_id, app, &record.id, i, LAST_READ)?
                .map_or_else(|| "-1".to_string(), |c| c.sequence_number);
            states.push(PartitionState {
                partition: i,
                sequence_number,
                earliest,
                latest,
                status: p.status.name(),
            });
        }
        Ok((states, more))
    }
}
