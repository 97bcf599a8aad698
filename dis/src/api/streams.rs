//! `/v2/{project_id}/streams[/{stream_name}]`.

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
use crate::catalog::{PartitionStatus, StreamRecord};
use crate::monitoring::{MetricsQuery, Series};
use crate::partition_key::hash_range;
use crate::policies::PolicyBody;
use crate::streams::{parse_partition, partition_name, Dis, NewStream};

/// `POST /v2/{project_id}/streams` → 201.
pub async fn create(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let new: NewStream = json(body)?;
    blocking(&dis, move |dis| dis.create_stream(&project, new)).await?;
    status(StatusCode::CREATED)
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    start_stream_name: Option<String>,
}

/// `GET /v2/{project_id}/streams?limit=&start_stream_name=`: by name, after
/// `start_stream_name`, at most `limit` (1…100, default 10).
pub async fn list(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let q: ListQuery = query(q)?;
    let limit = int_param("limit", q.limit.as_deref(), 1..=100, 10)? as usize;
    let all: Vec<StreamRecord> = dis
        .project_streams(&project)
        .iter()
        .map(|s| s.snapshot())
        .collect();
    let after = q.start_stream_name.unwrap_or_default();
    let (page, has_more) = page(&all, &after, limit, |s| &s.name);
    Ok(Json(json!({
        "total_number": all.len(),
        "stream_names": page.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "has_more_streams": has_more,
        "stream_info_list": page.iter().map(|s| info(s)).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// What list and show both say of a stream (fields without a value left out).
fn info(s: &StreamRecord) -> Value {
    without_nulls(json!({
        "stream_name": s.name,
        "stream_id": s.id,
        "create_time": s.create_time,
        "last_modified_time": s.last_modified_time,
        "retention_period": s.retention_hours,
        "status": "RUNNING",
        "stream_type": s.stream_type,
        "data_type": s.data_type,
        "partition_count": s.writable().len(),
        "auto_scale_enabled": s.auto_scale_enabled,
        "auto_scale_min_partition_count": s.auto_scale_min_partition_count,
        "auto_scale_max_partition_count": s.auto_scale_max_partition_count,
        "tags": s.tags,
        "sys_tags": s.sys_tags,
    }))
}

fn without_nulls(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    v
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(rename = "start_partitionId")]
    start_partition_id: Option<String>,
    limit_partitions: Option<String>,
}

/// `GET /v2/{project_id}/streams/{stream_name}?start_partitionId=&limit_partitions=`.
pub async fn show(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
    q: Result<Query<ShowQuery>, QueryRejection>,
) -> ApiResult {
    let q: ShowQuery = query(q)?;
    let limit = int_param(
        "limit_partitions",
        q.limit_partitions.as_deref(),
        1..=1000,
        100,
    )?;
    let after = match q.start_partition_id.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(parse_partition(p)?),
        None => None,
    };
    let stream = dis.stream(&project, &name)?;
    let s = stream.snapshot();
    let writable = s.writable();
    let mut partitions = Vec::new();
    let mut has_more = false;
    for (i, p) in s.partitions.iter().enumerate() {
        let i = i as u32;
        if after.is_some_and(|a| i <= a) {
            continue;
        }
        if partitions.len() as i64 == limit {
            has_more = true;
            break;
        }
        let (earliest, end) = stream.log(i).map_or((0, 0), |l| l.bounds());
        let mut entry = json!({
            "partition_id": partition_name(i),
            "status": p.status.name(),
            "sequence_number_range": format!("[{earliest} : {end}]"),
        });
        if let Some(at) = writable.iter().position(|&w| w == i) {
            entry["hash_range"] = json!(hash_range(at as u32, writable.len() as u32));
        }
        partitions.push(entry);
    }
    let mut body = info(&s);
    let extra = json!({
        "partitions": partitions,
        "has_more_partitions": has_more,
        "data_schema": s.data_schema,
        "compression_format": s.compression_format,
        "csv_properties": s.csv_properties,
        "writable_partition_count": writable.len(),
        "readable_partition_count": s.partitions.iter().filter(|p| p.status != PartitionStatus::Expired).count(),
        "update_partition_counts": s.partition_changes.iter().map(|c| json!({
            "create_timestamp": c.create_timestamp,
            "src_partition_count": c.src_partition_count,
            "target_partition_count": c.target_partition_count,
            "result_code": 200,
            "auto_scale": false,
        })).collect::<Vec<_>>(),
    });
    body.as_object_mut()
        .expect("an object")
        .extend(without_nulls(extra).as_object().expect("an object").clone());
    Ok(Json(body).into_response())
}

/// `DELETE /v2/{project_id}/streams/{stream_name}` → 204.
pub async fn delete(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult {
    blocking(&dis, move |dis| dis.delete_stream(&project, &name)).await?;
    status(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct PartitionCount {
    target_partition_count: Option<i64>,
}

/// `PUT /v2/{project_id}/streams/{stream_name}` `{"target_partition_count"}` → 200.
pub async fn update_partition_count(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let change: PartitionCount = json(body)?;
    blocking(&dis, move |dis| {
        dis.update_partition_count(&project, &name, change.target_partition_count)
    })
    .await?;
    status(StatusCode::OK)
}

fn series_json(s: &Series) -> Value {
    json!({
        "label": s.label,
        "dataPoints": s.points.iter().map(|(t, v)| json!({"timestamp": t, "value": v})).collect::<Vec<_>>(),
    })
}

/// The answer of both metrics queries: the first label as `metrics`, all as `metrics_list`.
fn metrics_json(series: &[Series]) -> ApiResult {
    Ok(Json(json!({
        "metrics": series.first().map(series_json),
        "metrics_list": series.iter().map(series_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `GET /v2/{project_id}/streams/{stream_name}/metrics?label=|label_list=&start_time=&end_time=`.
pub async fn stream_metrics(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
    q: Result<Query<MetricsQuery>, QueryRejection>,
) -> ApiResult {
    let q: MetricsQuery = query(q)?;
    metrics_json(&dis.stream_metrics(&project, &name, &q)?)
}

/// `GET /v2/{project_id}/streams/{stream_name}/partitions/{partition_id}/metrics?…`.
pub async fn partition_metrics(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name, partition)): Path<(String, String, String)>,
    q: Result<Query<MetricsQuery>, QueryRejection>,
) -> ApiResult {
    let q: MetricsQuery = query(q)?;
    metrics_json(&dis.partition_metrics(&project, &name, &partition, &q)?)
}

/// `GET /v2/{project_id}/streams/{stream_name}/policies` → `{stream_id, rules[]}`.
pub async fn list_policies(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult {
    let (id, rules) = blocking(&dis, move |dis| dis.policies(&project, &name)).await?;
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "principal": r.principal_name.split('.').next(),
                "principal_name": r.principal_name,
                "action_type": r.action_type,
                "effect": r.effect,
            })
        })
        .collect();
    Ok(Json(json!({"stream_id": id, "rules": rules})).into_response())
}

/// `POST /v2/{project_id}/streams/{stream_name}/policies` → 201.
pub async fn add_policy(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body: PolicyBody = json(body)?;
    blocking(&dis, move |dis| dis.add_policy(&project, &name, body)).await?;
    status(StatusCode::CREATED)
}

/// `DELETE /v2/{project_id}/streams/{stream_name}/policies` (body `{stream_id,
/// principal_name, action_type?}`) → 204.
pub async fn delete_policy(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    Path((_, name)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body: PolicyBody = json(body)?;
    blocking(&dis, move |dis| dis.delete_policy(&project, &name, body)).await?;
    status(StatusCode::NO_CONTENT)
}
