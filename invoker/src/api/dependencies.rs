//! Dependency packages: create a version, list them, show, list and delete the versions of one.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use md5::Digest;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{marker_page, paging, ApiError, App, JsonBody};
use crate::registry::dependencies::validate_name;
use crate::registry::{DependencyVersion, RegistryError};

type ApiResult = Result<Response, ApiError>;

/// The largest dependency zip (documented: 40 MB; larger ones go through OBS).
pub const MAX_DEPENDENCY_ZIP: usize = 40 * 1024 * 1024;

/// `CreateDependencyRequestBody`.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    depend_file: Option<String>,
    depend_link: Option<String>,
    depend_type: Option<String>,
    runtime: Option<String>,
    name: Option<String>,
    description: Option<String>,
}

/// The wire form of a dependency version (`Dependency`, `ListDependenciesResult`, …).
pub fn dependency_json(d: &DependencyVersion) -> Value {
    json!({
        "id": d.id,
        "dep_id": d.dep_id,
        "owner": d.project_id,
        "link": "",
        "download_link": "",
        "runtime": d.runtime,
        "etag": d.etag,
        "size": d.size,
        "name": d.name,
        "description": d.description,
        "file_name": d.file_name,
        "version": d.version,
        "last_modified": d.last_modified,
        "is_shared": false,
    })
}

/// `POST /v2/{project_id}/fgs/dependencies/version`: a new version of the dependency `name`
/// (the first one creates it). Only `depend_type` `zip` exists here (`obs`: 400 FSS.1032).
pub async fn create(
    State(app): State<Arc<App>>,
    Path(project_id): Path<String>,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult {
    let name = body.name.unwrap_or_default();
    validate_name(&name)?;
    let runtime = body.runtime.unwrap_or_default();
    let language = fgs_runtime::Language::from_runtime(&runtime)?;
    if language == fgs_runtime::Language::Wasm {
        return Err(RegistryError::InvalidDependency(
            "a WASM component carries its libraries: dependency packages are for process runtimes"
                .into(),
        )
        .into());
    }
    let description = body.description.unwrap_or_default();
    fgs_limits::validate_description(&description, &app.limits)?;
    match body.depend_type.as_deref() {
        Some("zip") => {}
        Some("obs") => {
            return Err(RegistryError::DependencyType(format!(
                "depend_type obs needs OBS, which fgs does not have (depend_link {:?}); upload the zip with depend_type zip",
                body.depend_link.unwrap_or_default()
            ))
            .into())
        }
        other => {
            return Err(RegistryError::DependencyType(format!(
                "depend_type {other:?}: zip or obs"
            ))
            .into())
        }
    }
    let zip = base64::engine::general_purpose::STANDARD
        .decode(body.depend_file.unwrap_or_default().trim())
        .map_err(|e| {
            RegistryError::InvalidDependency(format!("depend_file is not valid base64: {e}"))
        })?;
    if zip.is_empty() {
        return Err(RegistryError::InvalidDependency("depend_file is empty".into()).into());
    }
    if zip.len() > MAX_DEPENDENCY_ZIP {
        return Err(RegistryError::InvalidDependency(format!(
            "the zip is {} bytes; the limit is {MAX_DEPENDENCY_ZIP} bytes",
            zip.len()
        ))
        .into());
    }
    let store = app.registry.code().clone();
    let (stored, etag) = tokio::task::spawn_blocking(move || {
        let etag = hex::encode(md5::Md5::digest(&zip));
        store.put_zip(&zip).map(|stored| (stored, etag))
    })
    .await
    .map_err(ApiError::internal)??;
    let version = DependencyVersion {
        id: uuid::Uuid::new_v4().to_string(),
        dep_id: uuid::Uuid::new_v4().to_string(),
        project_id,
        file_name: format!("{name}.zip"),
        name,
        version: 1,
        runtime,
        description,
        digest: stored.digest,
        etag,
        size: stored.size,
        last_modified: chrono::Utc::now().timestamp_millis(),
    };
    let version = app.registry.create_dependency(version).await?;
    tracing::info!(dependency = %version.name, version = version.version, "dependency version created");
    Ok(Json(dependency_json(&version)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    marker: Option<String>,
    maxitems: Option<String>,
    /// The older name of `maxitems`.
    limit: Option<String>,
    ispublic: Option<String>,
    dependency_type: Option<String>,
    runtime: Option<String>,
    name: Option<String>,
}

/// `GET /v2/{project_id}/fgs/dependencies`: every version of the project's dependencies,
/// oldest first, filtered by `runtime` (exact) and `name` (substring). fgs has no public
/// dependencies: `dependency_type=public` (or `ispublic=true`) lists none.
pub async fn list(
    State(app): State<Arc<App>>,
    Path(project_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let bounds = paging(&q.marker, &q.maxitems.or(q.limit))?;
    let public_only = match q.dependency_type.as_deref().filter(|t| !t.is_empty()) {
        None | Some("all") | Some("private") => false,
        Some("public") => true,
        Some(other) => {
            return Err(ApiError::invalid_query(format!(
                "dependency_type={other:?}: public, private or all"
            )))
        }
    } || q.ispublic.as_deref() == Some("true");
    let items: Vec<_> = app
        .registry
        .dependencies(&project_id)
        .into_iter()
        .filter(|_| !public_only)
        .filter(|d| {
            q.runtime
                .as_deref()
                .is_none_or(|r| r.is_empty() || d.runtime == r)
        })
        .filter(|d| q.name.as_deref().is_none_or(|n| d.name.contains(n)))
        .collect();
    Ok(marker_page("dependencies", &items, bounds, |d| {
        dependency_json(d)
    }))
}

#[derive(Debug, Deserialize)]
pub struct VersionsQuery {
    marker: Option<String>,
    maxitems: Option<String>,
}

/// `GET /v2/{project_id}/fgs/dependencies/{depend_id}/version`
pub async fn list_versions(
    State(app): State<Arc<App>>,
    Path((project_id, dep_id)): Path<(String, String)>,
    Query(q): Query<VersionsQuery>,
) -> ApiResult {
    let bounds = paging(&q.marker, &q.maxitems)?;
    let items: Vec<_> = app
        .registry
        .dependencies(&project_id)
        .into_iter()
        .filter(|d| d.dep_id == dep_id)
        .collect();
    if items.is_empty() {
        return Err(RegistryError::DependencyNotFound(dep_id).into());
    }
    Ok(marker_page("dependencies", &items, bounds, |d| {
        dependency_json(d)
    }))
}

/// `GET /v2/{project_id}/fgs/dependencies/{depend_id}/version/{version}`
pub async fn show_version(
    State(app): State<Arc<App>>,
    Path((project_id, dep_id, version)): Path<(String, String, String)>,
) -> ApiResult {
    let found = app
        .registry
        .dependency_version(&project_id, &dep_id, &version)?;
    Ok(Json(dependency_json(&found)).into_response())
}

/// `DELETE /v2/{project_id}/fgs/dependencies/{depend_id}/version/{version}`: refused with
/// 412 FSS.1033 while a function version uses it.
pub async fn delete_version(
    State(app): State<Arc<App>>,
    Path((project_id, dep_id, version)): Path<(String, String, String)>,
) -> ApiResult {
    app.registry
        .delete_dependency_version(&project_id, &dep_id, &version)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
