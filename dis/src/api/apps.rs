//! `/v2/{project_id}/apps[…]` and `/v2/{project_id}/checkpoints`.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, int_param, json, page, query, status, ApiResult, Project};
use crate::apps::{AppView, CheckpointQuery, NewCheckpoint, LAST_READ};
use crate::streams::{partition_name, Dis};

#[derive(Debug, Deserialize)]
pub struct NewApp {
    app_name: Option<String>,
}

/// `POST /v2/{project_id}/apps` `{"app_name"}` → 201.
pub async fn create(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let new: NewApp = json(body)?;
    blocking(&dis, move |dis| dis.create_app(&project, new.app_name)).await?;
    status(StatusCode::CREATED)
}

fn app_json(v: &AppView) -> Value {
    json!({
        "app_name": v.app.name,
        "app_id": v.app.id,
        "create_time": v.app.create_time,
        "commit_checkpoint_stream_names": v.streams,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    start_app_name: Option<String>,
    stream_name: Option<String>,
}

/// `GET /v2/{project_id}/apps?limit=&start_app_name=&stream_name=`: by name, after
/// `start_app_name`, at most `limit` (1…100, default 10).
pub async fn list(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let q: ListQuery = query(q)?;
    let limit = int_param("limit", q.limit.as_deref(), 1..=100, 10)? as usize;
    let stream = q.stream_name.filter(|s| !s.is_empty());
    let apps = blocking(&dis, move |dis| dis.apps(&project, stream.as_deref())).await?;
    let after = q.start_app_name.unwrap_or_default();
    let (page, has_more) = page(&apps, &after, limit, |a| &a.app.name);
    Ok(Json(json!({
        "has_more_app": has_more,
        "apps": page.iter().map(|a| app_json(a)).collect::<Vec<_>>(),
        "total_number": apps.len(),
    }))
    .into_response())
}

/// `GET /v2/{project_id}/apps/{app_name}`.
pub async fn show(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult {
    let view = blocking(&dis, move |dis| dis.app(&project, &name)).await?;
    Ok(Json(app_json(&view)).into_response())
}

/// `DELETE /v2/{project_id}/apps/{app_name}` → 204.
pub async fn delete(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult {
    blocking(&dis, move |dis| dis.delete_app(&project, &name)).await?;
    status(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
pub struct StateQuery {
    limit: Option<String>,
    start_partition_id: Option<String>,
    checkpoint_type: Option<String>,
}

/// `GET /v2/{project_id}/apps/{app_name}/streams/{stream_name}?limit=&start_partition_id=`.
pub async fn consumer_state(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, app, stream)): Path<(String, String, String)>,
    q: Result<Query<StateQuery>, QueryRejection>,
) -> ApiResult {
    let q: StateQuery = query(q)?;
    let limit = int_param("limit", q.limit.as_deref(), 1..=1000, 100)? as usize;
    if let Some(t) = q
        .checkpoint_type
        .as_deref()
        .filter(|t| !t.is_empty() && *t != LAST_READ)
    {
        return Err(crate::error::DisError::Invalid(format!(
            "checkpoint_type {t:?} is not LAST_READ"
        ))
        .into());
    }
    let (app_name, stream_name) = (app.clone(), stream.clone());
    let (states, has_more) = blocking(&dis, move |dis| {
        dis.consumer_state(
            &project,
            &app,
            &stream,
            q.start_partition_id.as_deref(),
            limit,
        )
    })
    .await?;
    Ok(Json(json!({
        "has_more": has_more,
        "stream_name": stream_name,
        "app_name": app_name,
        "partition_consuming_states": states.iter().map(|s| json!({
            "partition_id": partition_name(s.partition),
            "sequence_number": s.sequence_number,
            "latest_offset": s.latest,
            "earliest_offset": s.earliest,
            "checkpoint_type": LAST_READ,
            "status": s.status,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `POST /v2/{project_id}/checkpoints` → 201.
pub async fn commit_checkpoint(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let checkpoint: NewCheckpoint = json(body)?;
    blocking(&dis, move |dis| dis.commit_checkpoint(&project, checkpoint)).await?;
    status(StatusCode::CREATED)
}

/// `GET /v2/{project_id}/checkpoints?stream_name=&partition_id=&app_name=&checkpoint_type=`.
pub async fn show_checkpoint(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    q: Result<Query<CheckpointQuery>, QueryRejection>,
) -> ApiResult {
    let q: CheckpointQuery = query(q)?;
    let c = blocking(&dis, move |dis| dis.checkpoint(&project, q)).await?;
    Ok(Json(json!({"sequence_number": c.sequence_number, "metadata": c.metadata})).into_response())
}

/// `DELETE /v2/{project_id}/checkpoints?stream_name=&app_name=&checkpoint_type=&partition_id=`
/// → 204.
pub async fn delete_checkpoint(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    q: Result<Query<CheckpointQuery>, QueryRejection>,
) -> ApiResult {
    let q: CheckpointQuery = query(q)?;
    blocking(&dis, move |dis| dis.delete_checkpoint(&project, q)).await?;
    status(StatusCode::NO_CONTENT)
}
