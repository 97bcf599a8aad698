use std::path::PathBuf;
use thiserror::Error;

/// Why an instance could not be started.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// The program does not exist.
    #[error("{0} not found")]
    ProgramNotFound(PathBuf),
    /// The program exists but cannot be executed.
    #[error("{0} is not executable")]
    NotExecutable(PathBuf),
    #[error("failed to start {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
