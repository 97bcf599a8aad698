//! Target connections (`/v1/{project_id}/connections`): where a stream's `HC.Kafka` sink
//! writes. EventGrid's connection names a Kafka instance; fgs has no instance registry, so a
//! connection carries the broker addresses itself (`kafka_detail.addr`, as the EventGrid model
//! allows) with the instance's SASL settings and `acks`.
//!
//! fgs answers create, list, show and delete; connections are usable at once (`ACTIVE`), and the
//! password is never returned. Only `type: KAFKA` connections exist here (the `WEBHOOK` type of
//! the real service reaches private networks, which a local host does not have).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::api::{json_body, now, refusal, ApiError, ApiResult, Page, Streams, BOUND};
use crate::definition::{kafka_security, one_of, valid_name};
use crate::store::StoredConnection;

/// Validates a `ConnectionCreateReq` into the stored JSON.
fn parse(body: &Value) -> Result<(String, Value), ApiError> {
    let bad = |why: String| ApiError::BadRequest(why);
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
    let name = text("name");
    if !valid_name(name) || name == "default" {
        return Err(bad(format!(
            "name {name:?}: 1–128 letters, digits, '.', '_', '-', starting with a letter or digit, not \"default\""
        )));
    }
    if text("description").chars().count() > 255 {
        return Err(bad("description exceeds 255 characters".into()));
    }
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("KAFKA");
    if kind != "KAFKA" {
        return Err(bad(format!(
            "type {kind:?}: fgs supports KAFKA connections"
        )));
    }
    let kafka = body
        .get("kafka_detail")
        .filter(|v| v.is_object())
        .ok_or_else(|| bad("kafka_detail is required for a KAFKA connection".into()))?;
    if kafka
        .get("addr")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(bad(
            "kafka_detail.addr (the bootstrap servers) is required".into()
        ));
    }
    kafka_security(kafka, "kafka_detail").map_err(|e| bad(e.to_string()))?;
    let acks = one_of(kafka, "kafka_detail", "acks", &["all", "0", "1", "-1"])
        .map_err(|e| bad(e.to_string()))?;
    let mut kafka = kafka.clone();
    kafka["acks"] = json!(acks);
    let time = now();
    Ok((
        name.to_string(),
        json!({
            "name": name,
            "description": text("description"),
            "status": "ACTIVE",
            "vpc_id": text("vpc_id"),
            "subnet_id": text("subnet_id"),
            "type": "KAFKA",
            "kafka_detail": kafka,
            "created_time": time,
            "updated_time": time,
        }),
    ))
}

/// What show and list return: the stored JSON and id, without the password.
fn info(c: &StoredConnection) -> Value {
    let mut v = c.detail.clone();
    v["id"] = json!(c.id);
    if let Some(kafka) = v.get_mut("kafka_detail").and_then(Value::as_object_mut) {
        kafka.remove("password");
    }
    v
}

fn find(streams: &Streams, project_id: &str, id: &str) -> Result<StoredConnection, ApiError> {
    streams
        .store
        .connection(project_id, id)?
        .ok_or_else(|| ApiError::NotFound(format!("connection {id} does not exist")))
}

/// `POST /v1/{project_id}/connections` → the connection.
pub(crate) async fn create(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let (name, detail) = parse(&json_body(&body)?)?;
    let connection = StoredConnection {
        id: uuid::Uuid::new_v4().to_string(),
        project_id,
        name,
        detail,
    };
    let inserted = streams.store.insert_connection(&connection, BOUND)?;
    refusal(inserted, "connection", &connection.name)?;
    Ok(Json(info(&connection)).into_response())
}

/// `GET /v1/{project_id}/connections?offset=&limit=` → `{"total", "size", "items"}`.
pub(crate) async fn list(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult {
    let (offset, limit) = page.bounds()?;
    let (page, total) = streams.store.connections(&project_id, offset, limit)?;
    let items: Vec<Value> = page.iter().map(info).collect();
    Ok(Json(json!({ "total": total, "size": items.len(), "items": items })).into_response())
}

/// `GET /v1/{project_id}/connections/{id}`
pub(crate) async fn show(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
) -> ApiResult {
    Ok(Json(info(&find(&streams, &project_id, &id)?)).into_response())
}

/// `DELETE /v1/{project_id}/connections/{id}` → 204; refused while a stream's sink or a
/// subscription's target uses it.
pub(crate) async fn delete(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
) -> ApiResult {
    find(&streams, &project_id, &id)?;
    if let Some(user) = streams.store.stream_using_connection(&project_id, &id)? {
        return Err(ApiError::BadRequest(format!(
            "connection {id} is used by event stream {user}"
        )));
    }
    if let Some(user) = crate::subscriptions::using_connection(&streams, &project_id, &id)? {
        return Err(ApiError::BadRequest(format!(
            "connection {id} is used by subscription {user}"
        )));
    }
    streams.store.delete_connection(&project_id, &id)?;
    streams.forget_producer(&project_id, &id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
