//! The event-streaming API (`/v1/{project_id}/eventstreamings`), wire names as in the
//! official EventGrid SDK. Every response carries `X-Request-Id`; errors answer
//! `{"error_code", "error_msg", "error_details"}` with EventGrid's codes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::definition::{Definition, DefinitionError, RocketMqSettings};
use crate::engine::Engine;
use crate::store::{Inserted, StoredStream, StreamStore};

/// Stream statuses.
pub const CREATED: &str = "CREATED";
pub const RUNNING: &str = "RUNNING";
pub const ERROR: &str = "ERROR";
pub const STOPPED: &str = "STOPPED";

/// What the handlers share.
pub struct Streams {
    pub store: StreamStore,
    pub engine: Arc<Engine>,
    /// Where events published to channels go (the host's functions).
    pub sink: Arc<dyn crate::engine::FunctionSink>,
    /// Kafka producers of subscription targets, by project and connection (a connection never
    /// changes; deleting it drops its producer).
    producers: std::sync::Mutex<
        std::collections::HashMap<(String, String), rdkafka::producer::FutureProducer>,
    >,
}

impl Streams {
    pub fn new(
        store: StreamStore,
        engine: Arc<Engine>,
        sink: Arc<dyn crate::engine::FunctionSink>,
    ) -> Self {
        Self {
            store,
            engine,
            sink,
            producers: Default::default(),
        }
    }

    /// The producer of connection `id` of `project_id`, made at its first use.
    pub(crate) fn producer(
        &self,
        project_id: &str,
        id: &str,
    ) -> Result<rdkafka::producer::FutureProducer, String> {
        let key = (project_id.to_string(), id.to_string());
        if let Some(producer) = self.producers.lock().unwrap().get(&key) {
            return Ok(producer.clone());
        }
        let connection = self
            .store
            .connection(project_id, id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("connection {id} does not exist"))?;
        let producer = crate::engine::kafka::producer(&connection.detail["kafka_detail"])?;
        self.producers.lock().unwrap().insert(key, producer.clone());
        Ok(producer)
    }

    /// Forgets the producer of a deleted connection.
    pub(crate) fn forget_producer(&self, project_id: &str, id: &str) {
        self.producers
            .lock()
            .unwrap()
            .remove(&(project_id.to_string(), id.to_string()));
    }
}

/// Channels, subscriptions or event sources a project may have, of each kind; and the host,
/// all projects together (without authentication any project id is a tenant: invented ids
/// must not multiply the project limit). Beyond them a create answers 400 `EG.00014000`.
/// How many event streams, connections, channels, subscriptions and event sources (each kind
/// counted apart) a project may have, and the host: EventGrid has quotas, fgs has these.
pub const MAX_RESOURCES_PER_PROJECT: usize = 100;
pub const MAX_RESOURCES_PER_HOST: usize = 10_000;
pub(crate) const BOUND: crate::store::Bound = crate::store::Bound {
    per_project: MAX_RESOURCES_PER_PROJECT,
    per_host: MAX_RESOURCES_PER_HOST,
};

/// Stores a new channel, subscription or event source (`what` names its kind in refusals)
/// within [`BOUND`], its name unique in the project.
pub(crate) fn insert_resource(
    streams: &Streams,
    kind: &str,
    what: &str,
    r: &crate::store::Resource,
) -> Result<(), ApiError> {
    let inserted = streams.store.insert_resource(kind, r, BOUND)?;
    refusal(inserted, what, &r.name)
}

/// What an insert of a `what` named `name` answers: nothing when it was done, else
/// EG.00014000 with why.
pub(crate) fn refusal(inserted: Inserted, what: &str, name: &str) -> Result<(), ApiError> {
    match inserted {
        Inserted::Done => Ok(()),
        Inserted::NameTaken => Err(ApiError::BadRequest(format!(
            "a{} {what} named {name:?} already exists in this project",
            if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "n"
            } else {
                ""
            }
        ))),
        Inserted::ProjectFull => Err(ApiError::BadRequest(format!(
            "the project has {MAX_RESOURCES_PER_PROJECT} {what}s, as many as it may"
        ))),
        Inserted::HostFull => Err(ApiError::BadRequest(format!(
            "the host has {MAX_RESOURCES_PER_HOST} {what}s, as many as it may"
        ))),
    }
}

