//! Streams: create, list, describe, delete, change the partition count; the partition logs
//! they own; retention.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::Deserialize;

use crate::catalog::{
    Catalog, PartitionChange, PartitionRecord, PartitionStatus, StreamRecord, Tag,
};
use crate::error::DisError;
use crate::log::{LogConfig, PartitionLog};
use crate::metrics::{HostMetrics, PartitionCounters, StreamCounters};

/// Limits of the service.
#[derive(Debug, Clone)]
pub struct DisConfig {
    /// Partition units per project (a COMMON partition is one, an ADVANCED one five: DIS's
    /// default quota is 50 COMMON or 10 ADVANCED partitions).
    pub partition_quota: u32,
    /// Apps per project.
    pub app_quota: usize,
    /// Partitions on the host, whatever the projects (readable ones count: each has a log
    /// and its files). Without authentication any project id is a tenant: this keeps
    /// invented ids from multiplying the project quota.
    pub host_partitions: u32,
    pub log: LogConfig,
}

impl Default for DisConfig {
    fn default() -> Self {
        Self {
            partition_quota: 50,
            app_quota: 50,
            host_partitions: 1000,
            log: LogConfig::default(),
        }
    }
}

/// The Data Ingestion Service of one host.
pub struct Dis {
    root: PathBuf,
    pub(crate) catalog: Catalog,
    streams: RwLock<Index>,
    /// Serializes the changes that check a quota (create, scale).
    admin: Mutex<()>,
    pub(crate) config: DisConfig,
    pub(crate) host_metrics: HostMetrics,
}

/// The streams, by (project, name) and by id; changed only by [`Index::insert`] and
/// [`Index::remove`], which keep the two in step.
#[derive(Default)]
struct Index {
    by_name: HashMap<(String, String), Arc<Stream>>,
    by_id: HashMap<String, Arc<Stream>>,
}

impl Index {
    fn insert(&mut self, stream: Arc<Stream>) {
        self.by_id.insert(stream.id.clone(), stream.clone());
        self.by_name
            .insert((stream.project.clone(), stream.name.clone()), stream);
    }

    fn remove(&mut self, stream: &Stream) {
        self.by_id.remove(&stream.id);
        self.by_name
            .remove(&(stream.project.clone(), stream.name.clone()));
    }
}

/// A stream and its partition logs and counters (index = partition number).
pub struct Stream {
    /// What never changes after creation, readable without a lock.
    pub(crate) id: String,
    pub(crate) project: String,
    pub(crate) name: String,
    pub(crate) record: RwLock<StreamRecord>,
    logs: RwLock<Vec<Option<Arc<PartitionLog>>>>,
    pub(crate) counters: StreamCounters,
    partition_counters: RwLock<Vec<Arc<PartitionCounters>>>,
}

impl Stream {
    /// The log of a readable partition.
    pub(crate) fn log(&self, partition: u32) -> Option<Arc<PartitionLog>> {
        self.logs
            .read()
            .unwrap()
            .get(partition as usize)
            .cloned()
            .flatten()
    }

    /// The counters of a partition (every partition the stream ever had has them).
    pub(crate) fn partition_counters(&self, partition: u32) -> Option<Arc<PartitionCounters>> {
        self.partition_counters
            .read()
            .unwrap()
            .get(partition as usize)
            .cloned()
    }

    pub(crate) fn all_partition_counters(&self) -> Vec<Arc<PartitionCounters>> {
        self.partition_counters.read().unwrap().clone()
    }

    fn new(record: StreamRecord, logs: Vec<Option<Arc<PartitionLog>>>) -> Arc<Self> {
        let counters = (0..record.partitions.len())
            .map(|_| Arc::default())
            .collect();
        Arc::new(Self {
            id: record.id.clone(),
            project: record.project_id.clone(),
            name: record.name.clone(),
            record: RwLock::new(record),
            logs: RwLock::new(logs),
            counters: StreamCounters::default(),
            partition_counters: RwLock::new(counters),
        })
    }

    pub(crate) fn snapshot(&self) -> StreamRecord {
        self.record.read().unwrap().clone()
    }
}

/// `partition_id` as DIS writes it.
pub fn partition_name(index: u32) -> String {
    format!("shardId-{index:010}")
}

/// A `partition_id` as a client may write it: `shardId-0000000003` or `3`.
pub fn parse_partition(text: &str) -> Result<u32, DisError> {
    let digits = text.strip_prefix("shardId-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DisError::PartitionId(text.to_string()));
    }
    digits
        .parse()
        .map_err(|_| DisError::PartitionId(text.to_string()))
}

