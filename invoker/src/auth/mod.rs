//! Authentication of every API (FunctionGraph, EventGrid and those to come), as Huawei
//! Cloud's API gateway does it in front of the real services.
//!
//! With `--auth required` a request must carry either
//! - an AK/SK signature (`Authorization: SDK-HMAC-SHA256 …` with `X-Sdk-Date` within 15
//!   minutes of the host's clock), verified as the official SDKs sign ([`signature`]), or
//! - `X-Auth-Token`, a token from `POST /v3/auth/tokens` ([`token`]), scoped to one project,
//!
//! of a credential from `--credentials` ([`credentials`]) that allows the project in the path
//! (and, when read-only, only reads). Failures answer as the gateway does: 401 `APIGW.0301`
//! (`Incorrect IAM authentication information: …`) or `APIGW.0307` (token expired), 403
//! `APIGW.0302` (not allowed), with `error_code`, `error_msg`, `request_id` and `X-Request-Id`.
//! A name that fails [`lockout::MAX_FAILURES`] times in a row is locked ([`lockout`]), and
//! the bodies held to hash them share one byte budget (429 `APIGW.0308` beyond it).
//! `/healthz` stays open; `/metrics`, which spans projects, needs a credential allowing `"*"`.
//! With `--auth none` (the default on a loopback listener, for local emulation) nothing is
//! checked.

pub mod credentials;
pub mod lockout;
pub mod signature;
pub mod token;

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use fgs_secrets::HostKey;
use serde_json::{json, Value};

use credentials::{Credential, Credentials};
use lockout::Lockout;
use signature::{Authorization, Payload, SignedRequest};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest request body whose signature is checked (the largest management request).
const MAX_SIGNED_BODY: usize = 72 * 1024 * 1024;
/// How far `X-Sdk-Date` may be from the host's clock.
const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    None,
    Required,
}

impl AuthMode {
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Required => "required",
        }
    }
}

/// What the host checks requests against.
pub struct Auth {
    pub mode: AuthMode,
    credentials: Credentials,
    key: Arc<HostKey>,
    token_ttl: Duration,
    /// Failures by access key, and by token user name.
    access_keys: Lockout,
    users: Lockout,
    /// Bytes of bodies that may be held at once to hash them.
    body_budget: Arc<Semaphore>,
    refusals: prometheus::IntCounterVec,
}

/// The tunable part of [`Auth`].
pub struct Policy {
    /// How long an issued token is valid (IAM's is 24 hours).
    pub token_ttl: Duration,
    /// How long a name stays locked after too many failures.
    pub lockout: Duration,
    /// Bytes of bodies held at once to verify signatures.
    pub body_budget: u32,
}

/// An authentication or authorization failure, in the API gateway's words.
#[derive(Debug)]
pub struct AuthError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AuthError {
    fn iam(detail: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "APIGW.0301",
            message: format!("Incorrect IAM authentication information: {detail}"),
        }
    }
    fn token_expired() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "APIGW.0307",
            message: "The token must be updated.".into(),
        }
    }
    fn locked() -> Self {
        Self::iam("AK access failed to reach the limit,forbidden")
    }
    fn busy() -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "APIGW.0308",
            message: "The throttling threshold has been reached".into(),
        }
    }
    fn forbidden() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "APIGW.0302",
            message: "The IAM user is not authorized to access the API.".into(),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let body = json!({
            "error_code": self.code,
            "error_msg": self.message,
            "request_id": request_id,
        });
        (self.status, [("X-Request-Id", request_id)], Json(body)).into_response()
    }
}

/// The layer installed with `--auth required`: lets a request through only when it is
/// authenticated and allowed. A plain tower service rather than `from_fn`, which would clone
/// a boxed inner service and run an extractor for every request.
#[derive(Clone)]
pub struct AuthLayer(pub Arc<Auth>);

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            auth: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Authenticated<S> {
    auth: Arc<Auth>,
    inner: S,
}

impl<S> tower_service::Service<Request> for Authenticated<S>
where
    S: tower_service::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service that was made ready goes with this call; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            if is_open(req.uri().path()) {
                return inner.call(req).await;
            }
            match auth.check(req).await {
                Ok(req) => inner.call(req).await,
                Err(e) => Ok(auth.refuse(e)),
            }
        })
    }
}

