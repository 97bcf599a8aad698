use fgs_limits::LimitError;
use fgs_runtime::RuntimeError;
use thiserror::Error;

use crate::store::StoreError;

/// Why the function table refused a change or a lookup. The HTTP layer maps each to
/// FunctionGraph's code (`api::error`).
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("function {0} does not exist")]
    FunctionNotFound(String),
    #[error("version {0} does not exist")]
    VersionNotFound(String),
    #[error("alias {0} does not exist")]
    AliasNotFound(String),
    #[error("function {0} already exists")]
    FunctionExists(String),
    #[error("{0} already exists")]
    VersionExists(String),
    #[error("{0} already exists")]
    AliasExists(String),
    #[error("{0}")]
    InvalidVersion(String),
    #[error("{0}")]
    InvalidAlias(String),
    /// Code or configuration of a published version cannot change.
    #[error("version {0} is published and read-only; change latest and publish a new version")]
    ReadOnly(String),
    /// Nothing changed in `latest` since the version named was published from it.
    #[error("latest has not changed since {0} was published")]
    Unchanged(String),
    #[error("the function has {count} versions, latest included: the most allowed")]
    VersionQuota { count: usize },
    #[error("the function has {count} aliases: the most allowed")]
    AliasQuota { count: usize },
    /// The version is the major version of an alias (deleting it), or already has an alias
    /// (creating another one for it).
    #[error("version {version} is in use by alias {alias}")]
    VersionInUse { version: String, alias: String },
    #[error("version {version} is the additional version of alias {alias}")]
    AdditionalInUse { version: String, alias: String },
    #[error("{0}")]
    AdditionalVersion(String),
    #[error("{0}")]
    Weight(String),
    #[error("{0} is both the major and the additional version")]
    SameAsMajor(String),
    #[error("dependency {0} does not exist")]
    DependencyNotFound(String),
    #[error("{0}")]
    InvalidDependency(String),
    /// `depend_type` other than `zip`.
    #[error("{0}")]
    DependencyType(String),
    #[error("{dependency} is used by {function}")]
    DependencyInUse {
        dependency: String,
        function: String,
    },
    #[error("the project has {count} dependency package versions: the most allowed")]
    DependencyQuota { count: usize },
    #[error("{0}")]
    TriggerType(String),
    /// Invalid `event_data` of a trigger of `kind`.
    #[error("{why}")]
    InvalidTrigger {
        kind: super::triggers::Kind,
        why: String,
    },
    /// `kafka_ssl_enable` without a user name and password.
    #[error("kafka_ssl_enable needs kafka_user and kafka_password")]
    KafkaCredentials,
    /// Another gateway trigger (of any project: the gateway has one URL space) already
    /// serves these requests.
    #[error("{0}")]
    PathExists(String),
    #[error("trigger {0} does not exist")]
    TriggerNotFound(String),
    #[error("a timer named {0} already exists")]
    TimerExists(String),
    #[error("{qualifier} has {count} triggers: the most allowed")]
    TriggerQuota { qualifier: String, count: usize },
    /// A version or alias with triggers cannot be deleted.
    #[error("{0} has triggers; delete them first")]
    HasTriggers(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