/// The query of the channel, subscription and event source listings (each uses the filters
/// its operation documents).
#[derive(Debug, Deserialize)]
pub(crate) struct ResourceQuery {
    #[serde(flatten)]
    pub page: Page,
    pub channel_id: Option<String>,
    pub name: Option<String>,
    pub provider_type: Option<String>,
}

/// A listing of a project's `resources` in EventGrid's paged form: those whose answer has,
/// for each `(field, wanted)`, that value (an absent or empty query value matches all).
pub(crate) fn list_resources(
    resources: &[crate::store::Resource],
    page: &Page,
    filters: &[(&str, &Option<String>)],
) -> ApiResult {
    let (offset, limit) = page.bounds()?;
    let matching: Vec<&crate::store::Resource> = resources
        .iter()
        .filter(|r| {
            filters.iter().all(|(field, wanted)| {
                wanted
                    .as_deref()
                    .is_none_or(|w| w.is_empty() || r.detail[*field] == w)
            })
        })
        .collect();
    Ok(Json(page_json(&matching, offset, limit, |r| r.detail.clone())).into_response())
}

/// One page of `items` from `offset`, at most `limit`, as EventGrid lists:
/// `{"total", "size", "items"}`.
pub(crate) fn page_json<T>(
    items: &[T],
    offset: i64,
    limit: i64,
    json: impl Fn(&T) -> Value,
) -> Value {
    let page: Vec<Value> = items
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(json)
        .collect();
    json!({ "total": items.len(), "size": page.len(), "items": page })
}

/// An API error and its EventGrid code (the one place where they are mapped).
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    /// A known path with a method it does not take.
    MethodNotAllowed,
    /// A body over its limit.
    TooLarge(String),
    Internal(String),
}

impl From<DefinitionError> for ApiError {
    fn from(e: DefinitionError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, msg, details) = match self {
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, "EG.00014000", "Bad request", d),
            ApiError::NotFound(d) => (
                StatusCode::NOT_FOUND,
                "EG.00014040",
                "Not request resource found",
                d,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "EG.00014050",
                "Method not allowed",
                "this path does not take this method".into(),
            ),
            ApiError::TooLarge(d) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "EG.00014130",
                "Request entity too large",
                d,
            ),
            ApiError::Internal(d) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "EG.00015000",
                "Internal Server Error",
                d,
            ),
        };
        (
            status,
            Json(json!({"error_code": code, "error_msg": msg, "error_details": details})),
        )
            .into_response()
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// The event-streaming API. Every path under `/v1/{project_id}/` answers in EventGrid's
/// error shape: a method a path does not take is 405 `EG.00014050`, an unknown path 404
/// `EG.00014040`.
pub fn router(streams: Arc<Streams>) -> Router {
    let wrong_method = || async { ApiError::MethodNotAllowed };
    Router::new()
        .route(
            "/v1/{project_id}/eventstreamings",
            get(list).post(create).fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/eventstreamings/{id}",
            get(show).put(update).delete(delete).fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/eventstreamings/operate/{id}",
            axum::routing::post(operate).fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/connections",
            get(crate::connections::list)
                .post(crate::connections::create)
                .fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/connections/{id}",
            get(crate::connections::show)
                .delete(crate::connections::delete)
                .fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/channels",
            get(crate::channels::list)
                .post(crate::channels::create)
                .fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/channels/{channel_id}/events",
            axum::routing::post(crate::channels::put_events)
                .fallback(wrong_method)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::channels::MAX_BODY,
                )),
        )
        .route(
            "/v1/{project_id}/subscriptions",
            get(crate::subscriptions::list)
                .post(crate::subscriptions::create)
                .fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/subscriptions/operation",
            axum::routing::post(crate::subscriptions::operate).fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/subscriptions/{id}",
            get(crate::subscriptions::show)
                .put(crate::subscriptions::update)
                .delete(crate::subscriptions::delete)
                .fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/sources",
            get(crate::sources::list)
                .post(crate::sources::create)
                .fallback(wrong_method),
        )
        .route(
            "/v1/{project_id}/{*rest}",
            axum::routing::any(|| async {
                ApiError::NotFound("no such EventGrid API path".into())
            }),
        )
        .layer(axum::middleware::map_response(with_request_id))
        .with_state(streams)
}

