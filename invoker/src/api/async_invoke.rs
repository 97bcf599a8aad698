//! Asynchronous invocation, its records and policy, concurrency settings.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::invoke::{check_instance_memory, discard, read_event, set_version_header};
use crate::api::{paging, query_number, ApiError, App, FunctionPath, JsonBody};
use crate::asynchronous::journal::{self, RecordQuery};
use crate::asynchronous::{format_ms, now_ms};
use crate::invocation::{self, InvokeError};
use crate::registry::{now, AsyncConfig, Destination, Entry};

type ApiResult = Result<Response, ApiError>;

/// `POST /v2/{project_id}/fgs/functions/{function_urn}/invocations-async`
///
/// The body is the event (at most 256 KB). The request is journaled durably before the
/// 202 `{"request_id"}` answer.
pub async fn invoke_async(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    headers: HeaderMap,
    mut body: Body,
) -> ApiResult {
    // Through an alias the version is chosen when the request is accepted.
    let entry = invocation::route(&app, &path.project_id, &path.func, |name| {
        headers.get(name).and_then(|v| v.to_str().ok())
    })?;
    let project_id = path.project_id;
    if entry.record.max_instance_num == 0 {
        return Err(ApiError::function_disabled());
    }
    if let Err(e) = check_instance_memory(&headers, entry.record.memory_size) {
        discard(&mut body).await;
        return Err(e);
    }
    // A full queue refuses before the event is buffered (and again on submit).
    if let Err(full) = app.queue.has_room(&project_id, entry.id()) {
        discard(&mut body).await;
        return Err(InvokeError::QueueFull(full).into());
    }
    let event = read_event(body, &headers, app.payload.async_request).await?;
    let request_id = invocation::submit(&app, &entry, event.to_vec(), 0).await?;
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({ "request_id": request_id })),
    )
        .into_response();
    set_version_header(&mut response, &entry.record.version);
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct DestinationBody {
    destination: Option<String>,
    param: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DestinationConfigBody {
    on_success: Option<DestinationBody>,
    on_failure: Option<DestinationBody>,
}

/// `UpdateFunctionAsyncInvokeConfigRequestBody`.
#[derive(Debug, Deserialize)]
pub struct AsyncConfigBody {
    max_async_event_age_in_seconds: Option<i64>,
    max_async_retry_attempts: Option<i64>,
    destination_config: Option<DestinationConfigBody>,
    enable_async_status_log: Option<bool>,
}

/// A destination of type `FunctionGraph`; other types are refused until fgs can deliver to
/// them.
fn destination(
    body: Option<DestinationBody>,
    which: &str,
) -> Result<Option<Destination>, ApiError> {
    let Some(body) = body else { return Ok(None) };
    let kind = body.destination.unwrap_or_default();
    if kind.is_empty() {
        return Ok(None);
    }
    if kind != "FunctionGraph" {
        return Err(ApiError::invalid_parameter(format!(
            "{which}: destination {kind:?} is not supported by fgs yet; use FunctionGraph"
        )));
    }
    let param = body.param.unwrap_or_default();
    let func_urn = serde_json::from_str::<Value>(&param)
        .ok()
        .and_then(|v| {
            v.get("func_urn")
                .and_then(|u| u.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "{which}: param must be a JSON string with func_urn"
            ))
        })?;
    Ok(Some(Destination {
        destination: kind,
        param,
        func_urn,
    }))
}

fn config_json(entry: &Entry, config: &AsyncConfig) -> Value {
    let dest = |d: &Option<Destination>| {
        d.as_ref()
            .map(|d| json!({"destination": d.destination, "param": d.param}))
    };
    json!({
        "func_urn": entry.spec.urn,
        "max_async_event_age_in_seconds": config.max_async_event_age_in_seconds,
        "max_async_retry_attempts": config.max_async_retry_attempts,
        "destination_config": { "on_success": dest(&config.on_success), "on_failure": dest(&config.on_failure) },
        "enable_async_status_log": config.enable_async_status_log,
        "created_time": config.created_time,
        "last_modified": config.last_modified,
    })
}

