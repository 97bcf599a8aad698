//! What a DIS operation can refuse, in the domain's words; [`crate::api`] maps each to its
//! `DIS.xxxx` code and HTTP status.

use crate::catalog::CatalogError;
use crate::log::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum DisError {
    /// A malformed or out-of-range field.
    #[error("{0}")]
    Invalid(String),
    #[error("the request has no records")]
    Empty,
    #[error("project id {0:?} is not valid")]
    Project(String),
    #[error("partition id {0:?} is not valid")]
    PartitionId(String),
    #[error("stream {0:?}")]
    NoStream(String),
    #[error("partition {0:?}")]
    NoPartition(String),
    #[error("stream {0:?}")]
    StreamExists(String),
    #[error("{0}")]
    Quota(String),
    #[error("{0:?}")]
    CursorType(String),
    #[error("{0}")]
    SequenceNumber(String),
    #[error("{0}")]
    Cursor(String),
    #[error("cursor made {age_ms} ms ago")]
    CursorExpired { age_ms: i64 },
    /// `[given][ should be within ][earliest][ ][latest]`, as DIS words it.
    #[error("[{given}][ should be within ][{earliest}][ ][{latest}]")]
    OutOfRange {
        given: String,
        earliest: u64,
        latest: u64,
    },
    /// The records a cursor points at were deleted by retention.
    #[error("sequence number {requested} has expired (the earliest is {earliest})")]
    Expired { requested: u64, earliest: u64 },
    #[error("{0}")]
    Request(String),
    #[error("{0}")]
    Schema(String),
    #[error("app {0:?}")]
    AppExists(String),
    #[error("app {0:?}")]
    NoApp(String),
    #[error("{0}")]
    AppQuota(String),
    #[error("app {app:?} has committed no checkpoint on stream {stream:?}")]
    NoCheckpoint { app: String, stream: String },
    #[error("{0:?}")]
    MetricsLabel(String),
    #[error("{0}")]
    Period(String),
    #[error("the monitoring period is longer than 7 days")]
    PeriodTooLong,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("the partition log: {0}")]
    Io(#[from] std::io::Error),
}

impl From<ReadError> for DisError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Expired {
                requested,
                earliest,
            } => DisError::Expired {
                requested,
                earliest,
            },
            ReadError::Beyond { requested, end } => DisError::OutOfRange {
                given: requested.to_string(),
                earliest: 0,
                latest: end,
            },
            ReadError::Io(e) => DisError::Io(e),
        }
    }
}
