//! Event subscriptions (`/v1/{project_id}/subscriptions`): which events of a channel go where.
//! A subscription names one event source (an event's `source` must equal its name), an
//! optional filter (the language event streams use, over the CloudEvent) and up to 5 targets.
//! fgs's targets are FunctionGraph functions of the project (`HC.FunctionGraph`,
//! `detail.urn`) and Kafka topics through its connections (`HC.Kafka`, `connection_id`,
//! `kafka_detail.topic` and `keyTransform`), each with an optional transform of the event
//! (ORIGINAL, CONSTANT, VARIABLE).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use rdkafka::producer::FutureRecord;
use serde_json::{json, Value};

use crate::api::{json_body, now, ApiError, ApiResult, Streams};
use crate::definition::valid_name;
use crate::rules::{Filter, Transform};
use crate::store::{Resource, SUBSCRIPTION};

/// Targets per subscription, at most.
const MAX_TARGETS: usize = 5;
/// Subscriptions one operation call names, at most (EventGrid's limit).
const MAX_OPERATED: usize = 10;
const ENABLED: &str = "ENABLED";
const DISABLED: &str = "DISABLED";

fn bad(why: impl Into<String>) -> ApiError {
    ApiError::BadRequest(why.into())
}

/// An id given by the caller (lower-case letters, digits, '-', starting with a letter or
/// digit), or a new one.
fn id_of(v: &Value, at: &str) -> Result<String, ApiError> {
    match v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some(id)
            if id.len() <= 64
                && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Ok(id.to_string())
        }
        Some(id) => Err(bad(format!(
            "{at}.id {id:?}: lower-case letters, digits and '-', starting with a letter or digit"
        ))),
    }
}

/// The validated `sources` of a body, as answered.
fn sources(body: &Value, time: &str) -> Result<Vec<Value>, ApiError> {
    let list = body
        .get("sources")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("sources (an array of one event source) is required"))?;
    if list.len() != 1 {
        return Err(bad(format!(
            "sources: exactly one event source, not {}",
            list.len()
        )));
    }
    let source = &list[0];
    let name = source
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() || name.len() > 128 {
        return Err(bad(
            "sources[0].name (the events' source) is required, 1–128 characters",
        ));
    }
    let filter = source.get("filter").cloned().unwrap_or_else(|| json!({}));
    if filter.to_string().len() > 2048 {
        return Err(bad("sources[0].filter exceeds 2048 bytes"));
    }
    if !filter.as_object().is_some_and(|f| f.is_empty()) {
        Filter::parse(&filter).map_err(|e| bad(format!("sources[0].filter: {e}")))?;
    }
    let detail = source.get("detail").cloned().unwrap_or_else(|| json!({}));
    if detail.to_string().len() > 1024 {
        return Err(bad("sources[0].detail exceeds 1024 bytes"));
    }
    Ok(vec![json!({
        "id": id_of(source, "sources[0]")?,
        "name": name,
        "provider_type": source.get("provider_type").and_then(Value::as_str).unwrap_or("CUSTOM"),
        "detail": detail,
        "filter": filter,
        "created_time": time,
        "updated_time": time,
    })])
}

