//! `GET /v2/{project_id}/fgs/functions/{function_urn}/logs`: a function's invocation logs
//! (fgs's own operation: FunctionGraph sends logs to LTS, which the SDK does not query).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{query_number, ApiError, App, FunctionPath};
use crate::invocation_logs::{LogQuery, LogRecord};
use crate::urn::{function_urn, Qualifier};

type ApiResult = Result<Response, ApiError>;

/// Logs per answer by default, and at most.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Longest `wait` a follower may ask for, seconds.
const MAX_WAIT: i64 = 30;

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    since: Option<String>,
    until: Option<String>,
    request_id: Option<String>,
    marker: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
}

/// The function's logs, oldest first: the newest `limit` (default 100, at most 1000) that
/// match `since`/`until` (ms since the epoch, the invocation's start) and `request_id`; with
/// `marker` (an answer's `next_marker`) the ones after it instead; with `wait` (seconds, at
/// most 30) an answer that would be empty waits for a new log first (`fgs logs --follow`).
/// An unqualified URN answers every version's logs, a qualified one that version's (an
/// alias: the version it points to).
pub async fn list(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    Query(q): Query<LogsQuery>,
) -> ApiResult {
    let entry = app.registry.get(&path.project_id, &path.func)?;
    let number =
        |name, value: &Option<String>, range: std::ops::RangeInclusive<i64>| match query_number(
            name, value,
        )? {
            Some(n) if !range.contains(&n) => Err(ApiError::invalid_query(format!(
                "{name}={n} must be within {}..={}",
                range.start(),
                range.end()
            ))),
            n => Ok(n),
        };
    let limit = number("limit", &q.limit, 1..=MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let wait = number("wait", &q.wait, 0..=MAX_WAIT)?.unwrap_or(0);
    let query = LogQuery {
        func_id: entry.record.func_id.clone(),
        version: (path.func.qualifier != Qualifier::None).then(|| entry.record.version.clone()),
        request_id: q.request_id.filter(|id| !id.is_empty()),
        since_ms: number("since", &q.since, 0..=i64::MAX)?,
        until_ms: number("until", &q.until, 0..=i64::MAX)?,
        after: number("marker", &q.marker, 0..=i64::MAX)?,
        limit: limit as usize,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait as u64);
    let (logs, seen) = loop {
        // Read before querying: whatever is committed after it is in the next answer.
        let seen = app.logs.latest();
        let logs = app.logs.query(query.clone()).await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !logs.is_empty() || left.is_zero() || !app.logs.wait_newer(seen, left).await {
            break (logs, seen);
        }
    };
    let next_marker = logs
        .last()
        .map_or(query.after.unwrap_or(0).max(seen), |r| r.seq);
    let record = &entry.record;
    let urn = |version: &str| {
        function_urn(
            app.registry.region(),
            &record.project_id,
            &record.package,
            &record.func_name,
            Some(version),
        )
    };
    Ok(Json(json!({
        "logs": logs.iter().map(|r| view(&urn(&r.version), r)).collect::<Vec<_>>(),
        "next_marker": next_marker,
        "count": logs.len(),
    }))
    .into_response())
}

fn view(urn: &str, r: &LogRecord) -> serde_json::Value {
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    json!({
        "seq": r.seq,
        "request_id": r.request_id,
        "function_urn": urn,
        "version": r.version,
        "invoke_type": r.invoke_type,
        "status": if r.error_code == 0 { "success" } else { "failed" },
        "error_code": r.error_code,
        "duration": r.duration_ms,
        "memory_used": r.memory_used_mb,
        "cold_start": r.cold_start,
        "start_time": time(r.started_ms),
        "end_time": time(r.finished_ms),
        "log": r.log(),
    })
}
