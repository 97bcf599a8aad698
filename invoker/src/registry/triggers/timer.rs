//! TIMER triggers' `event_data`: `name`, `schedule_type`, `schedule`, `user_event`.

use serde_json::{Map, Value};

use super::fields::{is_name, Fields};
use crate::schedule::Schedule;

/// The longest `user_event`.
const MAX_USER_EVENT: usize = 4096;

/// Validates a timer's `event_data`; returns what is stored, or why it is invalid.
pub fn validate(data: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let fields = Fields(data);
    fields.only(
        "TIMER",
        &["name", "schedule_type", "schedule", "user_event"],
    )?;
    let name = fields.text("name")?.unwrap_or_default();
    if !is_name(name, 64) {
        return Err(format!(
            "name {name:?}: 1 to 64 letters, digits, _ and -, starting with a letter"
        ));
    }
    let schedule_type = fields.text("schedule_type")?.unwrap_or_default();
    let schedule = fields.text("schedule")?.unwrap_or_default();
    let parsed = Schedule::parse(schedule_type, schedule)?;
    let now = chrono::Utc::now();
    if parsed.next(now, now).is_none() {
        return Err(format!(
            "{schedule:?} never fires (no such date within five years)"
        ));
    }
    let user_event = fields.text("user_event")?.unwrap_or_default();
    if user_event.len() > MAX_USER_EVENT {
        return Err(format!(
            "user_event is {} bytes; at most {MAX_USER_EVENT}",
            user_event.len()
        ));
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
        let ok = validate(&data(
            json!({"name": "t1", "schedule_type": "Rate", "schedule": "3m"}),
        ))
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
            assert!(validate(&data(bad.clone())).is_err(), "{bad}");
        }
    }
}
