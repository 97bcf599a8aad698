//! The EventGrid event-streaming engine.
//!
//! So far: the rules of a stream ([`rules`]): which events pass ([`Filter`]) and what is
//! delivered for them ([`Transform`]), validated against EventGrid's documented limits.

pub mod rules;

pub use rules::{Filter, Transform};

/// A filter or transform rule that breaks EventGrid's rules (answered as EG.00014000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("invalid filter rule: {0}")]
    Filter(String),
    #[error("invalid transform rule: {0}")]
    Transform(String),
}
