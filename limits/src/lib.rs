//! FunctionGraph's documented limits and quotas as typed values.
//!
//! Everything a function definition or an invocation is checked against lives here, with the
//! documented defaults, so the API layer, the runtimes and the tests agree on one set of
//! numbers. This crate does no I/O: it validates values and says precisely what is wrong
//! ([`LimitError`]); the API layer maps each variant to its `FSS.xxxx` code in one place.

mod admission;
mod async_config;
mod error;
mod function;
pub mod instance;
mod payload;
mod user_data;

pub use admission::{Admission, Permit, Refusal};
pub use async_config::{validate_max_instances, AsyncLimits};
pub use error::LimitError;
pub use function::{
    validate_description, validate_func_name, validate_handler, validate_initializer,
    validate_package, FunctionLimits, MemorySize, Timeout, MEMORY_STEPS_MB,
};
pub use payload::PayloadLimits;
pub use user_data::{parse_user_data, UserData, MAX_ITEMS as USER_DATA_MAX_ITEMS};
