//! An event stream's definition (`EventStreamingCreateReq`), validated.
//!
//! fgs runs the `HC.Kafka` source, the three RocketMQ sources (`HC.COMMUNITY_ROCKETMQ`,
//! `HC.DMS_ROCKETMQ`, `HC.MOBILE_ROCKETMQ`, read into one [`RocketMqSettings`]) and the
//! `HC.FunctionGraph` and `HC.Kafka` sinks; the OBS sink is refused with a clear message.
//! Since fgs has no Kafka instance registry, `source_kafka.addr` (the bootstrap servers) is
//! required; a Kafka sink names a target connection ([`crate::connections`]), which carries
//! the sink's broker addresses. A DMS RocketMQ source names its instance by id: the host maps
//! ids to name servers (`serve --rocketmq-instance ID=ADDR`), or the source gives `addr`.

use std::time::Duration;

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
    if !KNOWN_SOURCES.contains(&name) {
        return Err(invalid(format!(
            "unknown source {name:?}; fgs supports {}",
            KNOWN_SOURCES.join(", ")
        )));
    }
    if let Some(flavour) = Flavour::named(name) {
        let given = source
            .get(flavour.key)
            .or_else(|| flavour.alias.and_then(|alias| source.get(alias)))
            .filter(|v| v.is_object())
            .ok_or_else(|| invalid(format!("source.{} is required for {name}", flavour.key)))?;
        let normalized = flavour.normalize(given)?;
        return Ok(json!({ "name": name, flavour.key: normalized }));
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

/// How one of EventGrid's three RocketMQ sources names its parameters (the models
/// `SourceCommunityMQParameters`, `SourceDMSMQParameters`, `SourceMobileMQParameters`).
pub struct Flavour {
    /// `source.name`.
    pub name: &'static str,
    /// The key of its parameters in `source`.
    pub key: &'static str,
    /// Another key accepted for them (Terraform's `source_community_rocketmq_kafka`).
    alias: Option<&'static str>,
    group: &'static str,
    retries: &'static str,
    retry_interval: &'static str,
    acl: &'static str,
    /// Fields that must be given (besides the group and topic).
    required: &'static [&'static str],
    /// `message_type`'s values; the first is the default.
    message_types: &'static [&'static str],
    /// Whether `message_model` (CLUSTERING or BROADCASTING) is required.
    message_model: bool,
}

const FLAVOURS: [Flavour; 3] = [
    Flavour {
        name: "HC.COMMUNITY_ROCKETMQ",
        key: "source_community_rocketmq",
        alias: Some("source_community_rocketmq_kafka"),
        group: "group",
        retries: "max_reconsume_times",
        retry_interval: "suspend_current_queue_time_millis",
        acl: "enable_acl",
        required: &["addr", "vpc_id", "subnet_id"],
        message_types: &["normal"],
        message_model: false,
    },
    Flavour {
        name: "HC.DMS_ROCKETMQ",
        key: "source_dms_rocketmq",
        alias: None,
        group: "group",
        retries: "max_reconsume_times",
        retry_interval: "suspend_current_queue_time_millis",
        acl: "enable_acl",
        required: &["instance_id"],
        message_types: &["NORMAL", "ORDER"],
        message_model: false,
    },
    Flavour {
        name: "HC.MOBILE_ROCKETMQ",
        key: "source_mobile_rocketmq",
        alias: None,
        group: "group_id",
        retries: "max_reconsumer_times",
        retry_interval: "suspend_time",
        acl: "authentication_required",
        required: &[
            "instance_id",
            "addr",
            "addr_type",
            "sdk_url",
            "consume_timeout",
            "message_type",
        ],
        message_types: &["NORMAL"],
        message_model: true,
    },
];