async fn with_request_id(mut response: Response) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    response.headers_mut().insert(
        "X-Request-Id",
        HeaderValue::from_str(&id).expect("a uuid is a header value"),
    );
    response
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The body as JSON, or EG.00014000.
pub(crate) fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
}

/// A stream definition from the body; a Kafka sink's connection must exist in the project,
/// a DMS RocketMQ source's instance must be one the host knows.
fn parse_body(streams: &Streams, project_id: &str, body: &Bytes) -> Result<Definition, ApiError> {
    let definition = Definition::parse(&json_body(body)?)?;
    if let Some(rocketmq) = RocketMqSettings::of(&definition.json["source"])? {
        streams
            .engine
            .rocketmq_address(&rocketmq)
            .map_err(ApiError::BadRequest)?;
    }
    if let Some(id) = definition.json["sink"]["sink_kafka"]["connectionId"].as_str() {
        if streams.store.connection(project_id, id)?.is_none() {
            return Err(ApiError::BadRequest(format!(
                "sink.sink_kafka.connectionId: connection {id:?} does not exist"
            )));
        }
    }
    Ok(definition)
}

/// What a stream's secrets read as in show and list; an update that sends it back keeps
/// the stored secret.
const MASK: &str = "******";

fn detail(s: &StoredStream) -> Value {
    let mut v = s.definition.clone();
    for pointer in crate::store::STREAM_SECRETS {
        if let Some(Value::String(secret)) = v.pointer_mut(pointer) {
            if !secret.is_empty() {
                *secret = MASK.into();
            }
        }
    }
    v["id"] = json!(s.id);
    v["status"] = json!(s.status);
    v["created_time"] = json!(s.created_time);
    v["updated_time"] = json!(s.updated_time);
    v
}

/// `POST /v1/{project_id}/eventstreamings` → `{"eventStreamingID"}`; the stream is CREATED
/// (not started).
async fn create(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let definition = parse_body(&streams, &project_id, &body)?;
    let time = now();
    let stream = StoredStream {
        id: uuid::Uuid::new_v4().to_string(),
        project_id,
        name: definition.name.clone(),
        definition: definition.json,
        status: CREATED.into(),
        created_time: time.clone(),
        updated_time: time,
    };
    refusal(
        streams.store.insert(&stream, BOUND)?,
        "event stream",
        &stream.name,
    )?;
    Ok(Json(json!({ "eventStreamingID": stream.id })).into_response())
}

/// `?offset=&limit=` of the list operations.
#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    offset: Option<String>,
    limit: Option<String>,
}

impl Page {
    /// `offset` ≥ 0 (default 0) and `limit` 1…1000 (default 15), as EventGrid documents.
    pub(crate) fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let number = |name: &str, v: &Option<String>, default: i64| -> Result<i64, ApiError> {
            match v.as_deref().filter(|s| !s.is_empty()) {
                None => Ok(default),
                Some(s) => s
                    .parse()
                    .map_err(|_| ApiError::BadRequest(format!("{name}={s:?} is not an integer"))),
            }
        };
        let offset = number("offset", &self.offset, 0)?;
        let limit = number("limit", &self.limit, 15)?;
        if offset < 0 {
            return Err(ApiError::BadRequest(format!(
                "offset={offset} must not be negative"
            )));
        }
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit={limit} must be 1…1000"
            )));
        }
        Ok((offset, limit))
    }
}

