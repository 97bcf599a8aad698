//! What the gateway answers when a request gets no answer from a function: APIG's codes for
//! the gateway's own failures (no such API, a backend timeout), FunctionGraph's for the
//! invocation's (FSS.0429 throttled, FSS.1201 too large, FSS.1202 an answer of the wrong
//! shape).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use thiserror::Error;

use crate::api::ApiError;
use crate::invocation::InvokeError;

#[derive(Debug, Error)]
pub enum GatewayError {
    #[error("no API is published at this path")]
    NotFound,
    #[error("the API at this path does not take this method")]
    NoMethod,
    #[error("the function did not answer within the API's timeout")]
    Timeout,
    #[error("the function could not run: {0}")]
    Unavailable(String),
    /// The function answered, but not with `{statusCode, headers, body, isBase64Encoded}`.
    #[error("{0}")]
    BadAnswer(String),
    /// The function failed: its error JSON and runtime error code.
    #[error("the function failed with runtime error {code}")]
    Function { code: u32, payload: Bytes },
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// Refused before the invocation (a body over the limit).
    #[error("{}", .0.msg)]
    Api(ApiError),
}

impl From<ApiError> for GatewayError {
    fn from(e: ApiError) -> Self {
        GatewayError::Api(e)
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let api = |status, code, documented, detail: String| {
            ApiError::new(status, code, documented, detail).into_response()
        };
        match self {
            GatewayError::NotFound => api(
                404,
                "APIG.0101",
                "The API does not exist or has not been published in the environment.",
                String::new(),
            ),
            GatewayError::NoMethod => api(404, "APIG.0101", "The API does not exist.", String::new()),
            GatewayError::Timeout => api(504, "APIG.0201", "Backend timeout.", String::new()),
            GatewayError::Unavailable(why) => api(502, "APIG.0202", "Backend unavailable.", format!("({why})")),
            e @ GatewayError::BadAnswer(_) => api(
                500,
                "FSS.1202",
                "The response body or callback body is invalid because they do not contain any status code.",
                format!("({e})"),
            ),
            GatewayError::Function { code, payload } => {
                let mut response = (StatusCode::INTERNAL_SERVER_ERROR, payload).into_response();
                let h = response.headers_mut();
                h.insert("Content-Type", "application/json".parse().expect("valid"));
                h.insert("X-Func-Err-Code", code.into());
                response
            }
            GatewayError::Invoke(e) => ApiError::from(e).into_response(),
            GatewayError::Api(e) => e.into_response(),
        }
    }
}
