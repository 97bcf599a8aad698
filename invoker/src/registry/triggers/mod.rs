//! Triggers as stored: each belongs to one version or alias of a function (the qualifier of the
//! URN it was created on) and is validated by type before it is stored. Only types fgs can serve
//! are accepted; every other FunctionGraph type is refused by name, never stored and left idle.

pub mod apig;
mod dis;
mod fields;
mod kafka;
mod timer;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::RegistryError;
use crate::schedule::Schedule;
pub use apig::Api;

/// Triggers per version or alias (documented).
pub const MAX_PER_QUALIFIER: usize = 10;

/// The trigger types fgs serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Timer,
    /// The shared API gateway (`APIG`) and the dedicated one (`DEDICATEDGATEWAY`): fgs has one
    /// gateway listener for both.
    Apig,
    DedicatedGateway,
    /// DMS for Kafka (`KAFKA`) and open-source Kafka (`OPENSOURCEKAFKA`): one consumer each.
    Kafka,
    OpenSourceKafka,
    /// A DIS stream of this host: its partitions polled, their batches delivered in order.
    Dis,
}

impl Kind {
    pub fn parse(type_code: &str) -> Option<Kind> {
        Some(match type_code {
            "TIMER" => Kind::Timer,
            "APIG" => Kind::Apig,
            "DEDICATEDGATEWAY" => Kind::DedicatedGateway,
            "KAFKA" => Kind::Kafka,
            "OPENSOURCEKAFKA" => Kind::OpenSourceKafka,
            "DIS" => Kind::Dis,
            _ => return None,
        })
    }

    pub fn is_gateway(self) -> bool {
        matches!(self, Kind::Apig | Kind::DedicatedGateway)
    }

    pub fn is_kafka(self) -> bool {
        matches!(self, Kind::Kafka | Kind::OpenSourceKafka)
    }

    /// The status of a trigger created without one: Kafka triggers start DISABLED (as
    /// FunctionGraph's do), the others ACTIVE.
    pub fn default_status(self) -> &'static str {
        if self.is_kafka() {
            "DISABLED"
        } else {
            "ACTIVE"
        }
    }
}

/// FunctionGraph's trigger types that fgs does not serve (yet).
const NOT_SERVED: &[&str] = &[
    "CTS",
    "DDS",
    "DMS",
    "LTS",
    "OBS",
    "SMN",
    "ROCKETMQ",
    "RABBITMQ",
    "APIC",
    "GAUSSMONGO",
    "EVENTGRID",
    "IOTDA",
];

/// A trigger as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trigger {
    pub trigger_id: String,
    pub project_id: String,
    pub package: String,
    pub func_name: String,
    /// The version or alias it belongs to (`latest` when created on an unqualified URN).
    pub qualifier: String,
    pub trigger_type_code: String,
    /// `ACTIVE` or `DISABLED`.
    pub trigger_status: String,
    pub event_type_code: String,
    pub event_data: Map<String, Value>,
    pub created_time: String,
    pub last_updated_time: String,
}

impl Trigger {
    /// The `event_data` fields that are secrets: sealed at rest, never answered.
    pub const SECRETS: &'static [&'static str] = &["kafka_password"];

    pub fn is_active(&self) -> bool {
        self.trigger_status == "ACTIVE"
    }

    /// The version or alias the trigger invokes.
    pub fn function(&self) -> crate::urn::FunctionRef {
        crate::urn::FunctionRef {
            package: self.package.clone(),
            name: self.func_name.clone(),
            qualifier: crate::urn::Qualifier::Version(self.qualifier.clone()),
        }
    }

    pub fn kind(&self) -> Option<Kind> {
        Kind::parse(&self.trigger_type_code)
    }

    /// The name in `event_data` (TIMER: the timer's name; APIG: the API's).
    pub fn name(&self) -> &str {
        self.event_data
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The TIMER schedule (validated when the trigger was stored).
    pub fn schedule(&self) -> Option<Schedule> {
        let field = |k: &str| self.event_data.get(k).and_then(Value::as_str);
        Schedule::parse(field("schedule_type")?, field("schedule")?).ok()
    }

    /// The API an APIG trigger publishes (validated when the trigger was stored).
    pub fn api(&self) -> Option<Api> {
        let kind = self.kind().filter(|k| k.is_gateway())?;
        Api::parse(kind, &self.event_data).ok().map(|(api, _)| api)
    }
}

/// Checks `trigger_status` for a trigger of `type_code`: gateway triggers cannot be
/// disabled (as in FunctionGraph, where only timer, DDS, LTS and Kafka triggers can).
pub fn validate_status(type_code: &str, status: &str) -> Result<(), RegistryError> {
    match (Kind::parse(type_code), status) {
        (Some(kind), "DISABLED") if kind.is_gateway() => Err(RegistryError::InvalidTrigger {
            kind,
            why: format!("{type_code} triggers cannot be DISABLED; delete the trigger instead"),
        }),
        (_, "ACTIVE" | "DISABLED") => Ok(()),
        (_, other) => Err(RegistryError::Invalid(format!(
            "trigger_status {other:?}: ACTIVE or DISABLED"
        ))),
    }
}

/// Validates the `event_data` of a trigger of `type_code` and returns what is stored.
pub fn validate(
    type_code: &str,
    event_data: &Map<String, Value>,
) -> Result<Map<String, Value>, RegistryError> {
    let invalid = |kind| move |why| RegistryError::InvalidTrigger { kind, why };
    match Kind::parse(type_code) {
        Some(Kind::Timer) => timer::validate(event_data).map_err(invalid(Kind::Timer)),
        Some(Kind::Dis) => dis::validate(event_data).map_err(invalid(Kind::Dis)),
        Some(kind) if kind.is_kafka() => {
            kafka::validate(type_code, event_data).map_err(|e| match e {
                kafka::Invalid::Credentials => RegistryError::KafkaCredentials,
                kafka::Invalid::Other(why) => RegistryError::InvalidTrigger { kind, why },
            })
        }
        Some(kind) => Api::parse(kind, event_data)
            .map(|(_, stored)| stored)
            .map_err(invalid(kind)),
        None if NOT_SERVED.contains(&type_code) => Err(RegistryError::TriggerType(format!(
            "{type_code} triggers are not served by fgs (yet); TIMER, APIG, DEDICATEDGATEWAY, KAFKA, OPENSOURCEKAFKA and DIS are"
        ))),
        None => Err(RegistryError::TriggerType(format!(
            "{type_code:?} is not a FunctionGraph trigger type"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        for t in ["OBS", "NOPE"] {
            assert!(matches!(
                validate(t, &Map::new()),
                Err(RegistryError::TriggerType(_))
            ));
        }
    }
}
