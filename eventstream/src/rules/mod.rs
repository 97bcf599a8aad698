//! Filter and transform rules of event streams.

mod filter;
mod transform;

pub use filter::Filter;
pub use transform::Transform;
