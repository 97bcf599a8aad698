//! Triggers as stored: each belongs to one version or alias of a function (the qualifier of the
//! URN it was created on) and is validated by type before it is stored. Only types fgs can serve
//! are accepted; every other FunctionGraph type is refused by name, never stored and left idle.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::RegistryError;
use crate::schedule::Schedule;

/// Triggers per version or alias (documented).
pub const MAX_PER_QUALIFIER: usize = 10;

/// FunctionGraph's trigger types that fgs does not serve (yet).
const NOT_SERVED: &[&str] = &[
    "APIG",
    "DEDICATEDGATEWAY",
    "KAFKA",
    "OPENSOURCEKAFKA",
    "DIS",
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
    pub fn is_active(&self) -> bool {
        self.trigger_status == "ACTIVE"
    }

    /// The name in `event_data` (TIMER: the timer's name).
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
}

/// Checks `trigger_status`.
pub fn validate_status(status: &str) -> Result<(), RegistryError> {
    match status {
        "ACTIVE" | "DISABLED" => Ok(()),
        other => Err(RegistryError::Invalid(format!(
            "trigger_status {other:?}: ACTIVE or DISABLED"
        ))),
    }
}

/// Validates the `event_data` of a trigger of `type_code` and returns what is stored.
pub fn validate(
    type_code: &str,
    event_data: &Map<String, Value>,
) -> Result<Map<String, Value>, RegistryError> {
    match type_code {
        "TIMER" => validate_timer(event_data),
        served_elsewhere if NOT_SERVED.contains(&served_elsewhere) => {
            Err(RegistryError::TriggerType(format!(
                "{type_code} triggers are not served by fgs (yet); TIMER is"
            )))
        }
        other => Err(RegistryError::TriggerType(format!(
            "{other:?} is not a FunctionGraph trigger type"
        ))),
    }
}

fn validate_timer(data: &Map<String, Value>) -> Result<Map<String, Value>, RegistryError> {
    let invalid = |why: String| RegistryError::InvalidTimer(why);
    let text = |k: &str| -> Result<Option<&str>, RegistryError> {
        match data.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(invalid(format!("{k} must be a string, not {other}"))),
        }
    };
    for (k, v) in data {
        let empty = matches!(v, Value::Null) || v.as_str() == Some("");
        if !matches!(
            k.as_str(),
            "name" | "schedule_type" | "schedule" | "user_event"
        ) && !empty
        {
            return Err(invalid(format!("{k} is not a TIMER parameter")));
        }
    }
    let name = text("name")?.unwrap_or_default();
    let b = name.as_bytes();
    let valid_name = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'));
    if !valid_name {
        return Err(invalid(format!(
            "name {name:?}: 1 to 64 letters, digits, _ and -, starting with a letter"
        )));
    }
    let schedule_type = text("schedule_type")?.unwrap_or_default();
    let schedule = text("schedule")?.unwrap_or_default();
    let parsed = Schedule::parse(schedule_type, schedule).map_err(invalid)?;
    let now = chrono::Utc::now();
    if parsed.next(now, now).is_none() {
        return Err(invalid(format!(
            "{schedule:?} never fires (no such date within five years)"
        )));
    }
    let user_event = text("user_event")?.unwrap_or_default();
    if user_event.len() > 4096 {
        return Err(invalid(format!(
            "user_event is {} bytes; at most 4096",
            user_event.len()
        )));
    }
    let mut stored = Map::new();
    stored.insert("name".into(), name.into());
    stored.insert("schedule_type".into(), schedule_type.into());
    stored.insert("schedule".into(), schedule.into());
    stored.insert("user_event".into(), user_event.into());
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn timers() {
        let ok = validate(
            "TIMER",
            &data(json!({"name": "t1", "schedule_type": "Rate", "schedule": "3m"})),
        )
        .unwrap();
        assert_eq!(ok["user_event"], "");
        for bad in [
            json!({"name": "1t", "schedule_type": "Rate", "schedule": "3m"}),
            json!({"name": "t", "schedule_type": "Rate", "schedule": "61m"}),
            json!({"name": "t", "schedule_type": "Cron", "schedule": "* * *"}),
            json!({"name": "t", "schedule_type": "Rate", "schedule": "3m", "topic_ids": ["x"]}),
            json!({"name": "t", "schedule_type": "Rate", "schedule": 3}),
            json!({"name": "t", "schedule_type": "Cron", "schedule": "0 0 0 31 2 *"}),
        ] {
            assert!(
                matches!(
                    validate("TIMER", &data(bad.clone())),
                    Err(RegistryError::InvalidTimer(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn types() {
        for t in ["APIG", "KAFKA", "NOPE"] {
            assert!(matches!(
                validate(t, &Map::new()),
                Err(RegistryError::TriggerType(_))
            ));
        }
    }
}
