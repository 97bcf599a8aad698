//! DIS's REST API (`/v2/{project_id}/streams|records|cursors|apps|checkpoints`), wire names
//! as in the official SDK. Handlers parse, run the operation off the async workers (it
//! touches files and SQLite), and shape the answer; every refusal goes through
//! [`error::ApiError`].

mod apps;
mod error;
mod records;
mod streams;

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::de::DeserializeOwned;

pub use error::{code_of, ApiError};

use crate::error::DisError;
use crate::streams::Dis;

/// The largest request body: 5 MB of records, base64-encoded, and the JSON around them.
const MAX_BODY: usize = 8 * 1024 * 1024;

pub fn router(dis: Arc<Dis>) -> Router {
    Router::new()
        .route(
            "/v2/{project_id}/streams",
            get(streams::list).post(streams::create),
        )
        .route(
            "/v2/{project_id}/streams/{stream_name}",
            get(streams::show)
                .put(streams::update_partition_count)
                .delete(streams::delete),
        )
        .route(
            "/v2/{project_id}/records",
            get(records::consume).post(records::send),
        )
        .route("/v2/{project_id}/cursors", get(records::cursor))
        .route("/v2/{project_id}/apps", get(apps::list).post(apps::create))
        .route(
            "/v2/{project_id}/apps/{app_name}",
            get(apps::show).delete(apps::delete),
        )
        .route(
            "/v2/{project_id}/apps/{app_name}/streams/{stream_name}",
            get(apps::consumer_state),
        )
        .route(
            "/v2/{project_id}/streams/{stream_name}/metrics",
            get(streams::stream_metrics),
        )
        .route(
            "/v2/{project_id}/streams/{stream_name}/partitions/{partition_id}/metrics",
            get(streams::partition_metrics),
        )
        .route(
            "/v2/{project_id}/streams/{stream_name}/policies",
            get(streams::list_policies)
                .post(streams::add_policy)
                .delete(streams::delete_policy),
        )
        .route(
            "/v2/{project_id}/checkpoints",
            get(apps::show_checkpoint)
                .post(apps::commit_checkpoint)
                .delete(apps::delete_checkpoint),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(with_request_id))
        .with_state(dis)
}

async fn with_request_id(mut response: Response) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    response.headers_mut().insert(
        "X-Request-Id",
        HeaderValue::from_str(&id).expect("a uuid is a header value"),
    );
    response
}

type ApiResult = Result<Response, ApiError>;

/// The project of the path (`/v2/{project_id}/…`), checked: 1 to 64 letters, digits, `_`
/// or `-` (DIS.4117 otherwise).
pub struct Project(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Project {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts.uri.path().split('/').nth(2).unwrap_or("");
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(DisError::Project(id.chars().take(64).collect()).into());
        }
        Ok(Project(id.to_string()))
    }
}

/// The caller: the project of the path and the user the authentication layer found.
pub struct Caller(pub crate::policies::Caller);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Project(project) = Project::from_request_parts(parts, state).await?;
        let user = parts
            .extensions
            .get::<crate::policies::AuthenticatedUser>()
            .map(|u| u.0.clone());
        Ok(Caller(crate::policies::Caller { project, user }))
    }
}

/// A JSON body: empty is DIS.4202, malformed or too large DIS.4200.
fn json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        DisError::Invalid(match e {
            BytesRejection::FailedToBufferBody(_) => {
                format!("the request body is larger than {MAX_BODY} bytes")
            }
            other => other.body_text(),
        })
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DisError::Empty.into());
    }
    serde_json::from_slice(&body)
        .map_err(|e| DisError::Invalid(format!("the body is not valid: {e}")).into())
}

/// A query string as `T` (whose fields are all optional strings, so only broken encoding
/// fails).
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| DisError::Invalid(e.body_text()).into())
}

/// An optional integer parameter (empty counts as absent).
fn opt_int(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| DisError::Invalid(format!("{name}={v:?} is not an integer")).into()),
    }
}

/// An optional integer parameter, checked to lie in `range`.
fn int_param(
    name: &str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, ApiError> {
    match opt_int(name, value)? {
        None => Ok(default),
        Some(n) if range.contains(&n) => Ok(n),
        Some(n) => Err(DisError::Invalid(format!(
            "{name}={n} is not from {} to {}",
            range.start(),
            range.end()
        ))
        .into()),
    }
}

/// One page of a list ordered by name: the items after `after`, at most `limit`, and
/// whether more follow.
fn page<'a, T>(
    items: &'a [T],
    after: &str,
    limit: usize,
    name: impl Fn(&T) -> &str,
) -> (Vec<&'a T>, bool) {
    let mut page: Vec<&T> = items.iter().filter(|i| name(i) > after).collect();
    let more = page.len() > limit;
    page.truncate(limit);
    (page, more)
}

/// Runs a DIS operation on the blocking pool.
async fn blocking<T: Send + 'static>(
    dis: &Arc<Dis>,
    op: impl FnOnce(&Dis) -> Result<T, DisError> + Send + 'static,
) -> Result<T, ApiError> {
    let dis = dis.clone();
    tokio::task::spawn_blocking(move || op(&dis))
        .await
        .map_err(|e| DisError::Io(std::io::Error::other(e.to_string())))?
        .map_err(ApiError::from)
}

fn status(code: StatusCode) -> ApiResult {
    Ok(code.into_response())
}
