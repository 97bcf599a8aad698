//! The Data Ingestion Service: streams of partitions, records on a durable embedded log,
//! cursors, consumer apps and checkpoints, and DIS's REST API.
//!
//! - [`log`]: a partition's append-only log (segments, sparse index, group commit,
//!   retention).
//! - [`streams`]: the service ([`Dis`]) and stream management; [`records`]: send, cursor,
//!   consume; [`apps`]: apps, checkpoints, consumer state.
//! - [`catalog`]: streams, apps and checkpoints in SQLite.
//! - [`api`]: the HTTP layer, the one place where [`DisError`]s become `DIS.xxxx` codes.

pub mod api;
pub mod apps;
pub mod catalog;
pub mod consumer;
pub mod cursor;
pub mod error;
pub mod log;
pub mod metrics;
pub mod monitoring;
pub mod partition_key;
pub mod policies;
pub mod records;
pub mod streams;

pub use error::DisError;
pub use streams::{Dis, DisConfig};
