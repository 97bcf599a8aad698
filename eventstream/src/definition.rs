//! An event stream's definition (`EventStreamingCreateReq`), validated.
//!
//! fgs runs the `HC.Kafka` source and the `HC.FunctionGraph` and `HC.Kafka` sinks; the other
//! types EventGrid knows (RocketMQ sources, the OBS sink) are refused with a clear message.
//! Since fgs has no Kafka instance registry, `source_kafka.addr` (the bootstrap servers) is
//! required; a Kafka sink names a target connection ([`crate::connections`]), which carries
//! the sink's broker addresses.

use serde_json::{json, Value};

use crate::{Filter, RuleError, Transform};

/// Why a definition is refused (answered as EG.00014000 with the message as details).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Rule(#[from] RuleError),
}

fn invalid(why: impl Into<String>) -> DefinitionError {
    DefinitionError::Invalid(why.into())
}

/// A validated definition, and its normalized JSON (what show and list return).
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub json: Value,
    pub filter: Option<Filter>,
    pub transform: Transform,
}

const KNOWN_SOURCES: [&str; 4] = [
    "HC.Kafka",
    "HC.COMMUNITY_ROCKETMQ",
    "HC.DMS_ROCKETMQ",
    "HC.MOBILE_ROCKETMQ",
];

impl Definition {
    pub fn parse(body: &Value) -> Result<Self, DefinitionError> {
        let Value::Object(_) = body else {
            return Err(invalid("the body must be a JSON object"));
        };
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let name = text(body, "name").ok_or_else(|| invalid("name is required"))?;
        if !valid_name(&name) {
            return Err(invalid(format!(
                "name {name:?}: 1–128 letters, digits, '.', '_', '-', starting with a letter or digit"
            )));
        }
        let description = text(body, "description").unwrap_or_default();
        if description.chars().count() > 255 {
            return Err(invalid("description exceeds 255 characters"));
        }
        let source = source(
            body.get("source")
                .ok_or_else(|| invalid("source is required"))?,
        )?;
        let (sink, json_output) = sink(
            body.get("sink")
                .ok_or_else(|| invalid("sink is required"))?,
        )?;
        let rules = body.get("rule_config").cloned().unwrap_or(json!({}));
        let transform_rule = rules
            .get("transform")
            .cloned()
            .unwrap_or(json!({"type": "ORIGINAL"}));
        let transform = Transform::parse(&transform_rule, json_output)?;
        let filter = match rules.get("filter") {
            None | Some(Value::Null) => None,
            Some(rule) => {
                if rule.to_string().len() > 2048 {
                    return Err(invalid("the filter exceeds 2048 bytes"));
                }
                Some(Filter::parse(rule)?)
            }
        };
        let option = option(body.get("option"))?;
        let mut rule_config = json!({ "transform": transform_rule });
        if let Some(f) = rules.get("filter").filter(|f| !f.is_null()) {
            rule_config["filter"] = f.clone();
        }
        let json = json!({
            "name": name,
            "description": description,
            "source": source,
            "sink": sink,
            "rule_config": rule_config,
            "option": option,
        });
        Ok(Definition {
            name,
            json,
            filter,
            transform,
        })
    }
}

/// EventGrid's rule for stream and connection names: 1–128 letters, digits, `.`, `_`, `-`,
/// starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Field `key` of `v` (at `at` in the body), one of `allowed`; the first is the default.
pub fn one_of<'a>(
    v: &'a Value,
    at: &str,
    key: &str,
    allowed: &[&'a str],
) -> Result<&'a str, DefinitionError> {
    let value = v.get(key).and_then(Value::as_str).unwrap_or(allowed[0]);
    if !allowed.contains(&value) {
        return Err(invalid(format!(
            "{at}.{key} {value:?} must be one of {}",
            allowed.join(", ")
        )));
    }
    Ok(value)
}

/// Checks a Kafka instance's SASL settings (of a source, or of a sink's connection): with
/// `enable_sasl_ssl`, a PLAIN or SCRAM-SHA-512 `sasl_mechanism` and a user name and password.
pub fn kafka_security(kafka: &Value, at: &str) -> Result<(), DefinitionError> {
    if !kafka
        .get("enable_sasl_ssl")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Ok(());
    }
    one_of(kafka, at, "sasl_mechanism", &["PLAIN", "SCRAM-SHA-512"])?;
    for key in ["user_name", "password"] {
        if kafka
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(format!(
                "{at}.{key} is required when enable_sasl_ssl is set"
            )));
        }
    }
    Ok(())
}