/// Paths that need no credential: the health check, and the token API (which checks the
/// password in its body).
fn is_open(path: &str) -> bool {
    path == "/healthz" || path == "/v3/auth/tokens"
}

/// The project a path acts on: `/v1/{project_id}/…` or `/v2/{project_id}/…`.
fn project_of(path: &str) -> Option<&str> {
    let mut parts = path.trim_start_matches('/').split('/');
    match parts.next() {
        Some("v1" | "v2") => parts.next().filter(|p| !p.is_empty()),
        _ => None,
    }
}

impl Auth {
    /// Counts a refusal and answers it. Logged at debug level only: refusals come from
    /// outside, and at info level a flood of bad requests would be a flood of log lines.
    fn refuse(&self, e: AuthError) -> Response {
        tracing::debug!(code = e.code, reason = %e.message, "request refused");
        self.refusals.with_label_values(&[e.code]).inc();
        e.into_response()
    }

    /// Registers the refusal counter with the host's metrics.
    pub fn register(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.refusals.clone()))
    }

    pub fn new(
        mode: AuthMode,
        credentials: Credentials,
        key: Arc<HostKey>,
        policy: Policy,
    ) -> Self {
        let access_keys = Lockout::new(credentials.access_keys(), policy.lockout);
        let users = Lockout::new(credentials.user_names(), policy.lockout);
        Self {
            mode,
            credentials,
            key,
            token_ttl: policy.token_ttl,
            access_keys,
            users,
            body_budget: Arc::new(Semaphore::new(policy.body_budget as usize)),
            refusals: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "fgs_auth_refusals_total",
                    "API requests refused by authentication or authorization, by gateway code.",
                ),
                &["code"],
            )
            .expect("valid metric"),
        }
    }

    async fn check(&self, req: Request) -> Result<Request, AuthError> {
        let now = Utc::now().timestamp();
        let (credential, req, token_project) =
            if let Some(token) = header(req.headers(), "x-auth-token") {
                let claims = token::verify(&self.key, token, now).map_err(|e| match e {
                    token::TokenError::Malformed => AuthError::iam("decrypt token fail"),
                    token::TokenError::Expired { .. } => AuthError::token_expired(),
                })?;
                let credential = self
                    .credentials
                    .get(&claims.access_key)
                    .ok_or_else(|| AuthError::iam("decrypt token fail"))?;
                (credential, req, Some(claims.project_id))
            } else {
                let (credential, req) = self.check_signature(req, now).await?;
                (credential, req, None)
            };
        let path = req.uri().path();
        let allowed = match project_of(path) {
            Some(project) => {
                credential.allows(project) && token_project.as_deref().is_none_or(|p| p == project)
            }
            None if path == "/metrics" => credential.allows_all() && token_project.is_none(),
            None => true,
        };
        let writes = !matches!(*req.method(), Method::GET | Method::HEAD);
        if !allowed || (credential.read_only && writes) {
            return Err(AuthError::forbidden());
        }
        let mut req = req;
        if let Some(user) = &credential.user_name {
            // Who calls, for DIS's stream policies (`project.user` principals).
            req.extensions_mut()
                .insert(fgs_dis::policies::AuthenticatedUser(user.clone()));
        }
        Ok(req)
    }

    /// Verifies an AK/SK signature; answers the credential and the request (whose body may
    /// have been read to hash it).
    async fn check_signature(
        &self,
        req: Request,
        now: i64,
    ) -> Result<(&Credential, Request), AuthError> {
        let (parts, body) = req.into_parts();
        let authorization = header(&parts.headers, "authorization")
            .ok_or_else(|| AuthError::iam("x-auth-token not found"))?;
        let authorization = Authorization::parse(authorization).ok_or_else(|| {
            AuthError::iam("unsupported authorization, use SDK-HMAC-SHA256 or X-Auth-Token")
        })?;
        let date = header(&parts.headers, "x-sdk-date")
            .ok_or_else(|| AuthError::iam("x-sdk-date not found"))?;
        let signed_at = parse_sdk_date(date)
            .ok_or_else(|| AuthError::iam(format!("invalid x-sdk-date {date:?}")))?;
        if (now - signed_at).abs() > MAX_CLOCK_SKEW_SECS {
            return Err(AuthError::iam(format!(
                "signature expired, signature time:{date},server time:{}",
                Utc::now().format("%Y%m%dT%H%M%SZ")
            )));
        }
        let access_key = authorization.access_key;
        let credential = self
            .credentials
            .get(access_key)
            .ok_or_else(|| AuthError::iam(format!("ak {access_key} not exist")))?;
        let now_ms = now * 1000;
        if self.access_keys.is_locked(access_key, now_ms) {
            return Err(AuthError::locked());
        }

        let content_sha256 = header(&parts.headers, "x-sdk-content-sha256");
        let size = axum::body::HttpBody::size_hint(&body);
        // The body is read only when its hash is signed; an unsigned payload streams on.
        let (bytes, body) = match content_sha256 {
            _ if size.exact() == Some(0) => (Some(bytes::Bytes::new()), body),
            Some(_) => (None, body),
            None => {
                let (bytes, held) = self.hold_body(body, size.upper()).await?;
                (Some(bytes), held)
            }
        };
        let payload = match (&bytes, content_sha256) {
            (Some(bytes), _) => Payload::Body(bytes),
            (None, declared) => Payload::Declared(declared.unwrap_or_default()),
        };
        let headers = authorization
            .signed_headers
            .iter()
            .map(|name| (name.clone(), header_value(&parts.headers, name)))
            .collect();
        let signed = SignedRequest {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query().unwrap_or(""),
            headers,
            date,
            payload,
        };
        if !signed.verify(&credential.secret_key, authorization.signature) {
            self.access_keys.failed(access_key, now_ms);
            return Err(AuthError::iam(format!(
                "verify aksk signature fail, canonicalRequest:{}",
                signed.canonical_request().replace('\n', "|")
            )));
        }
        self.access_keys.succeeded(access_key);
        Ok((credential, Request::from_parts(parts, body)))
    }

    /// Reads a body whose hash is signed, within the shared budget: the bytes it announces (or
    /// the most a signed body may be, when it announces nothing) are reserved before it is read
    /// and stay reserved while the body handed on lives.
    async fn hold_body(
        &self,
        body: Body,
        announced: Option<u64>,
    ) -> Result<(bytes::Bytes, Body), AuthError> {
        let reserve = announced.map_or(MAX_SIGNED_BODY, |n| n.min(MAX_SIGNED_BODY as u64) as usize);
        let mut body = body;
        let Ok(permit) = self
            .body_budget
            .clone()
            .try_acquire_many_owned(reserve as u32)
        else {
            // Read and dropped, not held, so the caller gets the answer, not a reset.
            crate::api::invoke::discard(&mut body).await;
            return Err(AuthError::busy());
        };
        let bytes = axum::body::to_bytes(body, MAX_SIGNED_BODY)
            .await
            .map_err(|_| AuthError::iam("the request body could not be read within the limit"))?;
        Ok((
            bytes.clone(),
            Body::new(HeldBody {
                bytes: Some(bytes),
                _permit: permit,
            }),
        ))
    }

    /// `POST /v3/auth/tokens` with a password identity and a project scope: 201 with the
    /// token in `X-Subject-Token`, as IAM answers.
    fn issue_token(&self, body: &Value) -> Response {
        let refuse = |status: StatusCode, message: &str| {
            let title = status.canonical_reason().unwrap_or("");
            (
                status,
                Json(
                    json!({"error": {"code": status.as_u16(), "message": message, "title": title}}),
                ),
            )
                .into_response()
        };
        let auth = &body["auth"];
        let user = &auth["identity"]["password"]["user"];
        let methods = auth["identity"]["methods"].as_array();
        if !methods.is_some_and(|m| m.iter().any(|m| m == "password")) {
            return refuse(
                StatusCode::BAD_REQUEST,
                "The request you have made requires the password method.",
            );
        }
        let (Some(name), Some(password)) = (user["name"].as_str(), user["password"].as_str())
        else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "The user name and password are required.",
            );
        };
        let now_ms = Utc::now().timestamp_millis();
        if self.users.is_locked(name, now_ms) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "The account is locked after too many failed attempts; try again later.",
            );
        }
        let Some(credential) = self.credentials.by_password(name, password) else {
            self.users.failed(name, now_ms);
            return refuse(
                StatusCode::UNAUTHORIZED,
                "The username or password is wrong.",
            );
        };
        self.users.succeeded(name);
        let scope = &auth["scope"]["project"];
        let Some(project) = scope["id"].as_str().or(scope["name"].as_str()) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "A project scope (auth.scope.project.id) is required.",
            );
        };
        if !credential.allows(project) {
            return refuse(
                StatusCode::FORBIDDEN,
                "The user has no access to the project.",
            );
        }
        let issued = Utc::now();
        let expires = issued + chrono::Duration::from_std(self.token_ttl).unwrap_or_default();
        let token = token::issue(
            &self.key,
            &token::Claims {
                access_key: credential.access_key.clone(),
                project_id: project.to_string(),
                expires_at: expires.timestamp(),
            },
        );
        let stamp = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let body = json!({"token": {
            "expires_at": stamp(expires),
            "issued_at": stamp(issued),
            "methods": ["password"],
            "project": {"id": project, "name": project, "domain": {"id": "", "name": ""}},
            "user": {"id": credential.access_key, "name": name, "domain": {"id": "", "name": ""}},
            "roles": [],
            "catalog": [],
        }});
        (
            StatusCode::CREATED,
            [("X-Subject-Token", token)],
            Json(body),
        )
            .into_response()
    }
}

