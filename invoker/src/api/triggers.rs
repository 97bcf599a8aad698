//! The trigger API: create, list, show, update (status), delete one, delete all.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::{ApiError, App, FunctionPath, JsonBody};
use crate::registry::triggers::{validate, validate_status, Kind};
use crate::registry::{RegistryError, Trigger};

type ApiResult = Result<Response, ApiError>;

/// `CreateFunctionTriggerRequestBody`.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    trigger_type_code: Option<String>,
    trigger_status: Option<String>,
    event_type_code: Option<String>,
    event_data: Option<Map<String, Value>>,
}

/// `UpdateTriggerRequestBody`: the status; `event_data` (a list in the SDK, for DIS
/// triggers) changes nothing of a TIMER and is refused when it asks to.
#[derive(Debug, Deserialize)]
pub struct UpdateBody {
    trigger_status: Option<String>,
    event_data: Option<Value>,
}

/// A trigger on the wire (`CreateFunctionTriggerResponse`, `ListFunctionTriggerResult`, …).
/// A gateway trigger's `event_data` says where its API is (`sl_domain`: call
/// `http://{sl_domain}{path}`); `last_error` (fgs's field) is the trigger's last failure since
/// the host started.
fn trigger_json(app: &App, t: &Trigger) -> Value {
    let mut event_data = t.event_data.clone();
    for secret in Trigger::SECRETS {
        event_data.remove(*secret);
    }
    if t.kind().is_some_and(Kind::is_gateway) {
        event_data.insert("sl_domain".into(), json!(app.gateway_domain));
    }
    let mut answer = json!({
        "trigger_id": t.trigger_id,
        "trigger_type_code": t.trigger_type_code,
        "trigger_status": t.trigger_status,
        "event_type_code": t.event_type_code,
        "event_data": event_data,
        "created_time": t.created_time,
        "last_updated_time": t.last_updated_time,
    });
    if let Some(e) = app.triggers.last_error(&t.trigger_id) {
        answer["last_error"] = json!({"time": e.time, "message": e.message});
    }
    answer
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// `POST /v2/{project_id}/fgs/triggers/{function_urn}`: a trigger of the version or alias
/// the URN names (`latest` unqualified).
pub async fn create(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult {
    let type_code = body.trigger_type_code.unwrap_or_default();
    let event_data = validate(&type_code, &body.event_data.unwrap_or_default())?;
    let status = body.trigger_status.unwrap_or_else(|| {
        Kind::parse(&type_code)
            .map_or("ACTIVE", Kind::default_status)
            .into()
    });
    validate_status(&type_code, &status)?;
    let timestamp = now();
    let trigger = Trigger {
        trigger_id: uuid::Uuid::new_v4().to_string(),
        project_id: String::new(),
        package: String::new(),
        func_name: String::new(),
        qualifier: String::new(),
        trigger_type_code: type_code,
        trigger_status: status,
        event_type_code: body.event_type_code.unwrap_or_default(),
        event_data,
        created_time: timestamp.clone(),
        last_updated_time: timestamp,
    };
    let trigger = app
        .registry
        .create_trigger(&path.project_id, &path.func, trigger)
        .await?;
    app.triggers.sync(&app, &trigger);
    tracing::info!(trigger = %trigger.trigger_id, kind = %trigger.trigger_type_code, func = %trigger.func_name, "trigger created");
    Ok(Json(trigger_json(&app, &trigger)).into_response())
}

/// `GET /v2/{project_id}/fgs/triggers/{function_urn}`: a JSON array.
pub async fn list(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let triggers = app.registry.triggers(&path.project_id, &path.func)?;
    let list: Vec<Value> = triggers.iter().map(|t| trigger_json(&app, t)).collect();
    Ok(Json(list).into_response())
}

/// The `{trigger_type_code}/{trigger_id}` of the path.
fn trigger_of(app: &App, path: &FunctionPath) -> Result<Arc<Trigger>, ApiError> {
    let (type_code, id) = path.trigger.clone().unwrap_or_default();
    Ok(app
        .registry
        .trigger(&path.project_id, &path.func, &type_code, &id)?)
}

/// `GET /v2/{project_id}/fgs/triggers/{function_urn}/{trigger_type_code}/{trigger_id}`
pub async fn show(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let trigger = trigger_of(&app, &path)?;
    Ok(Json(trigger_json(&app, &trigger)).into_response())
}

/// `PUT …/{trigger_type_code}/{trigger_id}`: ACTIVE or DISABLED, effective at once.
pub async fn update(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult {
    let current = trigger_of(&app, &path)?;
    let asks_change = match &body.event_data {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    };
    if asks_change {
        let kind = current.kind().expect("a stored trigger has a served type");
        return Err(RegistryError::InvalidTrigger {
            kind,
            why: format!(
                "event_data of a {} trigger cannot change; delete it and create another",
                current.trigger_type_code
            ),
        }
        .into());
    }
    let mut changed = (*current).clone();
    if let Some(status) = body.trigger_status {
        validate_status(&current.trigger_type_code, &status)?;
        changed.trigger_status = status;
    }
    changed.last_updated_time = now();
    let changed = app
        .registry
        .update_trigger(&path.project_id, &path.func, changed)
        .await?;
    app.triggers.sync(&app, &changed);
    Ok(Json(trigger_json(&app, &changed)).into_response())
}

/// `DELETE …/{trigger_type_code}/{trigger_id}`
pub async fn delete(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let trigger = trigger_of(&app, &path)?;
    remove(&app, &path, vec![trigger.trigger_id.clone()]).await
}

/// `DELETE /v2/{project_id}/fgs/triggers/{function_urn}`: every trigger of the function (of
/// the version or alias when the URN is qualified).
pub async fn delete_all(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let ids = app
        .registry
        .triggers(&path.project_id, &path.func)?
        .iter()
        .map(|t| t.trigger_id.clone())
        .collect();
    remove(&app, &path, ids).await
}

async fn remove(app: &App, path: &FunctionPath, ids: Vec<String>) -> ApiResult {
    for trigger in app
        .registry
        .delete_triggers(&path.project_id, &path.func, &ids)
        .await?
    {
        app.triggers.stop(app, &trigger);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