/// `PUT /v2/{project_id}/fgs/functions/{function_urn}/async-invoke-config`
pub async fn update_config(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<AsyncConfigBody>,
) -> ApiResult {
    let FunctionPath {
        project_id, func, ..
    } = path;
    app.registry.get(&project_id, &func)?;
    let age = app
        .async_limits
        .event_age(body.max_async_event_age_in_seconds)?;
    let retries = app
        .async_limits
        .retry_attempts(body.max_async_retry_attempts)?;
    let (on_success, on_failure) = match body.destination_config {
        Some(d) => (
            destination(d.on_success, "on_success")?,
            destination(d.on_failure, "on_failure")?,
        ),
        None => (None, None),
    };
    let entry = app
        .registry
        .update_settings(&project_id, &func, |record| {
            let timestamp = now();
            let created = record
                .async_config
                .as_ref()
                .map(|c| c.created_time.clone())
                .unwrap_or(timestamp.clone());
            record.async_config = Some(AsyncConfig {
                max_async_event_age_in_seconds: age,
                max_async_retry_attempts: retries,
                on_success,
                on_failure,
                enable_async_status_log: body.enable_async_status_log.unwrap_or(false),
                created_time: created,
                last_modified: timestamp,
            });
        })
        .await?;
    let config = entry.record.async_config.as_ref().expect("just set");
    Ok(Json(config_json(&entry, config)).into_response())
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/async-invoke-config`
pub async fn show_config(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let FunctionPath {
        project_id, func, ..
    } = path;
    let entry = app.registry.get(&project_id, &func)?;
    let config = entry.record.async_config.as_ref().ok_or_else(|| {
        ApiError::not_found(format!(
            "(no async invoke config for {})",
            entry.record.func_name
        ))
    })?;
    Ok(Json(config_json(&entry, config)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    marker: Option<String>,
    limit: Option<String>,
    /// list_function_reserved_instances: only this function's versions.
    urn: Option<String>,
}

/// One page of `items` with `page_info` and `count`, as the newer list operations answer.
fn paged(key: &str, items: Vec<Value>, q: &PageQuery) -> ApiResult {
    let (marker, limit) = paging(&q.marker, &q.limit)?;
    let count = items.len();
    let start = marker.min(count);
    let page: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let next = start + page.len();
    Ok(Json(json!({
        key: page,
        "count": count,
        "page_info": {
            "next_marker": next,
            "previous_marker": start.saturating_sub(limit),
            "current_count": next - start,
        },
    }))
    .into_response())
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/async-invoke-configs`: the async policy
/// of every version of the function that has one.
pub async fn list_configs(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let function = app.registry.function(&path.project_id, &path.func)?;
    let items = function
        .entries()
        .filter_map(|e| e.record.async_config.as_ref().map(|c| config_json(e, c)))
        .collect();
    paged("async_invoke_configs", items, &q)
}

/// `GET /v2/{project_id}/fgs/functions/reservedinstances?urn=`: every version of the project
/// (or of the function `urn`) with reserved instances, and how many.
pub async fn list_reserved(
    State(app): State<Arc<App>>,
    Path(project_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let functions = match q.urn.as_deref().filter(|u| !u.is_empty()) {
        Some(urn) => {
            let func = crate::urn::FunctionRef::parse(urn, &project_id)?;
            vec![app.registry.function(&project_id, &func)?]
        }
        None => app.registry.list(&project_id),
    };
    let items = functions
        .iter()
        .flat_map(|f| f.entries())
        .filter(|e| e.record.reserved_instances > 0)
        .map(|e| json!({ "func_urn": e.spec.urn, "count": e.record.reserved_instances }))
        .collect();
    paged("reservedinstances", items, &q)
}

/// `DELETE /v2/{project_id}/fgs/functions/{function_urn}/async-invoke-config`
pub async fn delete_config(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let FunctionPath {
        project_id, func, ..
    } = path;
    app.registry
        .update_settings(&project_id, &func, |record| {
            record.async_config = None;
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub struct RecordsQuery {
    request_id: Option<String>,
    requests: Option<String>,
    marker: Option<String>,
    limit: Option<String>,
    status: Option<String>,
    query_begin_time: Option<String>,
    query_end_time: Option<String>,
}

const STATUSES: [&str; 5] = [
    journal::WAIT,
    journal::RUNNING,
    journal::SUCCESS,
    journal::FAIL,
    journal::DISCARD,
];

fn parse_time(name: &str, value: &Option<String>, default_ms: i64) -> Result<i64, ApiError> {
    match value.as_deref().filter(|v| !v.is_empty()) {
        None => Ok(default_ms),
        Some(v) => {
            chrono::NaiveDateTime::parse_from_str(v.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S")
                .map(|t| t.and_utc().timestamp_millis())
                .map_err(|_| {
                    ApiError::invalid_query(format!("{name}={v:?} is not YYYY-MM-DDTHH:mm:ss"))
                })
        }
    }
}

async fn records(app: &App, path: FunctionPath, q: RecordsQuery, active: bool) -> ApiResult {
    let entry = app.registry.get(&path.project_id, &path.func)?;
    let offset = query_number("marker", &q.marker)?.unwrap_or(0);
    let limit = query_number("limit", &q.limit)?.unwrap_or(100);
    if offset < 0 {
        return Err(ApiError::invalid_query(format!(
            "marker={offset} must not be negative"
        )));
    }
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_query(format!(
            "limit={limit} must be 1…500"
        )));
    }
    let statuses: Vec<String> = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) if STATUSES.contains(&s) => vec![s.to_string()],
        Some(s) => {
            return Err(ApiError::invalid_query(format!(
                "status={s:?} is not one of {STATUSES:?}"
            )))
        }
        // Without `status` both lists hold every status (the SDK: "如果不指定，则查询所有状态
        // 的调用记录"), the active one included.
        None => vec![],
    };
    let request_ids: Vec<String> = if active {
        let ids: Vec<String> = q
            .requests
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if ids.len() > 10 {
            return Err(ApiError::invalid_query("requests: at most 10 request ids"));
        }
        ids
    } else {
        q.request_id.into_iter().filter(|s| !s.is_empty()).collect()
    };
    let now = now_ms();
    let query = RecordQuery {
        func_id: entry.id().to_string(),
        request_ids,
        statuses,
        begin_ms: parse_time("query_begin_time", &q.query_begin_time, now - 3_600_000)?,
        end_ms: parse_time("query_end_time", &q.query_end_time, now)?,
        offset: offset as usize,
        limit: limit as usize,
    };
    let (rows, count) = app.journal.records(query).await?;
    let next_marker = offset as usize + rows.len();
    let invocations: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "request_id": r.request_id,
                "status": r.status,
                "error_code": r.error_code,
                "error_message": r.error_message,
                "start_time": format_ms(r.accepted_ms),
                "end_time": r.end_ms.map(format_ms).unwrap_or_default(),
            })
        })
        .collect();
    Ok(
        Json(json!({ "invocations": invocations, "count": count, "next_marker": next_marker }))
            .into_response(),
    )
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/async-invocations`
pub async fn list_records(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    Query(q): Query<RecordsQuery>,
) -> ApiResult {
    records(&app, path, q, false).await
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/active-async-invocations`: by default
/// the requests still WAIT or RUNNING; `requests` selects up to 10 request ids.
pub async fn list_active(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    Query(q): Query<RecordsQuery>,
) -> ApiResult {
    records(&app, path, q, true).await
}

