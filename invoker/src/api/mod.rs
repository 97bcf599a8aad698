//! The HTTP API: FunctionGraph's REST paths, `/healthz` and `/metrics`.

pub(crate) mod async_invoke;
pub(crate) mod dependencies;
mod error;
pub(crate) mod functions;
pub(crate) mod invoke;
mod logs;
pub(crate) mod model;
mod triggers;
mod unimplemented;
mod usage;
mod versions;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use fgs_limits::{Admission, AsyncLimits, FunctionLimits, PayloadLimits};
use fgs_runtime::InstancePool;
use fgs_sandbox::Enforcement;
use serde::de::DeserializeOwned;

pub use error::ApiError;

use crate::asynchronous::{AsyncSettings, Journal, Queue};
use crate::invocation_logs::InvocationLogs;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::statistics::Statistics;
use crate::urn::FunctionRef;

/// Everything the handlers (and the async dispatcher) share.
pub struct App {
    pub registry: Registry,
    pub pool: Arc<InstancePool>,
    pub limits: FunctionLimits,
    pub payload: PayloadLimits,
    pub async_limits: AsyncLimits,
    pub admission: Admission,
    pub journal: Journal,
    pub queue: Arc<Queue>,
    pub async_settings: AsyncSettings,
    pub metrics: Metrics,
    pub statistics: Statistics,
    /// Every invocation's log, per function.
    pub logs: InvocationLogs,
    pub triggers: crate::triggers::Triggers,
    /// The DIS streams of this host (DIS triggers read them).
    pub dis: Arc<fgs_dis::Dis>,
    /// Where the gateway serves APIG triggers' APIs (`sl_domain` in their answers).
    pub gateway_domain: String,
    pub enforcement: Enforcement,
    /// `none` or `required`, as `/healthz` reports it.
    pub auth_mode: &'static str,
}

/// Largest management request: a 50 MB zip, base64-encoded, plus the JSON around it.
const MAX_MANAGEMENT_BODY: usize = 72 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    let fgs = unimplemented::routes(Router::new())
        .route("/functions", post(functions::create).get(functions::list))
        .route(
            "/functions/{function_urn}",
            axum::routing::delete(functions::delete),
        )
        .route(
            "/functions/{function_urn}/versions",
            post(versions::publish).get(versions::list),
        )
        .route(
            "/functions/{function_urn}/aliases",
            post(versions::create_alias).get(versions::list_aliases),
        )
        .route(
            "/functions/{function_urn}/aliases/{alias_name}",
            get(versions::show_alias)
                .put(versions::update_alias)
                .delete(versions::delete_alias),
        )
        .route(
            "/functions/{function_urn}/config",
            get(functions::show_config).put(functions::update_config),
        )
        .route(
            "/functions/{function_urn}/code",
            get(functions::show_code).put(functions::update_code),
        )
        .route(
            "/functions/{function_urn}/async-invoke-config",
            get(async_invoke::show_config)
                .put(async_invoke::update_config)
                .delete(async_invoke::delete_config),
        )
        .route(
            "/functions/{function_urn}/async-invoke-configs",
            get(async_invoke::list_configs),
        )
        .route(
            "/functions/reservedinstances",
            get(async_invoke::list_reserved),
        )
        .route(
            "/functions/{function_urn}/slareports/{period}",
            get(usage::sla_reports),
        )
        .route(
            "/functions/{function_urn}/async-invocations",
            get(async_invoke::list_records),
        )
        .route(
            "/functions/{function_urn}/active-async-invocations",
            get(async_invoke::list_active),
        )
        .route(
            "/functions/{function_urn}/cancel",
            post(async_invoke::cancel),
        )
        .route(
            "/functions/{function_urn}/config-max-instance",
            axum::routing::put(async_invoke::update_max_instances),
        )
        .route(
            "/functions/{function_urn}/reservedinstances",
            axum::routing::put(async_invoke::update_reserved),
        )
        .route("/functions/{function_urn}/logs", get(logs::list))
        .route("/quotas", get(usage::quotas))
        .route(
            "/triggers/{function_urn}",
            post(triggers::create)
                .get(triggers::list)
                .delete(triggers::delete_all),
        )
        .route(
            "/triggers/{function_urn}/{trigger_type_code}/{trigger_id}",
            get(triggers::show)
                .put(triggers::update)
                .delete(triggers::delete),
        )
        .route(
            "/functions/{function_urn}/statistics/{period}",
            get(usage::statistics),
        )
        .route("/dependencies", get(dependencies::list))
        .route("/dependencies/version", post(dependencies::create))
        .route(
            "/dependencies/{depend_id}/version",
            get(dependencies::list_versions),
        )
        .route(
            "/dependencies/{depend_id}/version/{version}",
            get(dependencies::show_version).delete(dependencies::delete_version),
        )
        .layer(DefaultBodyLimit::max(MAX_MANAGEMENT_BODY))
        .route(
            "/functions/{function_urn}/invocations",
            post(invoke::invoke).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/functions/{function_urn}/invocations-async",
            post(async_invoke::invoke_async).layer(DefaultBodyLimit::disable()),
        );
    Router::new()
        .nest("/v2/{project_id}/fgs", fgs)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("No such API path.") })
        .with_state(app)
}

