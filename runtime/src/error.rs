use fgs_limits::LimitError;
use thiserror::Error;

/// Why the runtime layer could not do what was asked (store code, start an instance).
///
/// Failures *of a function* during an invocation are not errors of the host: they are
/// [`crate::InvokeFailure`]s, reported to the caller in FunctionGraph's function-error form.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The code package is malformed or unsafe to unpack.
    #[error("invalid code package: {0}")]
    InvalidPackage(String),
    /// The unpacked code package would exceed the limit.
    #[error("unzipped code package exceeds {max} bytes")]
    PackageTooLarge { max: u64 },
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The runtime named in a function definition is not one fgs can run.
    #[error("runtime {0:?} is not supported by fgs")]
    UnsupportedRuntime(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
