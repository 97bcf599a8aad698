use thiserror::Error;

/// A value that breaks one of FunctionGraph's documented limits.
///
/// Each variant corresponds to exactly one documented error code; the detail string tells the
/// user what was wrong with their value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LimitError {
    #[error("invalid function name: {0}")]
    FuncName(String),
    #[error("invalid function handler: {0}")]
    Handler(String),
    #[error("invalid package: {0}")]
    Package(String),
    #[error("invalid runtime: {0}")]
    Runtime(String),
    #[error("invalid code entry mode: {0}")]
    CodeType(String),
    #[error("invalid memory: {0}")]
    Memory(String),
    #[error("invalid timeout: {0}")]
    Timeout(String),
    #[error("invalid user data: {0}")]
    UserData(String),
    #[error("too many user data items: {count} (max {max})")]
    UserDataCount { count: usize, max: usize },
    #[error("user data too large: {size} bytes (max {max})")]
    UserDataSize { size: usize, max: usize },
    #[error("description too long: {len} characters (max {max})")]
    Description { len: usize, max: usize },
    #[error("invalid initializer handler: {0}")]
    Initializer(String),
    #[error("invalid initializer timeout: {0}")]
    InitializerTimeout(String),
    #[error("inline code too large: {size} bytes (max {max})")]
    InlineCodeSize { size: usize, max: usize },
    #[error("invalid async invocation setting: {0}")]
    AsyncConfig(String),
    #[error("invalid concurrency: {0}")]
    Concurrency(String),
    #[error("code package too large: {size} bytes (max {max})")]
    CodePackageSize { size: usize, max: usize },
}
