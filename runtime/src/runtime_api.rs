//! The custom-runtime API, served to one instance.
//!
//! FunctionGraph's documented protocol: the runtime polls
//! `GET /v1/runtime/invocation/request` for the next event (the call blocks until there is
//! one), then answers with `POST /v1/runtime/invocation/response/{request_id}` or
//! `POST /v1/runtime/invocation/error/{request_id}`. fgs adds one endpoint,
//! `POST /v1/runtime/init/start` and `POST /v1/runtime/init/error`, with which a runtime
//! reports that its initializer starts (the `initializer_timeout` runs from then) or failed
//! (body: the error JSON); the shipped Python and Node.js bootstraps use both. A response or
//! error posted with `X-Fgs-Next: 1` is answered with the next event (fgs's, used by the
//! shipped bootstraps to save a round trip per invocation).
//!
//! A prewarmed instance's bootstrap first asks `GET /v1/runtime/assignment` (fgs's), which
//! answers once a function has taken the instance, with the function's environment as a JSON
//! list of `[name, value]` pairs (later ones win); see `prewarm`.
//!
//! Each instance gets its own listener (`RUNTIME_API_ADDR`), so the protocol needs no instance
//! identifier. The sandbox makes it: inside the instance's own network namespace, where no
//! other instance can connect to it, or on a host loopback port with `--network host`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::InvokeRequest;

/// The request header asking for the next event in the reply to a response or error.
const NEXT_HEADER: &str = "x-fgs-next";

/// An invocation handed to the instance.
pub(crate) struct Dispatch {
    pub request: InvokeRequest,
    /// Fired when the runtime has taken the event.
    pub picked: oneshot::Sender<()>,
    /// Fired with the runtime's answer.
    pub done: oneshot::Sender<Completion>,
}

/// The runtime's answer to one event.
#[derive(Debug)]
pub(crate) enum Completion {
    Response(Bytes),
    Error(Bytes),
    /// The response body was larger than allowed; its full size.
    TooLarge(u64),
}

/// The API server of one instance. Dropping it stops the server.
pub(crate) struct RuntimeApi {
    pub addr: SocketAddr,
    pub dispatch: mpsc::Sender<Dispatch>,
    pub init_error: watch::Receiver<Option<Bytes>>,
    pub init_started: watch::Receiver<bool>,
    /// The runtime has asked for work: it has started (and initialized).
    pub ready: watch::Receiver<bool>,
    /// A prewarmed runtime waits for its assignment.
    pub waiting: watch::Receiver<bool>,
    assignment: watch::Sender<Option<Bytes>>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct ApiState {
    queue: tokio::sync::Mutex<mpsc::Receiver<Dispatch>>,
    inflight: Mutex<Option<(String, oneshot::Sender<Completion>)>>,
    init_error: watch::Sender<Option<Bytes>>,
    init_started: watch::Sender<bool>,
    ready: watch::Sender<bool>,
    waiting: watch::Sender<bool>,
    assignment: watch::Receiver<Option<Bytes>>,
    max_response: u64,
}

impl RuntimeApi {
    /// Serves the API on `listener`.
    pub fn start(listener: std::net::TcpListener, max_response: u64) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let (dispatch, queue) = mpsc::channel(1);
        let (init_tx, init_rx) = watch::channel(None);
        let (started_tx, started_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = watch::channel(false);
        let (waiting_tx, waiting_rx) = watch::channel(false);
        let (assignment_tx, assignment_rx) = watch::channel(None);
        let state = Arc::new(ApiState {
            queue: tokio::sync::Mutex::new(queue),
            inflight: Mutex::new(None),
            init_error: init_tx,
            init_started: started_tx,
            ready: ready_tx,
            waiting: waiting_tx,
            assignment: assignment_rx,
            max_response,
        });
        let app = Router::new()
            .route("/v1/runtime/invocation/request", get(next_request))
            .route("/v1/runtime/invocation/response/{id}", post(post_response))
            .route("/v1/runtime/invocation/error/{id}", post(post_error))
            .route("/v1/runtime/init/error", post(post_init_error))
            .route("/v1/runtime/init/start", post(post_init_start))
            .route("/v1/runtime/assignment", get(assignment))
            .with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            dispatch,
            init_error: init_rx,
            init_started: started_rx,
            ready: ready_rx,
            waiting: waiting_rx,
            assignment: assignment_tx,
            server,
        })
    }

    /// Hands a prewarmed runtime its function's environment (once its code is mounted).
    pub fn assign(&self, environment: &[(String, String)]) {
        let json = serde_json::to_vec(environment).expect("pairs of strings serialize");
        self.assignment.send_replace(Some(Bytes::from(json)));
    }
}

