use std::path::PathBuf;
use thiserror::Error;

/// Why an instance could not be started.
#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("failed to start {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