/// A RocketMQ source's settings, whichever flavour names them. Where a field is not given,
/// RocketMQ's default applies, or the stream's `option` (threads, batch size and wait).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RocketMqSettings {
    /// `source.name`: the envelope's `source`.
    pub source: &'static str,
    pub instance_id: Option<String>,
    /// The name servers (`host:port;host:port`); `None` for a DMS instance the host maps.
    pub addr: Option<String>,
    pub group: String,
    pub topic: String,
    /// The tag filter expression (`*`, `TagA || TagB`).
    pub tag: String,
    pub broadcasting: bool,
    /// ACL's access key and secret key.
    pub credentials: Option<(String, String)>,
    pub threads: Option<usize>,
    pub batch: Option<usize>,
    pub max_wait: Option<Duration>,
    /// Retries of a failed batch; `None`: forever (`-1`).
    pub retries: Option<u64>,
    pub retry_interval: Duration,
    /// How long one delivery may take (`consume_timeout`, minutes).
    pub consume_timeout: Duration,
}

impl Flavour {
    fn named(name: &str) -> Option<&'static Flavour> {
        FLAVOURS.iter().find(|f| f.name == name)
    }

    /// Checks `given` (at `source.<key>`) and returns it with the defaults filled in.
    fn normalize(&'static self, given: &Value) -> Result<Value, DefinitionError> {
        let mut v = given.clone();
        let at = format!("source.{}", self.key);
        for key in [self.group, "topic"].iter().chain(self.required) {
            if v.get(*key)
                .is_none_or(|x| x.is_null() || x.as_str() == Some(""))
            {
                return Err(invalid(format!("{at}.{key} is required")));
            }
        }
        let message_type = match v.get("message_type").and_then(Value::as_str) {
            None => self.message_types[0],
            Some(t) => self
                .message_types
                .iter()
                .find(|m| m.eq_ignore_ascii_case(t))
                .ok_or_else(|| {
                    invalid(format!(
                        "{at}.message_type {t:?} must be {}",
                        self.message_types.join(" or ")
                    ))
                })?,
        };
        v["message_type"] = json!(message_type);
        if self.message_model {
            one_of(&v, &at, "message_model", &["CLUSTERING", "BROADCASTING"])?;
            one_of(&v, &at, "addr_type", &["PUBLIC", "PRIVATE"])?;
        }
        if self.name == "HC.DMS_ROCKETMQ" && v.get("engine_version").is_some() {
            one_of(&v, &at, "engine_version", &["4.x", "5.x"])?;
        }
        for (key, default) in [
            ("tag", json!("*")),
            (self.retries, json!(-1)),
            (self.retry_interval, json!(1000)),
            ("consume_timeout", json!(15)),
        ] {
            if v.get(key).is_none_or(Value::is_null) {
                v[key] = default;
            }
        }
        RocketMqSettings::read(self, &v, &at)?;
        Ok(v)
    }
}

impl RocketMqSettings {
    /// The settings of a stream's normalized `source`, or `None` for a Kafka source.
    pub fn of(source: &Value) -> Result<Option<Self>, DefinitionError> {
        let Some(flavour) = source["name"].as_str().and_then(Flavour::named) else {
            return Ok(None);
        };
        let at = format!("source.{}", flavour.key);
        Self::read(flavour, &source[flavour.key], &at).map(Some)
    }

