//! What a function is and how it runs.
//!
//! - [`package`]: code packages (inline source or zip), validated and content-addressed.
//! - [`Language`] and [`RuntimeLayout`]: the runtimes fgs runs and how each is started.
//! - [`InstancePool`]: instances of each function version, started on demand, reused while
//!   warm, reaped when idle. Every runtime speaks FunctionGraph's custom-runtime API
//!   (`runtime_api`) to its instance's own loopback listener.

mod error;
mod function;
mod http_instance;
mod instance;
mod invocation;
mod kind;
mod logs;
pub mod package;
mod pool;
mod prewarm;
mod process_instance;
mod runtime_api;
mod wasm;

pub use error::RuntimeError;
pub use function::FunctionSpec;
pub use http_instance::HttpBody;
pub use invocation::{InvokeFailure, InvokeOutcome, InvokeRequest, InvokeType, LogFrame};
pub use kind::{Language, RuntimeLayout};
pub use package::{CodeStore, StoredCode};
pub use pool::{InstancePool, PoolConfig};
pub use prewarm::{LaneConfig, LaneStats, PrewarmConfig};
