//! The EventGrid event-streaming engine.
//!
//! So far: the event-streaming API ([`api`]: create, list, show, update, delete, with
//! validated definitions persisted in the host's SQLite store) and the rules of a stream
//! ([`rules`]: which events pass, [`Filter`], and what is delivered for them, [`Transform`]).
//! The Kafka source, the sinks and `operate` (START/PAUSE) are not built yet.

pub mod api;
pub mod definition;
pub mod rules;
pub mod store;

pub use rules::{Filter, Transform};

/// A filter or transform rule that breaks EventGrid's rules (answered as EG.00014000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("invalid filter rule: {0}")]
    Filter(String),
    #[error("invalid transform rule: {0}")]
    Transform(String),
}
