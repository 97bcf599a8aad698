//! Consumers inside the host (FunctionGraph's DIS trigger): the readable partitions of a
//! stream, a consumer app's position in each (its LAST_READ checkpoint: the sequence number
//! of the next record to deliver), reads from a position, and commits. The app is an
//! ordinary DIS app, visible to list_app and show_consumer_state.

use crate::apps::LAST_READ;
use crate::catalog::{AppRecord, Checkpoint};
use crate::error::DisError;
use crate::records::{read_counted, readable, Fetched};
use crate::streams::{now_ms, Dis};

/// Where a consumer without a checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The earliest record kept.
    TrimHorizon,
    /// What is sent after the consumer first looks.
    Latest,
}

impl Dis {
    /// Creates the app if the project has none of that name (outside the app quota: the
    /// host's own consumers do not take the users' apps).
    pub fn ensure_app(&self, project_id: &str, name: &str) -> Result<(), DisError> {
        if self.catalog.app(project_id, name)?.is_none() {
            self.catalog.insert_app(
                project_id,
                &AppRecord {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    name: name.to_string(),
                    create_time: now_ms(),
                },
            )?;
        }
        Ok(())
    }

    /// The readable partitions of a stream (ACTIVE and DELETED ones), in order.
    pub fn readable_partitions(
        &self,
        project_id: &str,
        stream: &str,
    ) -> Result<Vec<u32>, DisError> {
        let record = self.stream(project_id, stream)?.snapshot();
        Ok((0..record.partitions.len() as u32)
            .filter(|&i| record.readable(i))
            .collect())
    }

    /// The app's position in a partition: its checkpoint, or `start` (committed at once,
    /// so that LATEST means from the first look on, across restarts). A position whose
    /// records expired moves to the earliest kept.
    pub fn position(
        &self,
        project_id: &str,
        app: &str,
        stream: &str,
        partition: u32,
        start: Start,
    ) -> Result<u64, DisError> {
        let stream_ref = self.stream(project_id, stream)?;
        let log = readable(&stream_ref, partition, &partition.to_string())?;
        let (earliest, end) = log.bounds();
        let committed = self
            .catalog
            .checkpoint(project_id, app, &stream_ref.id, partition, LAST_READ)?
            .and_then(|c| c.sequence_number.parse::<u64>().ok());
        match committed {
            Some(next) => Ok(next.clamp(earliest, end)),
            None => {
                let next = match start {
                    Start::TrimHorizon => earliest,
                    Start::Latest => end,
                };
                self.commit(project_id, app, stream, partition, next)?;
                Ok(next)
            }
        }
    }

    /// Reads a partition from `from` on.
    pub fn fetch(
        &self,
        project_id: &str,
        stream: &str,
        partition: u32,
        from: u64,
        max_bytes: u64,
        max_records: usize,
    ) -> Result<Fetched, DisError> {
        let started = std::time::Instant::now();
        let stream = self.stream(project_id, stream)?;
        read_counted(
            self,
            &stream,
            partition,
            from,
            max_bytes,
            max_records,
            started,
        )
    }

    /// Commits the app's position in a partition.
    pub fn commit(
        &self,
        project_id: &str,
        app: &str,
        stream: &str,
        partition: u32,
        next: u64,
    ) -> Result<(), DisError> {
        let id = self.stream(project_id, stream)?.id.clone();
        Ok(self.catalog.commit_checkpoint(
            project_id,
            app,
            &id,
            partition,
            LAST_READ,
            &Checkpoint {
                sequence_number: next.to_string(),
                metadata: None,
            },
        )?)
    }
}
