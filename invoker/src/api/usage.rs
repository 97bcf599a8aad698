//! Usage: a function's statistics over a period, and a project's quotas with what it uses.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::api::{ApiError, App, FunctionPath};
use crate::statistics::{Bucket, MAX_PERIOD_MINUTES};
use crate::urn::Qualifier;

type ApiResult = Result<Response, ApiError>;

/// `GET /v2/{project_id}/fgs/functions/{func_urn}/statistics/{period}`
///
/// `period` is the window in minutes ending now (1…10080; the documentation leaves it open):
/// one point per minute for an hour or less, per hour beyond, each `{timestamp, value}` with
/// the bucket's start in ms and -1 where nothing ran, as documented. An unqualified URN sums
/// every version of the function; a version's URN (an alias's: its major version) that version.
pub async fn statistics(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult {
    Ok(Json(metric_series(&app, &path, &params)?).into_response())
}

/// `GET /v2/{project_id}/fgs/functions/{func_urn}/slareports/{period}` (show_function_metrics):
/// the statistics, and `instance_num`, the instances that ran (one request per instance: the
/// most running at once).
pub async fn sla_reports(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult {
    let mut body = metric_series(&app, &path, &params)?;
    body["instance_num"] = body["concurrency_num"].clone();
    Ok(Json(body).into_response())
}

/// The metric series of the URN over `{period}` minutes.
fn metric_series(
    app: &App,
    path: &FunctionPath,
    params: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let period = params.get("period").map(String::as_str).unwrap_or_default();
    let minutes = period
        .parse::<u32>()
        .ok()
        .filter(|m| (1..=MAX_PERIOD_MINUTES).contains(m))
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "period {period:?}: minutes from 1 to {MAX_PERIOD_MINUTES}"
            ))
        })?;
    let function = app.registry.function(&path.project_id, &path.func)?;
    let entry = app.registry.get(&path.project_id, &path.func)?;
    let ids: Vec<&str> = if path.func.qualifier == Qualifier::None {
        function.entries().map(|e| e.id()).collect()
    } else {
        vec![entry.id()]
    };
    let points = app
        .statistics
        .query(&ids, crate::asynchronous::now_ms(), minutes);
    let series = |value: fn(&Bucket) -> Option<f64>| -> Vec<Value> {
        points
            .iter()
            .map(|(timestamp, bucket)| {
                let v = bucket.as_ref().and_then(value).unwrap_or(-1.0);
                json!({ "timestamp": timestamp, "value": v })
            })
            .collect()
    };
    Ok(json!({
        "count": series(|b| Some(b.count as f64)),
        "duration": series(|b| ran(b, ms(b.total_ms / b.count.max(1) as f64))),
        "fail_count": series(|b| Some((b.function_errors + b.system_errors) as f64)),
        "max_duration": series(|b| ran(b, ms(b.max_ms))),
        "min_duration": series(|b| ran(b, ms(b.min_ms))),
        "reject_count": series(|b| Some(b.rejects as f64)),
        "function_error_count": series(|b| Some(b.function_errors as f64)),
        "system_error_count": series(|b| Some(b.system_errors as f64)),
        "reserved_instance_num": series(|b| Some(f64::from(b.reserved))),
        "concurrency_num": series(|b| ran(b, f64::from(b.concurrency))),
    }))
}

/// `v` for a bucket where something ran; none (-1 on the wire) otherwise.
fn ran(b: &Bucket, v: f64) -> Option<f64> {
    (b.count > 0).then_some(v)
}

/// Milliseconds to the microsecond.
fn ms(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `GET /v2/{project_id}/fgs/quotas`
pub async fn quotas(State(app): State<Arc<App>>, Path(project_id): Path<String>) -> ApiResult {
    let functions = app.registry.list(&project_id);
    let code_mb = functions
        .iter()
        .map(|f| f.latest.record.code_size)
        .sum::<u64>()
        .div_ceil(1024 * 1024);
    let resource = |kind: &str, quota: u64, used: u64, unit: &str| json!({"type": kind, "quota": quota, "used": used, "unit": unit});
    let resources = vec![
        resource("fgs_func_num", 400, functions.len() as u64, ""),
        resource("fgs_func_code_size", 10240, code_mb, "MB"),
        resource(
            "fgs_func_qos_limit",
            app.admission.tenant_limit() as u64,
            app.admission.running(&project_id) as u64,
            "",
        ),
        // Per function: the most instances any function of the project runs now.
        resource(
            "fgs_on_demand_instance_limit",
            1000,
            functions
                .iter()
                .flat_map(|f| f.entries())
                .map(|e| app.admission.running_function(e.id()) as u64)
                .max()
                .unwrap_or(0),
            "",
        ),
        resource(
            "fgs_func_occurs",
            app.admission.tenant_limit() as u64,
            functions
                .iter()
                .flat_map(|f| f.entries())
                .map(|e| u64::from(e.record.reserved_instances))
                .sum(),
            "",
        ),
    ];
    Ok(Json(json!({ "quotas": { "resources": resources } })).into_response())
}