    fn read(f: &'static Flavour, v: &Value, at: &str) -> Result<Self, DefinitionError> {
        let text = |key: &str| -> Result<Option<String>, DefinitionError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(format!("{at}.{key} must be a string"))),
            }
        };
        let flag = |key: &str| -> Result<bool, DefinitionError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(invalid(format!("{at}.{key} must be true or false"))),
            }
        };
        let int = |key: &str, min: i64, max: i64| -> Result<Option<i64>, DefinitionError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(n) => match n.as_i64() {
                    Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(invalid(format!(
                        "{at}.{key} must be an integer in {min}…{max}"
                    ))),
                },
            }
        };
        let group = text(f.group)?.unwrap_or_default();
        let topic = text("topic")?.unwrap_or_default();
        for (key, name, max) in [(f.group, &group, 255), ("topic", &topic, 127)] {
            if name.len() > max
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '%' | '|'))
            {
                return Err(invalid(format!(
                    "{at}.{key} {name:?}: 1–{max} letters, digits, '_', '-', '%', '|'"
                )));
            }
        }
        let addr = text("addr")?;
        if let Some(addr) = &addr {
            if !addr.split(';').all(valid_host_port) {
                return Err(invalid(format!(
                    "{at}.addr {addr:?} must be name servers as host:port, separated by ';'"
                )));
            }
        }
        let tag = text("tag")?.unwrap_or_else(|| "*".into());
        if !valid_tag_expression(&tag) {
            return Err(invalid(format!(
                "{at}.tag {tag:?} must be * or tags separated by ||"
            )));
        }
        if flag("ssl_enable")? {
            return Err(invalid(format!(
                "{at}.ssl_enable: fgs connects to RocketMQ without TLS"
            )));
        }
        let credentials = if flag(f.acl)? {
            let (Some(ak), Some(sk)) = (text("access_key")?, text("secret_key")?) else {
                return Err(invalid(format!(
                    "{at}.access_key and {at}.secret_key are required when {} is set",
                    f.acl
                )));
            };
            Some((ak, sk))
        } else {
            None
        };
        let retries = int(f.retries, -1, 10_000)?.unwrap_or(-1);
        Ok(RocketMqSettings {
            source: f.name,
            instance_id: text("instance_id")?,
            addr,
            group,
            topic,
            tag,
            broadcasting: text("message_model")?.as_deref() == Some("BROADCASTING"),
            credentials,
            threads: int("consumer_thread_nums", 1, 64)?.map(|n| n as usize),
            batch: int("consumer_batch_max_size", 1, 1024)?.map(|n| n as usize),
            max_wait: int("consumer_max_wait", 0, 15)?.map(|s| Duration::from_secs(s as u64)),
            retries: u64::try_from(retries).ok(),
            retry_interval: Duration::from_millis(
                int(f.retry_interval, 10, 30_000)?.unwrap_or(1000) as u64,
            ),
            consume_timeout: Duration::from_secs(
                60 * int("consume_timeout", 1, 60)?.unwrap_or(15) as u64,
            ),
        })
    }
}

/// `host:port`, the port a number.
fn valid_host_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
            && port.parse::<u16>().is_ok_and(|p| p != 0)
    })
}