/// `GET /healthz`: 200 once the host is ready, with the sandbox enforcement in effect.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "region": app.registry.region(),
        "auth": app.auth_mode,
        "instances": app.pool.instance_count(),
        "sandbox": {
            "mode": app.enforcement.mode,
            "enforced": app.enforcement.enforced,
            "not_enforced": app.enforcement.not_enforced,
            "fallback_reason": app.enforcement.reason,
            "cgroup_parent": app.enforcement.cgroup_parent,
        },
    }))
    .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics.render(
        app.pool.instance_count(),
        app.pool.starting(),
        app.queue.len(),
        &app.pool.prewarm_stats(),
    );
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// An optional integer query parameter; malformed values are 400 FSS.1001.
pub(crate) fn query_number(name: &str, value: &Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| ApiError::invalid_query(format!("{name}={s:?} is not a number")))
        })
        .transpose()
}

/// `marker` and `maxitems` of FunctionGraph's list operations: `marker` is the index of the
/// first item to return (as returned in `next_marker`); `maxitems` defaults to 400, and so do
/// 0 and values above 400. Negative or malformed values are 400 FSS.1001.
pub(crate) fn paging(
    marker: &Option<String>,
    maxitems: &Option<String>,
) -> Result<(usize, usize), ApiError> {
    let marker = query_number("marker", marker)?.unwrap_or(0);
    let maxitems = query_number("maxitems", maxitems)?.unwrap_or(0);
    for (name, n) in [("marker", marker), ("maxitems", maxitems)] {
        if n < 0 {
            return Err(ApiError::invalid_query(format!(
                "{name}={n} must not be negative"
            )));
        }
    }
    let maxitems = if maxitems == 0 || maxitems > 400 {
        400
    } else {
        maxitems
    };
    Ok((marker as usize, maxitems as usize))
}

/// One page of `items` from `marker`, at most `maxitems` ([`paging`]), in FunctionGraph's
/// marker-paged form: `{key: [...], "next_marker", "count"}` (`next_marker` equals `count`
/// on the last page).
pub(crate) fn marker_page<T>(
    key: &str,
    items: &[T],
    (marker, maxitems): (usize, usize),
    json: impl Fn(&T) -> serde_json::Value,
) -> Response {
    let start = marker.min(items.len());
    let page: Vec<serde_json::Value> = items[start..].iter().take(maxitems).map(json).collect();
    let next_marker = start + page.len();
    Json(serde_json::json!({ key: page, "next_marker": next_marker, "count": items.len() }))
        .into_response()
}

/// The function a request's path names: `{project_id}` and `{function_urn}` parsed (a
/// malformed or foreign URN is 400 FSS.1309), plus `{alias_name}` where the path has it.
pub struct FunctionPath {
    pub project_id: String,
    pub func: FunctionRef,
    pub alias_name: Option<String>,
    /// `{trigger_type_code}` and `{trigger_id}`, where the path has them.
    pub trigger: Option<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for FunctionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(mut params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid_parameter(e.body_text()))?;
        let project_id = params.remove("project_id").unwrap_or_default();
        let urn = params.remove("function_urn").unwrap_or_default();
        let func = FunctionRef::parse(&urn, &project_id)?;
        Ok(FunctionPath {
            project_id,
            func,
            alias_name: params.remove("alias_name"),
            trigger: params
                .remove("trigger_type_code")
                .zip(params.remove("trigger_id")),
        })
    }
}

/// A JSON request body whose errors answer in FunctionGraph's form: an unreadable or
/// malformed body is 406 FSS.0406, a body over the limit 413 FSS.0413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::body_too_large(format!("(the limit is {MAX_MANAGEMENT_BODY} bytes)"))
            } else {
                ApiError::not_acceptable(rejection.body_text())
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::not_acceptable(format!(
                "The request body is not valid JSON for this API: {e}"
            ))
        })
    }
}
