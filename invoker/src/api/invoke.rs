//! Synchronous invocation: `POST /v2/{project_id}/fgs/functions/{function_urn}/invocations`.
//!
//! The body is the event. `X-CFF-Request-Version: v1` answers with the JSON envelope
//! `{request_id, result, log, status}`; `v0` (the default) with the function's result as
//! is. A function that ran answers HTTP 200 whether it succeeded or not: a failure carries
//! `status` 500 (v1), the error JSON as the result, `X-Func-Err-Code` with FunctionGraph's
//! runtime error code and `X-Is-Func-Err: true`. Platform errors (unknown function, event too
//! large) answer with their HTTP status and `{"error_code", "error_msg"}`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use fgs_runtime::{InvokeFailure, InvokeOutcome, InvokeRequest, InvokeType};
use http_body_util::BodyExt;

use crate::api::{ApiError, App, FunctionPath};
use crate::invocation;

/// `log` in a v1 answer holds at most the last 4 KB of the invocation's log.
const LOG_TAIL: usize = 4 * 1024;
/// `X-Cff-Function-Log` holds the last 2000 bytes, base64.
const LOG_HEADER_TAIL: usize = 2000;
/// An oversized event is read and discarded up to this size so that the caller receives
/// the 413 answer instead of a reset connection; beyond it the connection is closed.
const MAX_DISCARD: u64 = 64 * 1024 * 1024;

pub async fn invoke(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    headers: HeaderMap,
    mut body: Body,
) -> Result<Response, ApiError> {
    let entry = invocation::route(&app, &path.project_id, &path.func, |name| {
        headers.get(name).and_then(|v| v.to_str().ok())
    })?;
    if let Err(e) = check_instance_memory(&headers, entry.record.memory_size) {
        discard(&mut body).await;
        return Err(e);
    }
    // Admitted before the body is read: a refused call never makes the host buffer its event
    // (it is read and dropped, up to a bound, so that the caller receives the answer).
    let permit = match invocation::admit(&app, &entry) {
        Ok(permit) => permit,
        Err(refused) => {
            discard(&mut body).await;
            return Err(refused.into());
        }
    };
    let event = read_event(body, &headers, app.payload.sync_request).await?;
    let request = InvokeRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        invoke_type: InvokeType::Sync,
        body: event,
    };
    let outcome = invocation::run(&app, &entry, permit, request, std::future::pending())
        .await
        .expect("never canceled");
    if let Err(InvokeFailure::System(why)) = &outcome.result {
        return Err(ApiError::internal(why));
    }
    let v1 = header_is(&headers, "x-cff-request-version", "v1");
    let tail = header_is(&headers, "x-cff-log-type", "tail");
    let mut response = respond(outcome, v1, tail);
    set_version_header(&mut response, &entry.record.version);
    Ok(response)
}

/// `X-Cff-Function-Version` names the version that ran (fgs's header: FunctionGraph's
/// answers do not say it; its log does, as fgs's `log` does).
pub(crate) fn set_version_header(response: &mut Response, version: &str) {
    if let Ok(value) = HeaderValue::from_str(version) {
        response
            .headers_mut()
            .insert("X-Cff-Function-Version", value);
    }
}

/// `X-Cff-Instance-Memory` asks for an instance of another size for one call, which needs
/// FunctionGraph's dynamic memory; fgs does not offer it, so a size other than the function's
/// own is refused rather than ignored.
pub(crate) fn check_instance_memory(headers: &HeaderMap, memory_mb: u32) -> Result<(), ApiError> {
    let Some(value) = headers.get("x-cff-instance-memory") else {
        return Ok(());
    };
    let asked = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok());
    if asked == Some(memory_mb) {
        return Ok(());
    }
    Err(fgs_limits::LimitError::Memory(format!(
        "X-Cff-Instance-Memory {:?}: dynamic memory is not supported; the function's memory_size is {memory_mb} MB",
        String::from_utf8_lossy(value.as_bytes())
    ))
    .into())
}

fn header_is(headers: &HeaderMap, name: &str, value: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
}

/// Reads the event, refusing more than `max` bytes without keeping them.
pub(crate) async fn read_event(
    body: Body,
    headers: &HeaderMap,
    max: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    if let Some(len) = declared.filter(|len| *len > max as u64) {
        if len <= MAX_DISCARD {
            discard(&mut body).await;
        }
        return Err(ApiError::event_too_large(Some(len), max));
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::invalid_parameter(format!("failed to read the request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                let seen = (buf.len() + data.len()) as u64 + discard(&mut body).await;
                return Err(ApiError::event_too_large(Some(seen), max));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Reads and drops the rest of a body, up to [`MAX_DISCARD`]; returns the bytes read.
/// Reads and drops the rest of `body` (at most `MAX_DISCARD` bytes), so that a refused caller
/// receives the answer instead of a reset connection; answers how many bytes it saw.
pub(crate) async fn discard(body: &mut Body) -> u64 {
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > MAX_DISCARD {
                break;
            }
        }
    }
    seen
}

fn last_bytes(log: &[u8], n: usize) -> &[u8] {
    &log[log.len().saturating_sub(n)..]
}

fn respond(outcome: InvokeOutcome, v1: bool, tail: bool) -> Response {
    let (payload, err_code, is_func_err) = match &outcome.result {
        Ok(result) => (result.clone(), 0, false),
        Err(failure) => (
            failure.payload(),
            failure.code(),
            failure.is_function_error(),
        ),
    };
    let status = if outcome.result.is_ok() { 200 } else { 500 };
    // Framed only when the caller asked for the tail of it.
    let full_log = if tail { outcome.log() } else { Vec::new() };
    let billing = outcome.billing_duration_ms();
    let body = if v1 {
        let log = if tail {
            String::from_utf8_lossy(last_bytes(&full_log, LOG_TAIL)).into_owned()
        } else {
            String::new()
        };
        let envelope = serde_json::json!({
            "request_id": outcome.request_id,
            "result": String::from_utf8_lossy(&payload),
            "log": log,
            "status": status,
        });
        Bytes::from(envelope.to_string())
    } else {
        payload
    };
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let mut summary = serde_json::json!({
        "duration": ms(outcome.duration),
        "billingDuration": billing,
        "memorySize": outcome.memory_size_mb,
        "memoryUsed": (outcome.memory_used_mb * 1000.0).round() / 1000.0,
    });
    if let Some(init) = outcome.init_duration {
        // fgs's field: a cold start's start-up time, ms (FunctionGraph's summary has none).
        summary["initDuration"] = serde_json::json!(ms(init));
    }
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    h.insert("Content-Type", HeaderValue::from_static("application/json"));
    h.insert("X-Cff-Request-Id", value(outcome.request_id.clone()));
    h.insert("X-CFF-Billing-Duration", value(billing.to_string()));
    h.insert("X-Cff-Invoke-Summary", value(summary.to_string()));
    h.insert("X-Func-Err-Code", value(err_code.to_string()));
    h.insert(
        "X-Is-Func-Err",
        HeaderValue::from_static(if is_func_err { "true" } else { "false" }),
    );
    h.insert(
        "X-Cff-Response-Version",
        HeaderValue::from_static(if v1 { "v1" } else { "v0" }),
    );
    if tail {
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(last_bytes(&full_log, LOG_HEADER_TAIL));
        h.insert("X-Cff-Function-Log", value(b64));
    }
    resp
}
