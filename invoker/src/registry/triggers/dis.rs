//! DIS triggers' `event_data`: `stream_name`, `batch_size` 1–10000 (default 100),
//! `polling_interval` 1–60 s (default 30), `sharditerator_type` TRIM_HORIZON or LATEST
//! (default TRIM_HORIZON), `max_fetch_bytes` 1 KB–4 MB (default 1 MB) and `is_serial`
//! (fgs always delivers a partition's batches one at a time, in order).

use serde_json::{json, Map, Value};

use super::fields::Fields;

const MAX_BATCH: i64 = 10_000;
const MAX_FETCH_BYTES: i64 = 4 * 1024 * 1024;

/// Validates a DIS trigger's `event_data`; returns what is stored.
pub fn validate(data: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let fields = Fields(data);
    fields.only(
        "DIS",
        &[
            "stream_name",
            "batch_size",
            "polling_interval",
            "sharditerator_type",
            "max_fetch_bytes",
            "is_serial",
        ],
    )?;
    let stream = fields.text("stream_name")?.unwrap_or_default();
    let valid_name = !stream.is_empty()
        && stream.len() <= 64
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_name {
        return Err(format!(
            "stream_name {stream:?}: the name of a DIS stream (1 to 64 letters, digits, '_', '-')"
        ));
    }
    let in_range = |k: &str, min: i64, max: i64, default: i64| -> Result<i64, String> {
        match fields.integer(k)? {
            None => Ok(default),
            Some(n) if (min..=max).contains(&n) => Ok(n),
            Some(n) => Err(format!("{k} {n}: from {min} to {max}")),
        }
    };
    let batch_size = in_range("batch_size", 1, MAX_BATCH, 100)?;
    let polling_interval = in_range("polling_interval", 1, 60, 30)?;
    let max_fetch_bytes = in_range("max_fetch_bytes", 1024, MAX_FETCH_BYTES, 1024 * 1024)?;
    let iterator = fields
        .text("sharditerator_type")?
        .filter(|t| !t.is_empty())
        .unwrap_or("TRIM_HORIZON");
    if !matches!(iterator, "TRIM_HORIZON" | "LATEST") {
        return Err(format!(
            "sharditerator_type {iterator:?}: TRIM_HORIZON or LATEST"
        ));
    }
    let is_serial = match data.get("is_serial") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => return Err(format!("is_serial must be true or false, not {other}")),
    };
    let stored = json!({
        "stream_name": stream,
        "batch_size": batch_size,
        "polling_interval": polling_interval,
        "sharditerator_type": iterator,
        "max_fetch_bytes": max_fetch_bytes,
        // A string, as the SDK's model has it.
        "is_serial": if is_serial { "true" } else { "false" },
    });
    Ok(stored.as_object().expect("an object").clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: Value) -> Result<Map<String, Value>, String> {
        validate(v.as_object().unwrap())
    }

    #[test]
    fn defaults_and_bounds() {
        let stored = check(json!({"stream_name": "s1"})).unwrap();
        assert_eq!(stored["batch_size"], 100);
        assert_eq!(stored["polling_interval"], 30);
        assert_eq!(stored["sharditerator_type"], "TRIM_HORIZON");
        for bad in [
            json!({}),
            json!({"stream_name": "a b"}),
            json!({"stream_name": "s", "batch_size": 10001}),
            json!({"stream_name": "s", "polling_interval": 0}),
            json!({"stream_name": "s", "sharditerator_type": "AT_TIMESTAMP"}),
            json!({"stream_name": "s", "max_fetch_bytes": 100}),
            json!({"stream_name": "s", "topic_ids": ["t"]}),
        ] {
            assert!(check(bad.clone()).is_err(), "{bad}");
        }
    }
}