/// RocketMQ's tag filter expression: `*`, or tags separated by `||` (up to 256 bytes).
fn valid_tag_expression(tag: &str) -> bool {
    tag.len() <= 256
        && (tag.trim() == "*"
            || tag.split("||").all(|t| {
                let t = t.trim();
                !t.is_empty() && !t.contains(char::is_whitespace)
            }))
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

    fn rocketmq() -> Value {
        json!({"name": "HC.COMMUNITY_ROCKETMQ", "source_community_rocketmq": {
            "addr": "127.0.0.1:9876;10.0.0.2:9876", "group": "GID_a", "topic": "t1",
            "vpc_id": "v", "subnet_id": "s"}})
    }

    #[test]
    fn reads_the_three_rocketmq_flavours_alike() {
        let mut body = valid();
        body["source"] = rocketmq();
        let d = Definition::parse(&body).unwrap();
        let community = RocketMqSettings::of(&d.json["source"]).unwrap().unwrap();
        assert_eq!(community.tag, "*");
        assert_eq!(community.retries, None, "-1 (forever) by default");
        assert_eq!(community.retry_interval, Duration::from_secs(1));
        assert_eq!(community.consume_timeout, Duration::from_secs(15 * 60));
        assert!(!community.broadcasting && community.credentials.is_none());
        assert_eq!(
            d.json["source"]["source_community_rocketmq"]["message_type"],
            "normal"
        );
        body["source"] = json!({"name": "HC.COMMUNITY_ROCKETMQ", "source_community_rocketmq_kafka":
            body["source"]["source_community_rocketmq"].clone()});
        let d = Definition::parse(&body).unwrap();
        assert!(
            d.json["source"]["source_community_rocketmq"].is_object(),
            "Terraform's key"
        );
        body["source"] = json!({"name": "HC.MOBILE_ROCKETMQ", "source_mobile_rocketmq": {
            "group_id": "g", "instance_id": "i", "topic": "t", "tag": "a || b",
            "message_model": "BROADCASTING", "addr_type": "PRIVATE", "addr": "h:9876",
            "sdk_url": "x", "consume_timeout": 2, "message_type": "NORMAL",
            "max_reconsumer_times": 3, "suspend_time": 50, "consumer_max_wait": 2,
            "consumer_batch_max_size": 32, "authentication_required": true,
            "access_key": "ak", "secret_key": "sk"}});
        let d = Definition::parse(&body).unwrap();
        let mobile = RocketMqSettings::of(&d.json["source"]).unwrap().unwrap();
        assert_eq!(mobile.group, "g");
        assert!(mobile.broadcasting);
        assert_eq!(mobile.retries, Some(3));
        assert_eq!(mobile.retry_interval, Duration::from_millis(50));
        assert_eq!(mobile.max_wait, Some(Duration::from_secs(2)));
        assert_eq!(mobile.batch, Some(32));
        assert_eq!(mobile.credentials, Some(("ak".into(), "sk".into())));
        body["source"] = json!({"name": "HC.DMS_ROCKETMQ", "source_dms_rocketmq": {
            "instance_id": "i-1", "group": "g", "topic": "t", "message_type": "ORDER"}});
        let dms = RocketMqSettings::of(&Definition::parse(&body).unwrap().json["source"])
            .unwrap()
            .unwrap();
        assert_eq!((dms.instance_id.as_deref(), dms.addr), (Some("i-1"), None));
    }

    #[test]
    fn refuses_bad_rocketmq_sources() {
        let at = "/source/source_community_rocketmq";
        for (key, value) in [
            ("addr", json!("")),
            ("addr", json!("nohost")),
            ("addr", json!("h:99999")),
            ("group", json!("a b")),
            ("topic", json!("t".repeat(128))),
            ("vpc_id", json!(null)),
            ("tag", json!("a || ")),
            ("message_type", json!("ORDER")),
            ("ssl_enable", json!(true)),
            ("enable_acl", json!(true)),
            ("max_reconsume_times", json!(-2)),
            ("suspend_current_queue_time_millis", json!(5)),
            ("consumer_batch_max_size", json!(0)),
            ("consume_timeout", json!(61)),
        ] {
            let mut body = valid();
            body["source"] = rocketmq();
            body.pointer_mut(at).unwrap()[key] = value;
            assert!(Definition::parse(&body).is_err(), "{key}");
        }
        let mut body = valid();
        body["source"] = json!({"name": "HC.MOBILE_ROCKETMQ", "source_mobile_rocketmq": {
            "group_id": "g", "instance_id": "i", "topic": "t", "message_model": "BOTH",
            "addr_type": "PRIVATE", "addr": "h:9876", "sdk_url": "x", "consume_timeout": 2,
            "message_type": "NORMAL"}});
        assert!(Definition::parse(&body).is_err(), "message_model");
    }

    #[test]
    fn refuses_bad_definitions() {
        let cases: Vec<(&str, Value)> = vec![
            ("/name", json!("bad name")),
            ("/name", json!("-x")),
            ("/name", json!("a".repeat(129))),
            ("/source/name", json!("HC.DMS_ROCKETMQ")),
            ("/source/name", json!("HC.COMMUNITY_ROCKETMQ")),
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
        no_sink["source"] = rocketmq();
        assert!(Definition::parse(&no_sink).is_ok());
        no_sink.as_object_mut().unwrap().remove("sink");
        assert!(Definition::parse(&no_sink).is_err());
    }
}