/// Cancels a request of `func_id` if this host holds it: a WAIT one leaves the queue, a
/// RUNNING one is stopped; either becomes FAIL 4208. False when this host does not hold it.
pub fn cancel_here(app: &App, func_id: &str, request_id: &str) -> bool {
    if let Some(job) = app.queue.cancel(func_id, request_id) {
        app.journal.set_status(journal::StatusChange {
            request_id: job.request_id,
            status: journal::FAIL,
            attempts: job.attempts,
            error_code: 4208,
            error_message: "function invocation canceled".into(),
            end_ms: Some(now_ms()),
        });
        return true;
    }
    app.queue.cancel_running(func_id, request_id)
}

#[derive(Debug, Deserialize)]
pub struct CancelBody {
    request_id: Option<String>,
}

/// `POST /v2/{project_id}/fgs/functions/{function_urn}/cancel`: a WAIT request is removed
/// from the queue, a RUNNING one is stopped (its instance is killed, as with `type: force`);
/// either becomes FAIL with error 4208 "function invocation canceled". Finished or unknown
/// requests are refused with 400 FSS.0400.
pub async fn cancel(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<CancelBody>,
) -> ApiResult {
    let FunctionPath {
        project_id, func, ..
    } = path;
    let entry = app.registry.get(&project_id, &func)?;
    let request_id = body.request_id.unwrap_or_default();
    if cancel_here(&app, entry.id(), &request_id) {
        return Ok(Json(Value::Null).into_response());
    }
    let status = app
        .journal
        .status_of(entry.id().to_string(), request_id.clone())
        .await?;
    match status.as_deref() {
        // Another host of a shared database owns it: that host cancels it.
        Some(journal::WAIT | journal::RUNNING) if app.journal.is_shared() => {
            app.journal
                .ask_owner_to_cancel(entry.id(), &request_id)
                .await?;
            Ok(Json(Value::Null).into_response())
        }
        _ => Err(ApiError::invalid_request_id(match &status {
            Some(s) => {
                format!("({request_id} is {s}; only WAIT and RUNNING requests can be canceled)")
            }
            None => format!("({request_id:?} is not a request of this function)"),
        })),
    }
}

