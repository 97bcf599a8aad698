//! Requests to HTTP functions (runtime `http`): forwarded as they came (method, path and
//! query, headers, the body streamed) to the instance's server on its own 127.0.0.1:8000, with
//! FunctionGraph's `X-CFF-*` headers added; its response is the answer, as it gave it.

use axum::body::Body;
use axum::http::header::{HeaderName, HeaderValue, CONNECTION, TRANSFER_ENCODING};
use axum::http::request::Parts;
use axum::response::Response;
use fgs_runtime::{HttpBody, InvokeFailure};
use http_body_util::BodyExt;

use super::GatewayError;
use crate::registry::Entry;

/// Hop-by-hop headers, which concern one connection, not the request.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The request the instance receives.
pub fn request(
    parts: &Parts,
    body: Body,
    entry: &Entry,
    request_id: &str,
    region: &str,
) -> hyper::Request<HttpBody> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut request = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query)
        .body(body.map_err(Into::into).boxed_unsync())
        .expect("a valid request");
    let headers = request.headers_mut();
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    let spec = &entry.spec;
    for (name, value) in [
        ("x-cff-request-id", request_id.to_string()),
        ("x-cff-memory", spec.memory.mb().to_string()),
        ("x-cff-timeout", spec.timeout_secs.to_string()),
        ("x-cff-func-version", spec.version.clone()),
        ("x-cff-func-name", spec.name.clone()),
        ("x-cff-project-id", spec.project_id.clone()),
        ("x-cff-package", spec.package.clone()),
        ("x-cff-region", region.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    request
}

/// The gateway's answer from the function's response, or its failure.
pub fn answer(
    response: Option<hyper::Response<bytes::Bytes>>,
    failure: Option<InvokeFailure>,
) -> Result<Response, GatewayError> {
    if let Some(failure) = failure {
        return Err(match failure {
            InvokeFailure::Timeout { .. } => GatewayError::Timeout,
            InvokeFailure::System(why) => GatewayError::Unavailable(why),
            failure => GatewayError::Function {
                code: failure.code(),
                payload: failure.payload(),
            },
        });
    }
    let response = response.ok_or_else(|| GatewayError::Unavailable("no response".into()))?;
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(CONNECTION);
    parts.headers.remove(TRANSFER_ENCODING);
    Ok(Response::from_parts(parts, Body::from(body)))
}
