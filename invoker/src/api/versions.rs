//! Versions and aliases: publish and list versions; create, list, show, update and delete
//! aliases.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::model::function_json;
use crate::api::{marker_page, paging, ApiError, App, FunctionPath, JsonBody};
use crate::registry::{now, Alias, Function, RegistryError, Rule, Strategy};
use crate::urn::function_urn;

type ApiResult = Result<Response, ApiError>;

/// `CreateFunctionVersionRequestBody`.
#[derive(Debug, Deserialize)]
pub struct PublishBody {
    digest: Option<String>,
    version: Option<String>,
    description: Option<String>,
}

/// `POST /v2/{project_id}/fgs/functions/{function_urn}/versions`: publishes `latest`.
pub async fn publish(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<PublishBody>,
) -> ApiResult {
    let description = body.description.unwrap_or_default();
    fgs_limits::validate_description(&description, &app.limits)?;
    let entry = app
        .registry
        .publish(
            &path.project_id,
            &path.func,
            body.version,
            description,
            body.digest,
        )
        .await?;
    tracing::info!(func = %entry.spec.urn, "function version published");
    Ok(Json(function_json(&entry, app.registry.region())).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    marker: Option<String>,
    maxitems: Option<String>,
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/versions?marker=&maxitems=`: `latest`
/// first, then the published versions oldest first; paged as list_functions is ([`marker_page`]).
pub async fn list(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let function = app.registry.function(&path.project_id, &path.func)?;
    let bounds = paging(&q.marker, &q.maxitems)?;
    let entries: Vec<_> = function.entries().collect();
    Ok(marker_page("versions", &entries, bounds, |e| {
        function_json(e, app.registry.region())
    }))
}

/// `VersionStrategyRules`.
#[derive(Debug, Deserialize)]
pub struct RuleBody {
    rule_type: Option<String>,
    param: Option<String>,
    op: Option<String>,
    value: Option<String>,
}

/// `VersionStrategy`.
#[derive(Debug, Deserialize)]
pub struct StrategyBody {
    rules: Option<Vec<RuleBody>>,
    combine_type: Option<String>,
}

/// `CreateVersionAliasRequestBody` and `UpdateVersionAliasRequestBody` (without `name`).
#[derive(Debug, Deserialize)]
pub struct AliasBody {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    additional_version_weights: Option<BTreeMap<String, i64>>,
    additional_version_strategy: Option<BTreeMap<String, StrategyBody>>,
}

impl AliasBody {
    fn into_alias(self, name: String, app: &App) -> Result<Alias, ApiError> {
        let version = self
            .version
            .filter(|v| !v.is_empty())
            .ok_or_else(|| RegistryError::InvalidVersion("version is required".into()))?;
        let description = self.description.unwrap_or_default();
        fgs_limits::validate_description(&description, &app.limits)?;
        let weights = self
            .additional_version_weights
            .unwrap_or_default()
            .into_iter()
            .map(|(v, w)| match u32::try_from(w) {
                Ok(w) => Ok((v, w)),
                Err(_) => Err(RegistryError::Weight(format!(
                    "{v}: {w} is not a percentage from 0 to 100"
                ))),
            })
            .collect::<Result<_, _>>()?;
        let strategy = self
            .additional_version_strategy
            .unwrap_or_default()
            .into_iter()
            .map(|(v, s)| {
                let rules = s
                    .rules
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| Rule {
                        rule_type: r.rule_type.unwrap_or_default(),
                        param: r.param.unwrap_or_default(),
                        op: r.op.unwrap_or_default(),
                        value: r.value.unwrap_or_default(),
                    })
                    .collect();
                let combine_type = s.combine_type.unwrap_or_else(|| "and".into());
                (
                    v,
                    Strategy {
                        combine_type,
                        rules,
                    },
                )
            })
            .collect();
        Ok(Alias {
            name,
            version,
            description,
            last_modified: now(),
            weights,
            strategy,
        })
    }
}

fn alias_json(app: &App, function: &Function, alias: &Alias) -> Value {
    let r = &function.latest.record;
    json!({
        "name": alias.name,
        "version": alias.version,
        "description": alias.description,
        "last_modified": alias.last_modified,
        "alias_urn": function_urn(
            app.registry.region(),
            &r.project_id,
            &r.package,
            &r.func_name,
            Some(&format!("!{}", alias.name)),
        ),
        "additional_version_weights": alias.weights,
        "additional_version_strategy": alias.strategy,
    })
}

/// `POST /v2/{project_id}/fgs/functions/{function_urn}/aliases`
pub async fn create_alias(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<AliasBody>,
) -> ApiResult {
    let name = body.name.clone().unwrap_or_default();
    put_alias(&app, &path, body, name, false).await
}

/// `PUT /v2/{project_id}/fgs/functions/{function_urn}/aliases/{alias_name}`: takes effect on
/// the next invocation.
pub async fn update_alias(
    State(app): State<Arc<App>>,
    path: FunctionPath,
    JsonBody(body): JsonBody<AliasBody>,
) -> ApiResult {
    let name = path.alias_name.clone().unwrap_or_default();
    if body.name.as_ref().is_some_and(|n| *n != name) {
        return Err(RegistryError::InvalidAlias(format!(
            "an alias cannot be renamed ({name} in the path, {:?} in the body)",
            body.name
        ))
        .into());
    }
    put_alias(&app, &path, body, name, true).await
}

async fn put_alias(
    app: &App,
    path: &FunctionPath,
    body: AliasBody,
    name: String,
    replace: bool,
) -> ApiResult {
    let alias = body.into_alias(name, app)?;
    let alias = app
        .registry
        .put_alias(&path.project_id, &path.func, alias, replace)
        .await?;
    let function = app.registry.function(&path.project_id, &path.func)?;
    Ok(Json(alias_json(app, &function, &alias)).into_response())
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/aliases`: a JSON array.
pub async fn list_aliases(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let function = app.registry.function(&path.project_id, &path.func)?;
    let aliases: Vec<Value> = function
        .aliases
        .iter()
        .map(|a| alias_json(&app, &function, a))
        .collect();
    Ok(Json(aliases).into_response())
}

/// `GET /v2/{project_id}/fgs/functions/{function_urn}/aliases/{alias_name}`
pub async fn show_alias(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let function = app.registry.function(&path.project_id, &path.func)?;
    let name = path.alias_name.unwrap_or_default();
    let alias = function
        .alias(&name)
        .ok_or(RegistryError::AliasNotFound(name))?;
    Ok(Json(alias_json(&app, &function, alias)).into_response())
}

/// `DELETE /v2/{project_id}/fgs/functions/{function_urn}/aliases/{alias_name}`
pub async fn delete_alias(State(app): State<Arc<App>>, path: FunctionPath) -> ApiResult {
    let name = path.alias_name.unwrap_or_default();
    app.registry
        .delete_alias(&path.project_id, &path.func, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
