//! Custom event sources (`/v1/{project_id}/sources`): the names applications publish under
//! (an event's `source`), each in a channel. fgs makes `APPLICATION` sources, whose events come
//! through put_events; sources that pull from a broker (`ROCKETMQ`, `RABBITMQ`) are refused.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::api::{json_body, now, ApiError, ApiResult, Streams};
use crate::store::{Resource, SOURCE};

/// A custom source's name: lower-case letters, digits, '.', '_', '-', starting with a letter
/// or digit, not `hc.` (the official sources' prefix).
fn valid_source_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && !name.starts_with("hc.")
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// `POST /v1/{project_id}/sources` → the source.
pub(crate) async fn create(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = json_body(&body)?;
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
    let name = text("name");
    if !valid_source_name(name) {
        return Err(ApiError::BadRequest(format!(
            "name {name:?}: 1–128 lower-case letters, digits, '.', '_', '-', starting with a letter or digit, not \"hc.\""
        )));
    }
    if text("description").chars().count() > 255 {
        return Err(ApiError::BadRequest(
            "description exceeds 255 characters".into(),
        ));
    }
    let kind = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("APPLICATION");
    if kind != "APPLICATION" {
        return Err(ApiError::BadRequest(format!(
            "type {kind:?}: fgs makes APPLICATION sources (events come through put_events)"
        )));
    }
    let channel = crate::channels::channel(&streams, &project_id, text("channel_id"))?;
    let time = now();
    let id = uuid::Uuid::new_v4().to_string();
    let source = Resource {
        detail: json!({
            "id": id,
            "name": name,
            "label": name,
            "description": text("description"),
            "provider_type": "CUSTOM",
            "event_types": [],
            "created_time": time,
            "updated_time": time,
            "channel_id": channel.id,
            "channel_name": channel.name,
            "type": kind,
            "detail": {},
            "status": "RUNNING",
        }),
        id,
        project_id,
        name: name.to_string(),
    };
    crate::api::insert_resource(&streams, SOURCE, "event source", &source)?;
    Ok(Json(source.detail).into_response())
}

/// `GET /v1/{project_id}/sources?channel_id=&name=&provider_type=&offset=&limit=`: the
/// project's custom sources (fgs has no official ones).
pub(crate) async fn list(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    Query(q): Query<crate::api::ResourceQuery>,
) -> ApiResult {
    let all = streams.store.resources(SOURCE, &project_id)?;
    crate::api::list_resources(
        &all,
        &q.page,
        &[
            ("channel_id", &q.channel_id),
            ("name", &q.name),
            ("provider_type", &q.provider_type),
        ],
    )
}
