//! The EventGrid event-streaming engine.
//!
//! - [`api`]: the event-streaming API (create, list, show, update, delete, operate), with
//!   validated definitions persisted in the host's SQLite store.
//! - [`connections`]: target connections, where `HC.Kafka` sinks write.
//! - [`channels`], [`sources`] and [`subscriptions`]: custom channels applications publish
//!   CloudEvents to (`put_events`), their event sources, and the subscriptions that route
//!   them to functions.
//! - [`engine`]: started streams: a Kafka consumer, batches, rules, the FunctionGraph sink,
//!   offsets committed after delivery.
//! - [`rules`]: which events pass ([`Filter`]) and what is delivered for them ([`Transform`]).

pub mod api;
pub mod channels;
pub mod connections;
pub mod definition;
pub mod engine;
pub mod metrics;
pub mod rules;
pub mod sources;
pub mod store;
pub mod subscriptions;

pub use rules::{Filter, Transform};

/// A filter or transform rule that breaks EventGrid's rules (answered as EG.00014000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("invalid filter rule: {0}")]
    Filter(String),
    #[error("invalid transform rule: {0}")]
    Transform(String),
}
