//! KAFKA (DMS for Kafka) and OPENSOURCEKAFKA triggers' `event_data`: the instance
//! (`kafka_connect_address`, `instance_id`), `topic_ids`, `batch_size` 1–1000 (default 100) and
//! SASL_SSL credentials (`kafka_ssl_enable`, `kafka_user`, `kafka_password`).
//!
//! fgs has no DMS instances to look up: a KAFKA trigger, like an OPENSOURCEKAFKA one, names its
//! brokers in `kafka_connect_address`; `instance_id` is kept as given (it is in the event).

use serde_json::{json, Map, Value};

use super::fields::Fields;

/// At most this many messages per invocation (documented).
const MAX_BATCH: i64 = 1000;
const DEFAULT_BATCH: i64 = 100;
/// Topics per trigger (fgs's bound; FunctionGraph documents none).
const MAX_TOPICS: usize = 20;

/// Why a Kafka trigger's `event_data` is refused.
#[derive(Debug)]
pub enum Invalid {
    /// `kafka_ssl_enable` without `kafka_user` and `kafka_password` (FSS.1113).
    Credentials,
    Other(String),
}

impl From<String> for Invalid {
    fn from(why: String) -> Self {
        Invalid::Other(why)
    }
}

/// Validates a Kafka trigger's `event_data`; returns what is stored.
pub fn validate(type_code: &str, data: &Map<String, Value>) -> Result<Map<String, Value>, Invalid> {
    let fields = Fields(data);
    fields.only(
        type_code,
        &[
            "instance_id",
            "topic_ids",
            "batch_size",
            "kafka_user",
            "kafka_password",
            "kafka_connect_address",
            "kafka_ssl_enable",
        ],
    )?;
    let address = fields.text("kafka_connect_address")?.unwrap_or_default();
    let valid_address = !address.is_empty()
        && address.len() <= 1024
        && address.split(',').all(|a| {
            a.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b".-[]:".contains(&c))
                    && port.parse::<u16>().is_ok_and(|p| p > 0)
            })
        });
    if !valid_address {
        return Err(format!(
            "kafka_connect_address {address:?}: host:port[,host:port...] of the brokers"
        )
        .into());
    }
    let topics = match data.get("topic_ids") {
        Some(Value::Array(topics)) if !topics.is_empty() && topics.len() <= MAX_TOPICS => topics,
        _ => return Err(format!("topic_ids: 1 to {MAX_TOPICS} topic names").into()),
    };
    for topic in topics {
        let valid = topic.as_str().is_some_and(|t| {
            !t.is_empty()
                && t.len() <= 249
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
        });
        if !valid {
            return Err(format!("topic_ids: {topic} is not a Kafka topic name").into());
        }
    }
    let batch_size = fields.integer("batch_size")?.unwrap_or(DEFAULT_BATCH);
    if !(1..=MAX_BATCH).contains(&batch_size) {
        return Err(format!("batch_size {batch_size}: 1 to {MAX_BATCH}").into());
    }
    let ssl = match data.get("kafka_ssl_enable") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!("kafka_ssl_enable must be a boolean, not {other}").into())
        }
    };
    let user = fields.text("kafka_user")?.unwrap_or_default();
    let password = fields.text("kafka_password")?.unwrap_or_default();
    if ssl && (user.is_empty() || password.is_empty()) {
        return Err(Invalid::Credentials);
    }
    let mut stored = Map::new();
    for (k, v) in [
        (
            "instance_id",
            json!(fields.text("instance_id")?.unwrap_or_default()),
        ),
        ("topic_ids", json!(topics)),
        ("batch_size", json!(batch_size)),
        ("kafka_user", json!(user)),
        ("kafka_password", json!(password)),
        ("kafka_connect_address", json!(address)),
        ("kafka_ssl_enable", json!(ssl)),
    ] {
        stored.insert(k.into(), v);
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: Value) -> Result<Map<String, Value>, Invalid> {
        validate("KAFKA", v.as_object().unwrap())
    }

    #[test]
    fn kafka() {
        let ok = check(json!({"kafka_connect_address": "127.0.0.1:9092,b:1", "topic_ids": ["t"]}))
            .unwrap();
        assert_eq!(ok["batch_size"], 100);
        for bad in [
            json!({"topic_ids": ["t"]}),
            json!({"kafka_connect_address": "h", "topic_ids": ["t"]}),
            json!({"kafka_connect_address": "h:1", "topic_ids": []}),
            json!({"kafka_connect_address": "h:1", "topic_ids": ["a b"]}),
            json!({"kafka_connect_address": "h:1", "topic_ids": ["t"], "batch_size": 1001}),
            json!({"kafka_connect_address": "h:1", "topic_ids": ["t"], "schedule": "1m"}),
        ] {
            assert!(
                matches!(check(bad.clone()), Err(Invalid::Other(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            check(
                json!({"kafka_connect_address": "h:1", "topic_ids": ["t"], "kafka_ssl_enable": true, "kafka_user": "u"})
            ),
            Err(Invalid::Credentials)
        ));
    }
}
