//! Event channels (`/v1/{project_id}/channels`) and `put_events`: applications publish
//! CloudEvents 1.0 to a channel; each event goes to the targets of the channel's enabled
//! subscriptions whose source it comes from and whose filter it passes.
//!
//! Every project has a channel named `default` (made at its first use). Delivery to a
//! FunctionGraph target is an async invocation of the function: journaled durably before
//! put_events answers, then retried as the function's async settings say. An event is
//! answered per event: accepted (`event_id`), or refused with its code and why, the others
//! going on.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::api::{json_body, now, ApiError, ApiResult, Streams};
use crate::definition::valid_name;
use crate::store::{Resource, CHANNEL};
use crate::subscriptions;

/// Events in one put_events call, at most.
pub const MAX_EVENTS: usize = 100;
/// One event, serialized, at most.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// A put_events body, at most (413 `EG.00014130` beyond).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// The name of every project's own channel.
const DEFAULT: &str = "default";

fn channel_json(id: &str, name: &str, description: &str) -> Value {
    let time = now();
    json!({
        "id": id,
        "name": name,
        "description": description,
        "provider_type": "CUSTOM",
        "created_time": time,
        "updated_time": time,
        "enterprise_project_id": "0",
    })
}

/// The project's channels, its `default` channel made first if it has none yet.
fn channels(streams: &Streams, project_id: &str) -> Result<Vec<Resource>, ApiError> {
    let found = streams.store.resources(CHANNEL, project_id)?;
    if found.iter().any(|c| c.name == DEFAULT) {
        return Ok(found);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let default = Resource {
        detail: channel_json(&id, DEFAULT, "the project's default channel"),
        id,
        project_id: project_id.to_string(),
        name: DEFAULT.into(),
    };
    // Another request may have made it meanwhile: then the name is taken, and it is there.
    if let Err(refused) = crate::api::insert_resource(streams, CHANNEL, "channel", &default) {
        if streams
            .store
            .resources(CHANNEL, project_id)?
            .iter()
            .all(|c| c.name != DEFAULT)
        {
            return Err(refused);
        }
    }
    Ok(streams.store.resources(CHANNEL, project_id)?)
}

/// The channel `id` of the project (404 EG.00014040 when it has none of that id).
pub(crate) fn channel(streams: &Streams, project_id: &str, id: &str) -> Result<Resource, ApiError> {
    channels(streams, project_id)?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("channel {id} does not exist")))
}

/// `POST /v1/{project_id}/channels` → the channel.
pub(crate) async fn create(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
    let name = text("name");
    if !valid_name(name) || name == DEFAULT {
        return Err(ApiError::BadRequest(format!(
            "name {name:?}: 1–128 letters, digits, '.', '_', '-', starting with a letter or digit, not \"default\""
        )));
    }
    if text("description").chars().count() > 255 {
        return Err(ApiError::BadRequest(
            "description exceeds 255 characters".into(),
        ));
    }
    channels(&streams, &project_id)?;
    let id = uuid::Uuid::new_v4().to_string();
    let channel = Resource {
        detail: channel_json(&id, name, text("description")),
        id,
        project_id,
        name: name.to_string(),
    };
    crate::api::insert_resource(&streams, CHANNEL, "channel", &channel)?;
    Ok(Json(channel.detail).into_response())
}

/// `GET /v1/{project_id}/channels?offset=&limit=&name=&provider_type=` → `{"total", "size",
/// "items"}`.
pub(crate) async fn list(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    Query(q): Query<crate::api::ResourceQuery>,
) -> ApiResult {
    let all = channels(&streams, &project_id)?;
    crate::api::list_resources(
        &all,
        &q.page,
        &[("name", &q.name), ("provider_type", &q.provider_type)],
    )
}

/// Why one event of a put_events call is refused, if it is: CloudEvents 1.0's required
/// attributes (`id`, `source`, `specversion` 1.0, `type`), JSON data only, an RFC 3339
/// `time`, string `subject` and `dataschema`, and the size limit.
fn invalid(event: &Value) -> Option<String> {
    let Some(object) = event.as_object() else {
        return Some("an event is a JSON object".into());
    };
    for key in ["id", "source", "specversion", "type"] {
        match object.get(key) {
            Some(Value::String(s)) if !s.is_empty() => {}
            _ => return Some(format!("{key} is required (a non-empty string)")),
        }
    }
    if object["specversion"] != "1.0" {
        return Some(format!("specversion {} is not 1.0", object["specversion"]));
    }
    match object.get("datacontenttype") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "application/json" || t.starts_with("application/json;") => {
        }
        Some(other) => return Some(format!("datacontenttype {other}: only application/json")),
    }
    if let Some(time) = object.get("time").filter(|t| !t.is_null()) {
        if time
            .as_str()
            .is_none_or(|t| chrono::DateTime::parse_from_rfc3339(t).is_err())
        {
            return Some(format!("time {time} is not an RFC 3339 time"));
        }
    }
    for key in ["subject", "dataschema"] {
        if object
            .get(key)
            .is_some_and(|v| !v.is_null() && !v.is_string())
        {
            return Some(format!("{key} must be a string"));
        }
    }
    let size = event.to_string().len();
    if size > MAX_EVENT_BYTES {
        return Some(format!(
            "the event is {size} bytes, more than {MAX_EVENT_BYTES}"
        ));
    }
    None
}

/// `POST /v1/{project_id}/channels/{channel_id}/events` with `{"events": [...]}` (1 to 100)
/// → `{"failed_count", "events": [{"event_id"} | {"event_id", "error_code", "error_msg"}]}`.
pub(crate) async fn put_events(
    State(streams): State<Arc<Streams>>,
    Path((project_id, channel_id)): Path<(String, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult {
    let body = body.map_err(|e| match e.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(format!("a put_events body is at most {MAX_BODY} bytes"))
        }
        _ => ApiError::BadRequest(e.body_text()),
    })?;
    let channel = channel(&streams, &project_id, &channel_id)?;
    let body = json_body(&body)?;
    let Some(events) = body.get("events").and_then(Value::as_array) else {
        return Err(ApiError::BadRequest("events (an array) is required".into()));
    };
    if events.is_empty() || events.len() > MAX_EVENTS {
        return Err(ApiError::BadRequest(format!(
            "events: 1 to {MAX_EVENTS} events per call, not {}",
            events.len()
        )));
    }
    let routes = subscriptions::routes(&streams, &project_id, &channel.id)?;
    // The events' deliveries run together, so their journal writes share a commit.
    let refusals = futures_util::future::join_all(events.iter().map(|event| async {
        match invalid(event) {
            Some(why) => Some(("EG.00014000", why)),
            None => routes
                .deliver(&streams, &project_id, event)
                .await
                .err()
                .map(|why| ("EG.00015000", why)),
        }
    }))
    .await;
    let mut answers = Vec::with_capacity(events.len());
    let mut failed = 0;
    for (event, refusal) in events.iter().zip(refusals) {
        let event_id = event.get("id").cloned().unwrap_or(Value::Null);
        answers.push(match refusal {
            None => json!({ "event_id": event_id }),
            Some((code, why)) => {
                failed += 1;
                json!({ "event_id": event_id, "error_code": code, "error_msg": why })
            }
        });
    }
    Ok(Json(json!({ "failed_count": failed, "events": answers })).into_response())
}
