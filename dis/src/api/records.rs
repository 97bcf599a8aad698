//! `/v2/{project_id}/records` and `/v2/{project_id}/cursors`.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, code_of, json, opt_int, query, ApiResult, Project};
use crate::records::{CursorQuery, PutRecords};
use crate::streams::{partition_name, Dis};

/// `POST /v2/{project_id}/records` → `{failed_record_count, records[]}`, each record its
/// partition and sequence number or its error.
pub async fn send(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let put: PutRecords = json(body)?;
    let placed = blocking(&dis, move |dis| dis.send_records(&project, put)).await?;
    let failed = placed.iter().filter(|p| p.is_err()).count();
    let records: Vec<Value> = placed
        .iter()
        .map(|p| match p {
            Ok((partition, sequence)) => json!({
                "partition_id": partition_name(*partition),
                "sequence_number": sequence.to_string(),
            }),
            Err(e) => {
                let (_, code, message) = code_of(e);
                json!({"error_code": code, "error_message": message})
            }
        })
        .collect();
    Ok(Json(json!({"failed_record_count": failed, "records": records})).into_response())
}

/// `GET /v2/{project_id}/cursors?stream-name=&partition-id=&cursor-type=&…` →
/// `{"partition_cursor"}`.
pub async fn cursor(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    q: Result<Query<CursorQuery>, QueryRejection>,
) -> ApiResult {
    let q: CursorQuery = query(q)?;
    let cursor = blocking(&dis, move |dis| dis.cursor(&project, q)).await?;
    Ok(Json(json!({ "partition_cursor": cursor })).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct ConsumeQuery {
    #[serde(rename = "partition-cursor")]
    cursor: Option<String>,
    max_fetch_bytes: Option<String>,
    limit: Option<String>,
}

/// `GET /v2/{project_id}/records?partition-cursor=&max_fetch_bytes=&limit=`.
pub async fn consume(
    State(dis): State<Arc<Dis>>,
    Project(project): Project,
    q: Result<Query<ConsumeQuery>, QueryRejection>,
) -> ApiResult {
    let q: ConsumeQuery = query(q)?;
    let max_bytes = opt_int("max_fetch_bytes", q.max_fetch_bytes.as_deref())?;
    let limit = opt_int("limit", q.limit.as_deref())?;
    let fetched = blocking(&dis, move |dis| {
        dis.consume(&project, q.cursor.as_deref(), max_bytes, limit)
    })
    .await?;
    let records: Vec<Value> = fetched
        .records
        .iter()
        .map(|r| {
            let mut v = json!({
                "sequence_number": r.sequence.to_string(),
                "data": STANDARD.encode(&r.data),
                "timestamp": r.timestamp,
                "timestamp_type": "CreateTime",
            });
            if let Some(key) = &r.key {
                v["partition_key"] = json!(key);
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "records": records,
        "next_partition_cursor": fetched.next_cursor,
        "millis_behind_latest": fetched.millis_behind_latest,
    }))
    .into_response())
}
