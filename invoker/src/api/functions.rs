//! Function management: create, list, show and update config and code, delete.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::api::model::{
    code_json, function_json, refuse_unimplemented, CodeFields, CreateFunctionBody, UpdateCodeBody,
    UpdateConfigBody,
};
use crate::api::{marker_page, paging, ApiError, App, FunctionPath, JsonBody};
use crate::registry::{now, FunctionRecord, RegistryError, LATEST};
use crate::urn::{FunctionRef, Qualifier};

type ApiResult = Result<Response, ApiError>;

/// `POST /v2/{project_id}/fgs/functions`
pub async fn create(
    State(app): State<Arc<App>>,
    Path(project_id): Path<String>,
    JsonBody(body): JsonBody<CreateFunctionBody>,
) -> ApiResult {
    refuse_unimplemented(&body.other)?;
    let (name, package) = body.identity(&app.limits)?;
    let func = FunctionRef {
        package: package.clone(),
        name: name.clone(),
        qualifier: Qualifier::None,
    };
    if app.registry.function(&project_id, &func).is_ok() {
        return Err(RegistryError::FunctionExists(name).into());
    }
    let timestamp = now();
    let mut record = FunctionRecord {
        func_id: uuid::Uuid::new_v4().to_string(),
        project_id,
        package,
        func_name: name,
        runtime: String::new(),
        handler: String::new(),
        memory_size: 0,
        timeout: 0,
        code_type: String::new(),
        code_filename: String::new(),
        code_size: 0,
        digest: String::new(),
        user_data: String::new(),
        encrypted_user_data: String::new(),
        description: String::new(),
        xrole: String::new(),
        app_xrole: String::new(),
        initializer_handler: String::new(),
        initializer_timeout: None,
        created: timestamp.clone(),
        last_modified: timestamp,
        revision: 0,
        max_instance_num: -1,
        reserved_instances: 0,
        reserved_idle_mode: false,
        async_config: None,
        version: LATEST.into(),
        version_description: String::new(),
        depend_version_list: Vec::new(),
    };
    body.config.apply(&mut record, &app.limits)?;
    let record = store_code(&app, record, body.code).await?;
    let entry = app.registry.create(record).await?;
    tracing::info!(func = %entry.spec.urn, "function created");
    Ok(Json(function_json(&entry, app.registry.region())).into_response())
}

/// Stores the code off the async workers (unpacking may take a while).
async fn store_code(
    app: &Arc<App>,
    mut record: FunctionRecord,
    code: CodeFields,
) -> Result<FunctionRecord, ApiError> {
    let store = app.registry.code().clone();
    tokio::task::spawn_blocking(move || code.apply(&mut record, &store).map(|()| record))
        .await
        .map_err(ApiError::internal)?
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    marker: Option<String>,
    maxitems: Option<String>,
    package_name: Option<String>,
    func_name: Option<String>,
}

/// `GET /v2/{project_id}/fgs/functions?marker=&maxitems=&package_name=&func_name=`
///
/// Paged by `marker`/`maxitems` ([`marker_page`]); `func_name` matches as a substring.
pub async fn list(
    State(app): State<Arc<App>>,
    Path(project_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let bounds = paging(&q.marker, &q.maxitems)?;
    let matching: Vec<_> = app
        .registry
        .list(&project_id)
        .into_iter()
        .map(|f| f.latest.clone())
        .filter(|e| {
            q.package_name
                .as_deref()
                .is_none_or(|p| p.is_empty() || e.record.package == p)
        })
        .filter(|e| {
            q.func_name
                .as_deref()
                .is_none_or(|n| e.record.func_name.contains(n))
        })
        .collect();
    Ok(marker_page("functions", &matching, bounds, |e| {
        function_json(e, app.registry.region())
    }))
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/config`
pub async fn show_config(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let entry = app.registry.get(&path.project_id, &path.func)?;
    Ok(Json(function_json(&entry, app.registry.region())).into_response())
}

/// `PUT /v2/{project_id}/fgs/functions/{function_urn}/config`
pub async fn update_config(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<UpdateConfigBody>,
) -> ApiResult {
    refuse_unimplemented(&body.other)?;
    let limits = app.limits.clone();
    let entry = app
        .registry
        .update(&path.project_id, &path.func, true, |record| {
            if let Some(name) = body.func_name.as_ref().filter(|n| **n != record.func_name) {
                return Err(fgs_limits::LimitError::FuncName(format!(
                    "func_name {name:?}: a function cannot be renamed (it is {})",
                    record.func_name
                ))
                .into());
            }
            body.config.apply(record, &limits)?;
            match &body.strategy_config {
                Some(strategy) => strategy.apply(record),
                None => Ok(()),
            }
        })
        .await?;
    app.pool.replace(entry.spec.clone());
    Ok(Json(function_json(&entry, app.registry.region())).into_response())
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/code`
pub async fn show_code(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let entry = app.registry.get(&path.project_id, &path.func)?;
    let package = app.registry.code().blob(&entry.record.digest)?;
    Ok(Json(code_json(&entry, &package)).into_response())
}

/// `PUT /v2/{project_id}/fgs/functions/{function_urn}/code`
pub async fn update_code(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(UpdateCodeBody { code: body, other }): JsonBody<UpdateCodeBody>,
) -> ApiResult {
    refuse_unimplemented(&other)?;
    let current = app.registry.get(&path.project_id, &path.func)?;
    if !current.is_latest() {
        // Refused before the code is stored (the same refusal `update` gives).
        return Err(RegistryError::ReadOnly(current.record.version.clone()).into());
    }
    let stored = store_code(&app, current.record.clone(), body).await?;
    let entry = app
        .registry
        .update(&path.project_id, &path.func, true, move |record| {
            record.code_type = stored.code_type;
            record.code_filename = stored.code_filename;
            record.code_size = stored.code_size;
            record.digest = stored.digest;
            record.depend_version_list = stored.depend_version_list;
            Ok::<_, ApiError>(())
        })
        .await?;
    app.pool.replace(entry.spec.clone());
    let package = app.registry.code().blob(&entry.record.digest)?;
    Ok(Json(code_json(&entry, &package)).into_response())
}

/// `DELETE /v2/{project_id}/fgs/functions/{function_urn}`
///
/// An unqualified URN deletes the function with its versions and aliases; a version's URN
/// deletes that version (refused while an alias points at it). `latest` cannot be deleted on
/// its own, as documented.
pub async fn delete(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    if path.func.qualifier == Qualifier::None {
        let function = app.registry.delete(&path.project_id, &path.func).await?;
        for entry in function.entries() {
            app.pool.retire(entry.id(), u64::MAX);
        }
        app.statistics.forget(function.entries().map(|e| e.id()));
        for trigger in &function.triggers {
            app.triggers.stop(&app, trigger);
        }
        tracing::info!(func = %function.latest.spec.urn, "function deleted");
    } else {
        let entry = app
            .registry
            .delete_version(&path.project_id, &path.func)
            .await?;
        app.pool.retire(entry.id(), u64::MAX);
        app.statistics.forget([entry.id()]);
        tracing::info!(func = %entry.spec.urn, "function version deleted");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