fn source(source: &Value) -> Result<Value, DefinitionError> {
    let name = source
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("source.name is required"))?;
    if name != "HC.Kafka" {
        return Err(invalid(if KNOWN_SOURCES.contains(&name) {
            format!("source {name} is not supported by fgs yet; use HC.Kafka")
        } else {
            format!("unknown source {name:?}; fgs supports HC.Kafka")
        }));
    }
    let kafka = source
        .get("source_kafka")
        .ok_or_else(|| invalid("source.source_kafka is required for HC.Kafka"))?;
    for key in ["addr", "topic", "group"] {
        if kafka
            .get(key)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(format!("source.source_kafka.{key} is required")));
        }
    }
    let seek_to = one_of(
        kafka,
        "source.source_kafka",
        "seek_to",
        &["latest", "earliest"],
    )?;
    kafka_security(kafka, "source.source_kafka")?;
    let mut kafka = kafka.clone();
    kafka["seek_to"] = json!(seek_to);
    Ok(json!({ "name": name, "source_kafka": kafka }))
}

/// The sink's normalized JSON, and whether it needs JSON payloads (FunctionGraph).
fn sink(sink: &Value) -> Result<(Value, bool), DefinitionError> {
    let name = sink
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("sink.name is required"))?;
    match name {
        "HC.FunctionGraph" => {
            let fg = sink
                .get("sink_fg")
                .ok_or_else(|| invalid("sink.sink_fg is required for HC.FunctionGraph"))?;
            let urn = fg.get("urn").and_then(Value::as_str).unwrap_or_default();
            let parts = urn.split(':').count();
            if !urn.starts_with("urn:fss:") || !(7..=8).contains(&parts) {
                return Err(invalid(format!(
                    "sink.sink_fg.urn {urn:?} is not a function URN"
                )));
            }
            let invoke_type = fg
                .get("invoke_type")
                .and_then(Value::as_str)
                .unwrap_or("ASYNC")
                .to_uppercase();
            if !["SYNC", "ASYNC"].contains(&invoke_type.as_str()) {
                return Err(invalid(format!(
                    "sink.sink_fg.invoke_type {invoke_type:?} must be SYNC or ASYNC"
                )));
            }
            let mut fg = fg.clone();
            fg["invoke_type"] = json!(invoke_type);
            Ok((json!({ "name": name, "sink_fg": fg }), true))
        }
        "HC.Kafka" => {
            let kafka = sink
                .get("sink_kafka")
                .ok_or_else(|| invalid("sink.sink_kafka is required for HC.Kafka"))?;
            if kafka
                .get("topic")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(invalid("sink.sink_kafka.topic is required"));
            }
            let connection = kafka
                .get("connectionId")
                .or_else(|| kafka.get("connection_id"))
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    invalid("sink.sink_kafka.connectionId (a connection created with POST /v1/{project_id}/connections) is required")
                })?;
            let key = kafka
                .get("keyTransform")
                .or_else(|| kafka.get("key_transform"))
                .cloned();
            let key_rules: Vec<Value> = match key {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(list)) => list,
                Some(one) => vec![one],
            };
            for rule in &key_rules {
                let kind = rule.get("type").and_then(Value::as_str).unwrap_or("");
                if kind != "NONE" {
                    Transform::parse(rule, false)?;
                }
            }
            let normalized = json!({"topic": kafka["topic"], "connectionId": connection, "keyTransform": key_rules});
            Ok((json!({ "name": name, "sink_kafka": normalized }), false))
        }
        "HC.OBS" => Err(invalid(
            "sink HC.OBS is not supported by fgs yet; use HC.FunctionGraph or HC.Kafka",
        )),
        other => Err(invalid(format!(
            "unknown sink {other:?}; fgs supports HC.FunctionGraph and HC.Kafka"
        ))),
    }
}