/// A buffered body that keeps its share of the budget until it is consumed or dropped.
struct HeldBody {
    bytes: Option<bytes::Bytes>,
    _permit: OwnedSemaphorePermit,
}

impl axum::body::HttpBody for HeldBody {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        Poll::Ready(
            self.bytes
                .take()
                .filter(|b| !b.is_empty())
                .map(|b| Ok(http_body::Frame::data(b))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.as_ref().is_none_or(|b| b.is_empty())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// The token API.
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new().route(
        "/v3/auth/tokens",
        post(
            |State(auth): State<Arc<Auth>>, body: bytes::Bytes| async move {
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                auth.issue_token(&body)
            },
        )
        .with_state(auth),
    )
}

/// `X-Sdk-Date` (`YYYYMMDDTHHMMSSZ`, UTC) as seconds since the epoch. By hand: chrono's
/// `parse_from_str` re-reads its format string on every call, and this runs on every request.
fn parse_sdk_date(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let day = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(4..6)?, num(6..8)?)?;
    let time = day.and_hms_opt(num(9..11)?, num(11..13)?, num(13..15)?)?;
    Some(time.and_utc().timestamp())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// All values of header `name`, joined with `,` as the SDK's signer sees a repeated header;
/// borrowed in the usual case of one value.
fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Cow<'a, str> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next().unwrap_or_default();
    match values.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut joined = format!("{first},{second}");
            for v in values {
                joined.push(',');
                joined.push_str(v);
            }
            Cow::Owned(joined)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_come_from_the_path() {
        assert_eq!(project_of("/v2/p1/fgs/functions"), Some("p1"));
        assert_eq!(project_of("/v1/p2/eventstreamings"), Some("p2"));
        assert_eq!(project_of("/v2//fgs"), None);
        assert_eq!(project_of("/metrics"), None);
        assert_eq!(project_of("/v3/auth/tokens"), None);
    }

    #[test]
    fn sdk_dates() {
        assert_eq!(parse_sdk_date("20261201T120000Z"), Some(1_796_126_400));
        assert_eq!(parse_sdk_date("19700101T000000Z"), Some(0));
        for bad in [
            "",
            "20261201T120000",
            "2026120lT120000Z",
            "20261301T120000Z",
            "20261201T250000Z",
            "20261201 120000Z",
        ] {
            assert_eq!(parse_sdk_date(bad), None, "{bad}");
        }
    }
}