/// The validated `targets` of a body, as answered: FunctionGraph functions of `project_id`,
/// or Kafka topics through one of its connections.
fn targets(
    streams: &Streams,
    body: &Value,
    project_id: &str,
    time: &str,
) -> Result<Vec<Value>, ApiError> {
    let list = body
        .get("targets")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("targets (an array of 1 to 5 targets) is required"))?;
    if list.is_empty() || list.len() > MAX_TARGETS {
        return Err(bad(format!(
            "targets: 1 to {MAX_TARGETS} targets, not {}",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, target)| {
            let at = format!("targets[{i}]");
            let name = target.get("name").and_then(Value::as_str).unwrap_or_default();
            let detail = target.get("detail").cloned().unwrap_or_else(|| json!({}));
            if detail.to_string().len() > 1024 {
                return Err(bad(format!("{at}.detail exceeds 1024 bytes")));
            }
            let connection_id = target
                .get("connection_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut kafka_detail = Value::Null;
            match name {
                "HC.FunctionGraph" => {
                    let urn = detail.get("urn").and_then(Value::as_str).unwrap_or_default();
                    let ours = format!(":{project_id}:function:");
                    if !urn.starts_with("urn:fss:") || !urn.contains(&ours) {
                        return Err(bad(format!(
                            "{at}.detail.urn {urn:?}: a function URN of this project"
                        )));
                    }
                }
                "HC.Kafka" => {
                    if streams.store.connection(project_id, connection_id)?.is_none() {
                        return Err(bad(format!(
                            "{at}.connection_id {connection_id:?}: a connection of this project"
                        )));
                    }
                    kafka_detail = target.get("kafka_detail").cloned().unwrap_or(Value::Null);
                    if kafka_detail["topic"].as_str().is_none_or(str::is_empty) {
                        return Err(bad(format!("{at}.kafka_detail.topic is required")));
                    }
                    KafkaKey::parse(&kafka_detail["keyTransform"])
                        .map_err(|e| bad(format!("{at}.kafka_detail.keyTransform: {e}")))?;
                }
                other => {
                    return Err(bad(format!(
                        "{at}.name {other:?}: fgs delivers to HC.FunctionGraph and HC.Kafka targets"
                    )))
                }
            }
            let transform = target
                .get("transform")
                .cloned()
                .unwrap_or_else(|| json!({"type": "ORIGINAL"}));
            Transform::parse(&transform, true).map_err(|e| bad(format!("{at}.transform: {e}")))?;
            let retry_times = match target.get("retry_times") {
                None | Some(Value::Null) => 16,
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n <= 176)
                    .ok_or_else(|| bad(format!("{at}.retry_times {v}: 0 to 176")))?,
            };
            Ok(json!({
                "id": id_of(target, &at)?,
                "name": name,
                "provider_type": target.get("provider_type").and_then(Value::as_str).unwrap_or("OFFICIAL"),
                "connection_id": connection_id,
                "detail": detail,
                "kafka_detail": kafka_detail,
                "retry_times": retry_times,
                "transform": transform,
                "created_time": time,
                "updated_time": time,
            }))
        })
        .collect()
}

fn find(streams: &Streams, project_id: &str, id: &str) -> Result<Resource, ApiError> {
    streams
        .store
        .resource(SUBSCRIPTION, project_id, id)?
        .ok_or_else(|| ApiError::NotFound(format!("subscription {id} does not exist")))
}

/// `POST /v1/{project_id}/subscriptions` → the subscription (ENABLED).
pub(crate) async fn create(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
    let name = text("name");
    if !valid_name(name) {
        return Err(bad(format!(
            "name {name:?}: 1–128 letters, digits, '.', '_', '-', starting with a letter or digit"
        )));
    }
    if text("description").chars().count() > 255 {
        return Err(bad("description exceeds 255 characters"));
    }
    let channel = crate::channels::channel(&streams, &project_id, text("channel_id"))?;
    let time = now();
    let id = uuid::Uuid::new_v4().to_string();
    let detail = json!({
        "id": id,
        "name": name,
        "description": text("description"),
        "type": "CUSTOM",
        "status": ENABLED,
        "channel_id": channel.id,
        "channel_name": channel.name,
        "used": [],
        "sources": sources(&body, &time)?,
        "targets": targets(&streams, &body, &project_id, &time)?,
        "created_time": time,
        "updated_time": time,
    });
    let subscription = Resource {
        id,
        project_id,
        name: name.to_string(),
        detail,
    };
    crate::api::insert_resource(&streams, SUBSCRIPTION, "subscription", &subscription)?;
    Ok(Json(subscription.detail).into_response())
}

/// `GET /v1/{project_id}/subscriptions?channel_id=&name=&offset=&limit=`
pub(crate) async fn list(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    Query(q): Query<crate::api::ResourceQuery>,
) -> ApiResult {
    let all = streams.store.resources(SUBSCRIPTION, &project_id)?;
    crate::api::list_resources(
        &all,
        &q.page,
        &[("channel_id", &q.channel_id), ("name", &q.name)],
    )
}

/// `GET /v1/{project_id}/subscriptions/{id}`
pub(crate) async fn show(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
) -> ApiResult {
    Ok(Json(find(&streams, &project_id, &id)?.detail).into_response())
}

/// `PUT /v1/{project_id}/subscriptions/{id}`: `description`, and `sources` and `targets`
/// replaced whole when given.
pub(crate) async fn update(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let mut subscription = find(&streams, &project_id, &id)?;
    let body = json_body(&body)?;
    let time = now();
    let detail = &mut subscription.detail;
    if let Some(description) = body.get("description") {
        let text = description.as_str().unwrap_or_default();
        if text.chars().count() > 255 {
            return Err(bad("description exceeds 255 characters"));
        }
        detail["description"] = json!(text);
    }
    if body.get("sources").is_some() {
        detail["sources"] = json!(sources(&body, &time)?);
    }
    if body.get("targets").is_some() {
        detail["targets"] = json!(targets(&streams, &body, &project_id, &time)?);
    }
    detail["updated_time"] = json!(time);
    streams.store.update_resource(SUBSCRIPTION, &subscription)?;
    Ok(Json(subscription.detail).into_response())
}

/// `DELETE /v1/{project_id}/subscriptions/{id}` → 204.
pub(crate) async fn delete(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
) -> ApiResult {
    find(&streams, &project_id, &id)?;
    streams
        .store
        .delete_resource(SUBSCRIPTION, &project_id, &id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/{project_id}/subscriptions/operation` with `{"subscription_ids": [...] (1 to
/// 10), "operation": "ENABLE" | "DISABLE"}` → `{"failed_count", "events": [{"subscription_id",
/// "error_code"?, "error_msg"?}]}`.
pub(crate) async fn operate(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let status = match body.get("operation").and_then(Value::as_str) {
        Some("ENABLE") => ENABLED,
        Some("DISABLE") => DISABLED,
        other => {
            return Err(bad(format!(
                "operation {other:?} must be ENABLE or DISABLE"
            )))
        }
    };
    let ids: Vec<&str> = body
        .get("subscription_ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > MAX_OPERATED {
        return Err(bad(format!(
            "subscription_ids: 1 to {MAX_OPERATED} subscription ids, not {}",
            ids.len()
        )));
    }
    let (mut answers, mut failed) = (Vec::new(), 0);
    for id in ids {
        match streams.store.resource(SUBSCRIPTION, &project_id, id)? {
            Some(mut subscription) => {
                subscription.detail["status"] = json!(status);
                subscription.detail["updated_time"] = json!(now());
                streams.store.update_resource(SUBSCRIPTION, &subscription)?;
                answers.push(json!({ "subscription_id": id }));
            }
            None => {
                failed += 1;
                answers.push(json!({
                    "subscription_id": id,
                    "error_code": "EG.00014040",
                    "error_msg": format!("subscription {id} does not exist"),
                }));
            }
        }
    }
    Ok(Json(json!({ "failed_count": failed, "events": answers })).into_response())
}

/// A channel's enabled subscriptions, compiled: where its events go.
pub(crate) struct Routes(Vec<Route>);

struct Route {
    source: String,
    filter: Option<Filter>,
    targets: Vec<(Target, Transform)>,
}

/// Where a route delivers.
enum Target {
    /// An async invocation of this function.
    Function { urn: String },
    /// A record in this topic, through the project's connection.
    Kafka {
        connection_id: String,
        topic: String,
        key: KafkaKey,
    },
}

/// How a Kafka target keys its records (`kafka_detail.keyTransform`): no key (`NONE`, the
/// default), a constant, or a template filled from the event (`VARIABLE`).
enum KafkaKey {
    None,
    Rule(Transform),
}

impl KafkaKey {
    fn parse(rule: &Value) -> Result<Self, String> {
        match rule["type"].as_str() {
            None | Some("NONE") => Ok(KafkaKey::None),
            Some("CONSTANT" | "VARIABLE") => Ok(KafkaKey::Rule(
                Transform::parse(rule, false).map_err(|e| e.to_string())?,
            )),
            Some(other) => Err(format!("type {other:?}: NONE, CONSTANT or VARIABLE")),
        }
    }

    fn of(&self, event: &Value) -> Option<String> {
        match self {
            KafkaKey::None => None,
            KafkaKey::Rule(rule) => match rule.apply(event).into_owned() {
                Value::Null => None,
                Value::String(s) => Some(s),
                other => Some(other.to_string()),
            },
        }
    }
}

/// The routes of `channel_id`'s enabled subscriptions.
pub(crate) fn routes(
    streams: &Streams,
    project_id: &str,
    channel_id: &str,
) -> Result<Routes, ApiError> {
    let mut routes = Vec::new();
    for s in streams.store.resources(SUBSCRIPTION, project_id)? {
        let d = &s.detail;
        if d["channel_id"] != channel_id || d["status"] != ENABLED {
            continue;
        }
        let source = &d["sources"][0];
        let filter = match &source["filter"] {
            Value::Object(f) if f.is_empty() => None,
            Value::Null => None,
            f => Some(Filter::parse(f).map_err(|e| ApiError::Internal(e.to_string()))?),
        };
        let targets = d["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                let target = if t["name"] == "HC.Kafka" {
                    Target::Kafka {
                        connection_id: text(&t["connection_id"]),
                        topic: text(&t["kafka_detail"]["topic"]),
                        key: KafkaKey::parse(&t["kafka_detail"]["keyTransform"])
                            .map_err(ApiError::Internal)?,
                    }
                } else {
                    Target::Function {
                        urn: text(&t["detail"]["urn"]),
                    }
                };
                // A function takes JSON; a Kafka record takes a string as its text.
                let transform = Transform::parse(&t["transform"], target.is_function())
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                Ok((target, transform))
            })
            .collect::<Result<_, ApiError>>()?;
        routes.push(Route {
            source: source["name"].as_str().unwrap_or_default().to_string(),
            filter,
            targets,
        });
    }
    Ok(Routes(routes))
}

impl Target {
    fn is_function(&self) -> bool {
        matches!(self, Target::Function { .. })
    }
}

impl Routes {
    /// Hands `event` to every target whose subscription takes it: an async invocation of a
    /// target function (journaled before this returns), a record a Kafka target's broker has
    /// acknowledged. The first failure, if any.
    pub(crate) async fn deliver(
        &self,
        streams: &Streams,
        project_id: &str,
        event: &Value,
    ) -> Result<(), String> {
        for route in &self.0 {
            if event["source"] != *route.source
                || route.filter.as_ref().is_some_and(|f| !f.matches(event))
            {
                continue;
            }
            for (target, transform) in &route.targets {
                let value = transform.apply(event);
                match target {
                    Target::Function { urn } => {
                        let payload = value.to_string().into_bytes();
                        streams
                            .sink
                            .deliver(project_id, urn, payload, false)
                            .await?;
                    }
                    Target::Kafka {
                        connection_id,
                        topic,
                        key,
                    } => {
                        let payload = match value.as_ref() {
                            Value::String(s) => s.clone().into_bytes(),
                            other => other.to_string().into_bytes(),
                        };
                        let producer = streams.producer(project_id, connection_id)?;
                        let key = key.of(event);
                        let mut record = FutureRecord::to(topic).payload(&payload);
                        if let Some(key) = &key {
                            record = record.key(key);
                        }
                        producer
                            .send(record, Duration::from_secs(10))
                            .await
                            .map_err(|(e, _)| format!("Kafka target {topic}: {e}"))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The name of a subscription of `project_id` with a target through connection `id`, if any.
pub(crate) fn using_connection(
    streams: &Streams,
    project_id: &str,
    id: &str,
) -> Result<Option<String>, ApiError> {
    Ok(streams
        .store
        .resources(SUBSCRIPTION, project_id)?
        .into_iter()
        .find(|s| {
            s.detail["targets"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["connection_id"] == id))
        })
        .map(|s| s.name))
}