#[derive(Debug, Deserialize)]
pub struct MaxInstanceBody {
    max_instance_num: Option<i64>,
}

/// `PUT /v2/{project_id}/fgs/functions/{function_urn}/config-max-instance`
pub async fn update_max_instances(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<MaxInstanceBody>,
) -> ApiResult {
    let FunctionPath {
        project_id, func, ..
    } = path;
    let n = body.max_instance_num.ok_or_else(|| {
        fgs_limits::LimitError::Concurrency("max_instance_num is required".into())
    })?;
    let n = fgs_limits::validate_max_instances(n)?;
    let entry = app
        .registry
        .update_settings(&project_id, &func, |record| {
            record.max_instance_num = n;
        })
        .await?;
    Ok(Json(crate::api::model::function_json(
        &entry,
        app.registry.region(),
    ))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReservedBody {
    count: Option<i64>,
    idle_mode: Option<bool>,
}

/// `PUT /v2/{project_id}/fgs/functions/{function_urn}/reservedinstances`: keeps `count`
/// instances warm. The reserved instances of a project together may not exceed its
/// concurrency limit (400 FSS.1076).
pub async fn update_reserved(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<ReservedBody>,
) -> ApiResult {
    let FunctionPath {
        project_id, func, ..
    } = path;
    let current = app.registry.get(&project_id, &func)?;
    let count = body
        .count
        .ok_or_else(|| ApiError::invalid_parameter("count is required"))?;
    if count < 0 {
        return Err(ApiError::invalid_parameter(format!(
            "count {count} must not be negative"
        )));
    }
    let others: u64 = app
        .registry
        .list(&project_id)
        .iter()
        .flat_map(|f| f.entries())
        .filter(|e| e.id() != current.id())
        .map(|e| u64::from(e.record.reserved_instances))
        .sum();
    let limit = app.admission.tenant_limit() as u64;
    if others + count as u64 > limit {
        return Err(ApiError::reserved_over_limit(format!(
            "({count} requested, {others} reserved by other functions, {limit} allowed per project)"
        )));
    }
    let entry = app
        .registry
        .update_settings(&project_id, &func, |record| {
            record.reserved_instances = count as u32;
            record.reserved_idle_mode = body.idle_mode.unwrap_or(false);
        })
        .await?;
    app.pool.reserve(entry.spec.clone(), count as usize);
    Ok(Json(json!({
        "count": entry.record.reserved_instances,
        "idle_mode": entry.record.reserved_idle_mode,
        "tactics_config": null,
    }))
    .into_response())
}