async fn assignment(State(state): State<Arc<ApiState>>) -> Response {
    state.waiting.send_replace(true);
    let mut assignment = state.assignment.clone();
    let env = match assignment.wait_for(|a| a.is_some()).await {
        Ok(env) => env.clone().unwrap_or_default(),
        Err(_) => return (StatusCode::GONE, "instance is shutting down").into_response(),
    };
    Response::new(Body::from(env))
}

async fn next_request(State(state): State<Arc<ApiState>>) -> Response {
    state
        .ready
        .send_if_modified(|ready| !std::mem::replace(ready, true));
    let dispatch = {
        let mut queue = state.queue.lock().await;
        match queue.recv().await {
            Some(d) => d,
            None => return (StatusCode::GONE, "instance is shutting down").into_response(),
        }
    };
    let Dispatch {
        request,
        picked,
        done,
    } = dispatch;
    *state.inflight.lock().unwrap() = Some((request.request_id.clone(), done));
    let _ = picked.send(());
    let mut resp = Response::new(Body::from(request.body));
    let headers = resp.headers_mut();
    let id = HeaderValue::from_str(&request.request_id).unwrap_or(HeaderValue::from_static(""));
    headers.insert("X-Cff-Request-Id", id);
    headers.insert(
        "X-CFF-Invoke-Type",
        HeaderValue::from_static(request.invoke_type.as_str()),
    );
    headers.insert("Content-Type", HeaderValue::from_static("application/json"));
    for name in [
        "X-CFF-Access-Key",
        "X-CFF-Secret-Key",
        "X-CFF-Auth-Token",
        "X-CFF-Security-Token",
    ] {
        headers.insert(name, HeaderValue::from_static(""));
    }
    resp
}

async fn post_response(
    state: State<Arc<ApiState>>,
    id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    complete(state, id, &headers, body, Completion::Response).await
}

async fn post_error(
    state: State<Arc<ApiState>>,
    id: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    complete(state, id, &headers, body, Completion::Error).await
}

/// Takes the runtime's answer to the event in flight; with `X-Fgs-Next` (fgs's shipped
/// bootstraps send it), the reply is the next event, as `GET .../invocation/request` would
/// answer: one round trip per invocation instead of two.
async fn complete(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: &HeaderMap,
    body: Body,
    kind: fn(Bytes) -> Completion,
) -> Response {
    let is_current =
        matches!(&*state.inflight.lock().unwrap(), Some((current, _)) if *current == id);
    if !is_current {
        return (
            StatusCode::BAD_REQUEST,
            format!("no invocation {id} is in flight"),
        )
            .into_response();
    }
    let completion = match read_limited(body, state.max_response).await {
        Ok(Ok(bytes)) => kind(bytes),
        Ok(Err(size)) => Completion::TooLarge(size),
        Err(_) => return (StatusCode::BAD_REQUEST, "failed to read body").into_response(),
    };
    let too_large = matches!(completion, Completion::TooLarge(_));
    if let Some((_, done)) = state.inflight.lock().unwrap().take() {
        let _ = done.send(completion);
    }
    if too_large {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "response body exceeds the limit",
        )
            .into_response();
    }
    if headers.contains_key(NEXT_HEADER) {
        return next_request(State(state)).await;
    }
    StatusCode::OK.into_response()
}

async fn post_init_start(State(state): State<Arc<ApiState>>) -> Response {
    state.init_started.send_replace(true);
    StatusCode::OK.into_response()
}

async fn post_init_error(State(state): State<Arc<ApiState>>, body: Body) -> Response {
    let bytes = match read_limited(body, state.max_response).await {
        Ok(Ok(bytes)) => bytes,
        _ => Bytes::from_static(b"initializer failed"),
    };
    state.init_error.send_replace(Some(bytes));
    StatusCode::OK.into_response()
}

/// Reads a body of at most `max` bytes. Beyond that it keeps reading, without keeping the
/// data, only to report the full size.
async fn read_limited(body: Body, max: u64) -> Result<Result<Bytes, u64>, axum::Error> {
    let mut body = body;
    let mut buf = BytesMut::new();
    let mut size: u64 = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            size += data.len() as u64;
            if size <= max {
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(if size > max {
        Err(size)
    } else {
        Ok(buf.freeze())
    })
}
