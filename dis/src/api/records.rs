//! `/v2/{project_id}/records` and `/v2/{project_id}/cursors`.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, code_of, json, opt_int, query, ApiResult, Caller};
use crate::records::{CursorQuery, Fetched, PutRecords};
use crate::streams::{partition_name, Dis};

/// `POST /v2/{project_id}/records` → `{failed_record_count, records[]}`, each record its
/// partition and sequence number or its error.
pub async fn send(
    State(dis): State<Arc<Dis>>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let put: PutRecords = json(body)?;
    let placed = blocking(&dis, move |dis| dis.send_records(&caller, put)).await?;
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
    Caller(caller): Caller,
    q: Result<Query<CursorQuery>, QueryRejection>,
) -> ApiResult {
    let q: CursorQuery = query(q)?;
    let cursor = blocking(&dis, move |dis| dis.cursor(&caller, q)).await?;
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
    Caller(caller): Caller,
    q: Result<Query<ConsumeQuery>, QueryRejection>,
) -> ApiResult {
    let q: ConsumeQuery = query(q)?;
    let max_bytes = opt_int("max_fetch_bytes", q.max_fetch_bytes.as_deref())?;
    let limit = opt_int("limit", q.limit.as_deref())?;
    let fetched = blocking(&dis, move |dis| {
        dis.consume(&caller, q.cursor.as_deref(), max_bytes, limit)
    })
    .await?;
    Ok(([(CONTENT_TYPE, "application/json")], records_json(&fetched)).into_response())
}

/// The consume answer, written directly: it is most of what a reader's time goes to (a
/// tree of JSON values per record would double it).
fn records_json(fetched: &Fetched) -> String {
    let data: usize = fetched.records.iter().map(|r| r.data.len()).sum();
    let mut out = String::with_capacity(data * 4 / 3 + fetched.records.len() * 128 + 512);
    // The cursor first, so that a reader after it alone need not scan the records (it is
    // URL-safe base64: nothing in it needs escaping).
    let _ = write!(
        out,
        "{{\"next_partition_cursor\":\"{}\",\"millis_behind_latest\":{},\"records\":[",
        fetched.next_cursor, fetched.millis_behind_latest
    );
    for (i, r) in fetched.records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"sequence_number\":\"{}\",\"data\":\"", r.sequence);
        STANDARD.encode_string(&r.data, &mut out);
        let _ = write!(
            out,
            "\",\"timestamp\":{},\"timestamp_type\":\"CreateTime\"",
            r.timestamp
        );
        if let Some(key) = &r.key {
            out.push_str(",\"partition_key\":");
            out.push_str(&Value::from(key.as_str()).to_string());
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}
