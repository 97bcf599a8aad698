//! The API gateway: fgs's own APIG. `fgs serve --gateway-listen` (default 127.0.0.1:8001)
//! serves the API of every ACTIVE APIG and DEDICATEDGATEWAY trigger; a request to one becomes
//! the APIG event of its function, run through the one invocation path, and the function's
//! `{statusCode, headers, body, isBase64Encoded}` becomes the answer.
//!
//! APIs are public (`auth` NONE: the only mode served), so the listener takes no credentials;
//! what bounds it is admission (a sync call beyond the concurrency limits is 429 FSS.0429,
//! before its body is read) and the 6 MB request limit (413 FSS.1201).

mod apig_event;
mod error;
mod http_function;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use fgs_runtime::{InvokeFailure, InvokeRequest, InvokeType};

pub use error::GatewayError;
pub use routes::Routes;
use routes::{Lookup, Route};

use crate::api::invoke::{discard, read_event};
use crate::api::App;
use crate::invocation;

/// Serves the gateway on `listener` until `shutdown` completes.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new().fallback(handle).with_state(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let mut response = answer(&app, peer, request, &request_id)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("X-Request-Id", id);
    }
    response
}

/// Finds the API of a request and has its function answer it.
async fn answer(
    app: &Arc<App>,
    peer: SocketAddr,
    request: Request,
    request_id: &str,
) -> Result<Response, GatewayError> {
    let (parts, mut body) = request.into_parts();
    let (route, params) = match app
        .triggers
        .routes
        .find(parts.method.as_str(), parts.uri.path())
    {
        Lookup::Found { route, params } => (route, params),
        Lookup::NoMethod => {
            discard(&mut body).await;
            return Err(GatewayError::NoMethod);
        }
        Lookup::NotFound => {
            discard(&mut body).await;
            return Err(GatewayError::NotFound);
        }
    };
    let result = invoke(app, &route, &params, peer, parts, body, request_id).await;
    let outcome = match &result {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    app.triggers.fired(app, &route.trigger, outcome);
    result
}

/// Runs the function of `route` on the request (`parts`, `body`).
async fn invoke(
    app: &Arc<App>,
    route: &Route,
    params: &[(String, String)],
    peer: SocketAddr,
    parts: Parts,
    mut body: Body,
    request_id: &str,
) -> Result<Response, GatewayError> {
    let trigger = &route.trigger;
    let entry = invocation::route(app, &trigger.project_id, &trigger.function(), |name| {
        parts.headers.get(name).and_then(|v| v.to_str().ok())
    })?;
    if entry.spec.language == fgs_runtime::Language::Http {
        return forward(app, route, &entry, parts, body, request_id).await;
    }
    let context = apig_event::Context {
        api_id: &trigger.trigger_id,
        request_id,
        stage: &route.api.stage,
        source_ip: peer.ip(),
        path_parameters: params,
    };
    if route.api.asynchronous {
        let raw = read_event(body, &parts.headers, app.payload.sync_request).await?;
        let event = apig_event::event(&parts, &raw, &context);
        if event.len() > app.payload.async_request {
            return Err(crate::api::ApiError::event_too_large(
                Some(event.len() as u64),
                app.payload.async_request,
            )
            .into());
        }
        let id = invocation::submit(app, &entry, event, 0).await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "request_id": id })),
        )
            .into_response());
    }
    // Admitted before the body is read, as the invoke API does.
    let permit = match invocation::admit(app, &entry) {
        Ok(permit) => permit,
        Err(refused) => {
            discard(&mut body).await;
            return Err(refused.into());
        }
    };
    let raw = read_event(body, &parts.headers, app.payload.sync_request).await?;
    let request = InvokeRequest {
        request_id: request_id.to_string(),
        invoke_type: InvokeType::Sync,
        body: apig_event::event(&parts, &raw, &context).into(),
    };
    let outcome = invocation::run(
        app,
        &entry,
        permit,
        request,
        tokio::time::sleep(route.api.timeout),
    )
    .await
    .ok_or(GatewayError::Timeout)?;
    match outcome.result {
        Ok(result) => apig_event::response(&result).map_err(GatewayError::BadAnswer),
        Err(InvokeFailure::Timeout { .. }) => Err(GatewayError::Timeout),
        Err(InvokeFailure::System(why)) => Err(GatewayError::Unavailable(why)),
        Err(failure) => Err(GatewayError::Function {
            code: failure.code(),
            payload: failure.payload(),
        }),
    }
}

/// Forwards the request to the HTTP function `entry` (sync only: HTTP functions cannot be
/// invoked asynchronously). A body declared over 6 MB is refused before it is read (413
/// FSS.1201); one that is not declared is cut off at 6 MB.
async fn forward(
    app: &Arc<App>,
    route: &Route,
    entry: &crate::registry::Entry,
    parts: Parts,
    mut body: Body,
    request_id: &str,
) -> Result<Response, GatewayError> {
    if route.api.asynchronous {
        discard(&mut body).await;
        return Err(GatewayError::Unavailable(
            "HTTP functions cannot be invoked asynchronously".into(),
        ));
    }
    let max = app.payload.sync_request;
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > max as u64) {
        discard(&mut body).await;
        return Err(crate::api::ApiError::event_too_large(Some(len), max).into());
    }
    let permit = match invocation::admit(app, entry) {
        Ok(permit) => permit,
        Err(refused) => {
            discard(&mut body).await;
            return Err(refused.into());
        }
    };
    // A body that is not declared and runs past the limit is cut off, and the request
    // refused as one declared too large would have been.
    let cut_off = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cut_off.clone();
    let body = Body::new(http_body_util::BodyExt::map_err(
        http_body_util::Limited::new(body, max),
        move |e| {
            if e.is::<http_body_util::LengthLimitError>() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            e
        },
    ));
    let request = http_function::request(&parts, body, entry, request_id, app.registry.region());
    let (outcome, response) = invocation::forward(
        app,
        entry,
        permit,
        request_id,
        request,
        tokio::time::sleep(route.api.timeout),
    )
    .await
    .ok_or(GatewayError::Timeout)?;
    if cut_off.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(crate::api::ApiError::event_too_large(None, max).into());
    }
    http_function::answer(response, outcome.result.err())
}