fn option(option: Option<&Value>) -> Result<Value, DefinitionError> {
    let get = |path: &[&str]| path.iter().try_fold(option?, |v, k| v.get(k));
    let int = |path: &[&str], default: i64, min: i64, max: i64| -> Result<i64, DefinitionError> {
        match get(path) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_i64() {
                Some(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(invalid(format!(
                    "option.{} must be an integer in {min}…{max}",
                    path.join(".")
                ))),
            },
        }
    };
    Ok(json!({
        "thread_num": int(&["thread_num"], 1, 1, 64)?,
        "batch_window": {
            "count": int(&["batch_window", "count"], 1, 1, 10_000)?,
            "time": int(&["batch_window", "time"], 0, 0, 1000)?,
            "interval": int(&["batch_window", "interval"], 0, 0, 15)?,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Value {
        json!({
            "name": "s1",
            "source": {"name": "HC.Kafka", "source_kafka": {"addr": "127.0.0.1:9092", "group": "g1", "topic": "t1", "enable_sasl_ssl": false, "seek_to": "earliest"}},
            "sink": {"name": "HC.FunctionGraph", "sink_fg": {"urn": "urn:fss:cn-north-4:p:function:default:f:latest", "invoke_type": "SYNC"}},
            "rule_config": {"transform": {"type": "ORIGINAL"}, "filter": {}},
            "option": {"thread_num": 2, "batch_window": {"count": 5, "time": 3, "interval": 2}}
        })
    }

    #[test]
    fn accepts_and_normalizes() {
        let d = Definition::parse(&valid()).unwrap();
        assert_eq!(d.json["source"]["source_kafka"]["seek_to"], "earliest");
        assert_eq!(d.json["option"]["batch_window"]["count"], 5);
        let mut minimal = valid();
        minimal.as_object_mut().unwrap().remove("option");
        minimal.as_object_mut().unwrap().remove("rule_config");
        minimal["source"]["source_kafka"]
            .as_object_mut()
            .unwrap()
            .remove("seek_to");
        let d = Definition::parse(&minimal).unwrap();
        assert_eq!(d.json["source"]["source_kafka"]["seek_to"], "latest");
        assert_eq!(
            d.json["option"],
            json!({"thread_num": 1, "batch_window": {"count": 1, "time": 0, "interval": 0}})
        );
        let mut kafka_sink = valid();
        kafka_sink["sink"] = json!({"name": "HC.Kafka", "sink_kafka": {"topic": "out", "connection_id": "c1", "key_transform": {"type": "ORIGINAL"}}});
        let d = Definition::parse(&kafka_sink).unwrap();
        assert_eq!(d.json["sink"]["sink_kafka"]["connectionId"], "c1");
    }

    #[test]
    fn refuses_bad_definitions() {
        let cases: Vec<(&str, Value)> = vec![
            ("/name", json!("bad name")),
            ("/name", json!("-x")),
            ("/name", json!("a".repeat(129))),
            ("/source/name", json!("HC.DMS_ROCKETMQ")),
            ("/source/name", json!("HC.Nope")),
            ("/source/source_kafka/topic", json!("")),
            ("/source/source_kafka/seek_to", json!("middle")),
            ("/source/source_kafka/enable_sasl_ssl", json!(true)),
            ("/sink/name", json!("HC.OBS")),
            (
                "/sink",
                json!({"name": "HC.Kafka", "sink_kafka": {"topic": "out"}}),
            ),
            ("/sink/sink_fg/urn", json!("not-an-urn")),
            ("/sink/sink_fg/invoke_type", json!("MAYBE")),
            ("/option/thread_num", json!(0)),
            ("/option/batch_window/count", json!(10_001)),
            ("/option/batch_window/interval", json!(16)),
            (
                "/rule_config/transform",
                json!({"type": "CONSTANT", "value": "not json"}),
            ),
            ("/rule_config/filter", json!({"time": []})),
        ];
        for (pointer, value) in cases {
            let mut body = valid();
            *body
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("{pointer}")) = value;
            assert!(Definition::parse(&body).is_err(), "{pointer}");
        }
        let mut no_sink = valid();
        no_sink.as_object_mut().unwrap().remove("sink");
        assert!(Definition::parse(&no_sink).is_err());
    }
}