/// A name of DIS's alphabet (`[A-Za-z0-9_-]`, 1…`max` characters).
pub(crate) fn check_name(what: &str, name: &str, max: usize) -> Result<(), DisError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DisError::Invalid(format!(
            "{what} {name:?} must be 1 to {max} letters, digits, '_' or '-'"
        )))
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The create-stream body.
#[derive(Debug, Deserialize)]
pub struct NewStream {
    pub stream_name: Option<String>,
    pub partition_count: Option<i64>,
    pub stream_type: Option<String>,
    pub data_type: Option<String>,
    pub data_duration: Option<i64>,
    pub auto_scale_enabled: Option<bool>,
    pub auto_scale_min_partition_count: Option<i64>,
    pub auto_scale_max_partition_count: Option<i64>,
    pub data_schema: Option<String>,
    pub csv_properties: Option<serde_json::Value>,
    pub compression_format: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub sys_tags: Vec<Tag>,
}

/// Partition units of a stream type against the quota.
fn units(stream_type: &str) -> u32 {
    if stream_type == "ADVANCED" {
        5
    } else {
        1
    }
}

fn one_of(what: &str, value: Option<String>, allowed: &[&str]) -> Result<String, DisError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(allowed[0].to_string()),
        Some(v) if allowed.contains(&v.as_str()) => Ok(v),
        Some(v) => Err(DisError::Invalid(format!(
            "{what} {v:?} is not one of {allowed:?}"
        ))),
    }
}

fn check_tags(tags: &[Tag]) -> Result<(), DisError> {
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        if tag.key.is_empty() || tag.key.chars().count() > 36 || tag.value.chars().count() > 43 {
            return Err(DisError::Invalid(format!(
                "tag {:?}: keys are 1 to 36 characters, values at most 43",
                tag.key
            )));
        }
        if !seen.insert(&tag.key) {
            return Err(DisError::Invalid(format!(
                "tag key {:?} is repeated",
                tag.key
            )));
        }
    }
    if tags.len() > 10 {
        return Err(DisError::Invalid("at most 10 tags per stream".into()));
    }
    Ok(())
}