/// `GET /v1/{project_id}/eventstreamings?offset=&limit=` → `{"total", "size", "items"}`.
async fn list(
    State(streams): State<Arc<Streams>>,
    Path(project_id): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult {
    let (offset, limit) = page.bounds()?;
    let (page, total) = streams.store.list(&project_id, offset, limit)?;
    let items: Vec<Value> = page.iter().map(detail).collect();
    Ok(Json(json!({ "total": total, "size": items.len(), "items": items })).into_response())
}

fn find(store: &StreamStore, project_id: &str, id: &str) -> Result<StoredStream, ApiError> {
    store
        .get(project_id, id)?
        .ok_or_else(|| ApiError::NotFound(format!("event stream {id} does not exist")))
}

/// `GET /v1/{project_id}/eventstreamings/{id}`
async fn show(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
) -> ApiResult {
    Ok(Json(detail(&find(&streams.store, &project_id, &id)?)).into_response())
}

/// `PUT /v1/{project_id}/eventstreamings/{id}`: replaces the definition.
async fn update(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let mut stream = find(&streams.store, &project_id, &id)?;
    let body = keep_masked_secrets(&body, &stream.definition)?;
    let definition = parse_body(&streams, &project_id, &body)?;
    // An update stops a started stream, as in EventGrid; START it again to apply the change.
    streams.engine.stop(&id);
    if stream.status != CREATED {
        stream.status = STOPPED.into();
    }
    stream.name = definition.name.clone();
    stream.definition = definition.json;
    stream.updated_time = now();
    if !streams.store.update(&stream)? {
        refusal(Inserted::NameTaken, "event stream", &stream.name)?;
    }
    // What the SDK reads (UpdateEventStreamingResponse), as create and operate answer.
    Ok(Json(json!({ "eventStreamingID": stream.id })).into_response())
}

/// `body` with every secret that reads [`MASK`] (as show returned it) replaced by the stored one.
fn keep_masked_secrets(body: &Bytes, stored: &Value) -> Result<Bytes, ApiError> {
    let mut value = json_body(body)?;
    let mut changed = false;
    for pointer in crate::store::STREAM_SECRETS {
        if let (Some(Value::String(given)), Some(Value::String(kept))) =
            (value.pointer_mut(pointer), stored.pointer(pointer))
        {
            if given == MASK {
                *given = kept.clone();
                changed = true;
            }
        }
    }
    Ok(if changed {
        Bytes::from(value.to_string())
    } else {
        body.clone()
    })
}

/// `DELETE /v1/{project_id}/eventstreamings/{id}` → 204.
async fn delete(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
) -> ApiResult {
    // The owner is checked before anything is stopped: an id alone reaches no other project.
    find(&streams.store, &project_id, &id)?;
    streams.engine.stop(&id);
    if !streams.store.delete(&project_id, &id)? {
        return Err(ApiError::NotFound(format!(
            "event stream {id} does not exist"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct Operation {
    operation: Option<String>,
}

/// `POST /v1/{project_id}/eventstreamings/operate/{id}` with `{"operation": "START"}` (the
/// stream consumes and delivers: RUNNING) or `"PAUSE"` (it stops: STOPPED); answers
/// `{"eventStreamingID"}`.
async fn operate(
    State(streams): State<Arc<Streams>>,
    Path((project_id, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let stream = find(&streams.store, &project_id, &id)?;
    let operation: Operation = serde_json::from_value(json_body(&body)?)
        .map_err(|e| ApiError::BadRequest(format!("the body is not an operation: {e}")))?;
    match operation.operation.as_deref() {
        Some("START") => {
            streams
                .engine
                .start(&stream)
                .map_err(ApiError::BadRequest)?;
        }
        Some("PAUSE") => {
            streams.engine.stop(&id);
            streams.store.set_status(&project_id, &id, STOPPED)?;
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "operation {other:?} must be START or PAUSE"
            )));
        }
    }
    Ok(Json(json!({ "eventStreamingID": id })).into_response())
}