impl Dis {
    /// Opens the service's catalog and every stream's logs under `root`.
    pub fn open(
        root: &Path,
        config: DisConfig,
        registry: &prometheus::Registry,
    ) -> Result<Arc<Self>, DisError> {
        let host_metrics = HostMetrics::new(registry)
            .map_err(|e| DisError::Io(std::io::Error::other(e.to_string())))?;
        std::fs::create_dir_all(root.join("streams"))?;
        let catalog = Catalog::open(&root.join("dis.sqlite3"))?;
        let mut streams = Index::default();
        for record in catalog.streams()? {
            let logs = record
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if p.status == PartitionStatus::Expired {
                        return Ok(None);
                    }
                    let dir = partition_dir(root, &record.id, i as u32);
                    PartitionLog::open(&dir, config.log).map(|l| Some(Arc::new(l)))
                })
                .collect::<Result<Vec<_>, std::io::Error>>()?;
            streams.insert(Stream::new(record, logs));
        }
        // Directories of streams deleted by a host that died before removing them.
        for entry in std::fs::read_dir(root.join("streams"))? {
            let entry = entry?;
            if !streams
                .by_id
                .contains_key(entry.file_name().to_string_lossy().as_ref())
            {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(Arc::new(Self {
            root: root.to_path_buf(),
            catalog,
            streams: RwLock::new(streams),
            admin: Mutex::new(()),
            config,
            host_metrics,
        }))
    }

    pub(crate) fn stream(&self, project_id: &str, name: &str) -> Result<Arc<Stream>, DisError> {
        self.streams
            .read()
            .unwrap()
            .by_name
            .get(&(project_id.to_string(), name.to_string()))
            .cloned()
            .ok_or_else(|| DisError::NoStream(name.to_string()))
    }

    /// A stream of the project by id (send_records' fallback, cursors).
    pub(crate) fn stream_by_id(&self, project_id: &str, id: &str) -> Option<Arc<Stream>> {
        self.any_stream_by_id(id)
            .filter(|s| s.project == project_id)
    }

    /// A stream of any project by id (policies decide whether a caller may use it).
    pub(crate) fn any_stream_by_id(&self, id: &str) -> Option<Arc<Stream>> {
        self.streams.read().unwrap().by_id.get(id).cloned()
    }

    /// The project's streams, by name.
    pub(crate) fn project_streams(&self, project_id: &str) -> Vec<Arc<Stream>> {
        let streams = self.streams.read().unwrap();
        let mut list: Vec<Arc<Stream>> = streams
            .by_id
            .values()
            .filter(|s| s.project == project_id)
            .cloned()
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Partition units the project's writable partitions take.
    fn units_used(&self, project_id: &str) -> u32 {
        self.project_streams(project_id)
            .iter()
            .map(|s| {
                let r = s.record.read().unwrap();
                r.writable().len() as u32 * units(&r.stream_type)
            })
            .sum()
    }

    fn check_quota(&self, project_id: &str, adding: u32) -> Result<(), DisError> {
        let on_host: u32 = self
            .streams
            .read()
            .unwrap()
            .by_id
            .values()
            .map(|s| {
                let r = s.record.read().unwrap();
                (0..r.partitions.len() as u32)
                    .filter(|&i| r.readable(i))
                    .count() as u32
            })
            .sum();
        if on_host + adding > self.config.host_partitions {
            return Err(DisError::Quota(format!(
                "the host has {on_host} of its {} partitions (--dis-host-partitions)",
                self.config.host_partitions
            )));
        }
        let used = self.units_used(project_id);
        if used + adding > self.config.partition_quota {
            return Err(DisError::Quota(format!(
                "the project's partitions would take {} of its {} partition units (an ADVANCED partition takes 5)",
                used + adding,
                self.config.partition_quota
            )));
        }
        Ok(())
    }

    /// Creates a stream, RUNNING once this returns.
    pub fn create_stream(&self, project_id: &str, new: NewStream) -> Result<(), DisError> {
        let name = new
            .stream_name
            .ok_or_else(|| DisError::Invalid("stream_name is required".into()))?;
        check_name("stream_name", &name, 64)?;
        let count = match new.partition_count {
            None => return Err(DisError::Invalid("partition_count is required".into())),
            Some(n) if !(1..=1000).contains(&n) => {
                return Err(DisError::Invalid(format!(
                    "partition_count {n} is not between 1 and 1000"
                )))
            }
            Some(n) => n as u32,
        };
        let stream_type = one_of("stream_type", new.stream_type, &["COMMON", "ADVANCED"])?;
        let data_type = one_of("data_type", new.data_type, &["BLOB", "JSON", "CSV"])?;
        let retention_hours = match new.data_duration {
            None => 24,
            Some(h) if (24..=72).contains(&h) => h as u32,
            Some(h) => {
                return Err(DisError::Invalid(format!(
                    "data_duration {h} is not between 24 and 72 hours"
                )))
            }
        };
        if let Some(schema) = &new.data_schema {
            if serde_json::from_str::<serde_json::Value>(schema).is_err() {
                return Err(DisError::Schema(
                    "data_schema is not an Avro schema (JSON)".into(),
                ));
            }
        }
        let compression_format = match new.compression_format.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(one_of(
                "compression_format",
                Some(c),
                &["snappy", "gzip", "zip"],
            )?),
        };
        let bound = |v: Option<i64>| v.map(|n| n.clamp(0, u32::MAX as i64) as u32);
        let (min, max) = (
            bound(new.auto_scale_min_partition_count),
            bound(new.auto_scale_max_partition_count),
        );
        if let (Some(min), Some(max)) = (min, max) {
            if min > max || min == 0 {
                return Err(DisError::Invalid(format!(
                    "auto_scale_min_partition_count {min} must be at least 1 and at most auto_scale_max_partition_count {max}"
                )));
            }
        }
        check_tags(&new.tags)?;
        let _admin = self.admin.lock().unwrap();
        if self.stream(project_id, &name).is_ok() {
            return Err(DisError::StreamExists(name));
        }
        self.check_quota(project_id, count * units(&stream_type))?;
        let now = now_ms();
        let record = StreamRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            project_id: project_id.to_string(),
            name: name.clone(),
            stream_type,
            data_type,
            retention_hours,
            data_schema: new.data_schema,
            compression_format,
            csv_properties: new.csv_properties,
            auto_scale_enabled: new.auto_scale_enabled.unwrap_or(false),
            auto_scale_min_partition_count: min,
            auto_scale_max_partition_count: max,
            tags: new.tags,
            sys_tags: new.sys_tags,
            create_time: now,
            last_modified_time: now,
            partitions: vec![
                PartitionRecord {
                    status: PartitionStatus::Active,
                    deleted_time: None,
                };
                count as usize
            ],
            partition_changes: Vec::new(),
        };
        let logs = (0..count)
            .map(|i| {
                PartitionLog::open(&partition_dir(&self.root, &record.id, i), self.config.log)
                    .map(|l| Some(Arc::new(l)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !self.catalog.insert_stream(&record)? {
            return Err(DisError::StreamExists(name));
        }
        self.streams
            .write()
            .unwrap()
            .insert(Stream::new(record, logs));
        Ok(())
    }

    /// Deletes a stream, its records and the checkpoints on it.
    pub fn delete_stream(&self, project_id: &str, name: &str) -> Result<(), DisError> {
        let _admin = self.admin.lock().unwrap();
        let stream = self.stream(project_id, name)?;
        self.catalog.delete_stream(&stream.id)?;
        self.streams.write().unwrap().remove(&stream);
        stream.logs.write().unwrap().clear();
        // A host that dies here removes the directory at its next start.
        std::fs::remove_dir_all(self.root.join("streams").join(&stream.id))?;
        Ok(())
    }

    /// Scales a stream to `target` writable partitions: new ones ACTIVE; removed ones (the
    /// highest) DELETED, readable until their records expire.
    pub fn update_partition_count(
        &self,
        project_id: &str,
        name: &str,
        target: Option<i64>,
    ) -> Result<(), DisError> {
        let target = match target {
            Some(n) if (1..=1000).contains(&n) => n as u32,
            Some(n) => {
                return Err(DisError::Invalid(format!(
                    "target_partition_count {n} is not between 1 and 1000"
                )))
            }
            None => {
                return Err(DisError::Invalid(
                    "target_partition_count is required".into(),
                ))
            }
        };
        let _admin = self.admin.lock().unwrap();
        let stream = self.stream(project_id, name)?;
        let mut record = stream.snapshot();
        let writable = record.writable();
        let current = writable.len() as u32;
        if target == current {
            return Err(DisError::Invalid(format!(
                "the stream already has {current} writable partitions"
            )));
        }
        let now = now_ms();
        let mut new_logs = Vec::new();
        if target > current {
            self.check_quota(project_id, (target - current) * units(&record.stream_type))?;
            for _ in current..target {
                let index = record.partitions.len() as u32;
                let dir = partition_dir(&self.root, &record.id, index);
                new_logs.push(Arc::new(PartitionLog::open(&dir, self.config.log)?));
                record.partitions.push(PartitionRecord {
                    status: PartitionStatus::Active,
                    deleted_time: None,
                });
            }
        } else {
            for &index in &writable[target as usize..] {
                let p = &mut record.partitions[index as usize];
                p.status = PartitionStatus::Deleted;
                p.deleted_time = Some(now);
            }
        }
        record.partition_changes.push(PartitionChange {
            create_timestamp: now,
            src_partition_count: current,
            target_partition_count: target,
        });
        record.last_modified_time = now;
        self.catalog.update_stream(&record)?;
        stream
            .partition_counters
            .write()
            .unwrap()
            .extend(new_logs.iter().map(|_| Arc::default()));
        stream
            .logs
            .write()
            .unwrap()
            .extend(new_logs.into_iter().map(Some));
        *stream.record.write().unwrap() = record;
        Ok(())
    }

    /// Deletes expired segments, and the logs of DELETED partitions whose records have all
    /// expired (they become EXPIRED). Answers how many segments went.
    pub fn enforce_retention(&self, now: i64) -> Result<usize, DisError> {
        let streams: Vec<Arc<Stream>> = self
            .streams
            .read()
            .unwrap()
            .by_id
            .values()
            .cloned()
            .collect();
        let mut removed = 0;
        for stream in streams {
            let _admin = self.admin.lock().unwrap();
            let mut record = stream.snapshot();
            let retention = i64::from(record.retention_hours) * 3_600_000;
            let mut expired = Vec::new();
            for (i, p) in record.partitions.iter_mut().enumerate() {
                let Some(log) = stream.log(i as u32) else {
                    continue;
                };
                removed += log.expire(now - retention)?;
                if p.status == PartitionStatus::Deleted
                    && p.deleted_time.is_some_and(|t| t + retention < now)
                {
                    p.status = PartitionStatus::Expired;
                    expired.push(i as u32);
                }
            }
            if expired.is_empty() {
                continue;
            }
            self.catalog.update_stream(&record)?;
            {
                let mut logs = stream.logs.write().unwrap();
                for &i in &expired {
                    logs[i as usize] = None;
                }
            }
            *stream.record.write().unwrap() = record;
            // A reader still holding the log keeps its open files until it is done.
            for i in expired {
                std::fs::remove_dir_all(partition_dir(&self.root, &stream.id, i))?;
            }
        }
        Ok(removed)
    }
}

fn partition_dir(root: &Path, stream_id: &str, index: u32) -> PathBuf {
    root.join("streams")
        .join(stream_id)
        .join(format!("{index:010}"))
}
