//! Wire models of the function API (field names as in the official SDK models) and the
//! validation of incoming definitions.

use base64::Engine;
use fgs_limits::{
    parse_user_data, validate_description, validate_func_name, validate_handler,
    validate_initializer, validate_package, FunctionLimits, LimitError, MemorySize, Timeout,
};
use fgs_runtime::{CodeStore, Language};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::api::ApiError;
use crate::registry::{Entry, FunctionRecord};

/// `func_code`: base64 of the inline source or of the zip package.
#[derive(Debug, Default, Deserialize)]
pub struct FuncCode {
    pub file: Option<String>,
    /// The package's OBS address: fgs has no OBS, so only an empty one is accepted.
    pub link: Option<String>,
}

/// The configuration fields shared by create_function and update_function_config.
#[derive(Debug, Default, Deserialize)]
pub struct ConfigFields {
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub memory_size: Option<i64>,
    pub timeout: Option<i64>,
    pub user_data: Option<String>,
    pub encrypted_user_data: Option<String>,
    pub description: Option<String>,
    pub initializer_handler: Option<String>,
    pub initializer_timeout: Option<i64>,
    pub xrole: Option<String>,
    pub app_xrole: Option<String>,
    /// Dependency package versions (create_function; fgs also takes it in update_config).
    pub depend_version_list: Option<Vec<String>>,
}

/// The code fields shared by create_function and update_function_code.
#[derive(Debug, Default, Deserialize)]
pub struct CodeFields {
    pub code_type: Option<String>,
    pub code_filename: Option<String>,
    pub func_code: Option<FuncCode>,
    /// Dependency package versions, replacing the function's when given.
    pub depend_version_list: Option<Vec<String>>,
}

/// `CreateFunctionRequestBody`.
#[derive(Debug, Deserialize)]
pub struct CreateFunctionBody {
    pub func_name: Option<String>,
    pub package: Option<String>,
    #[serde(flatten)]
    pub config: ConfigFields,
    #[serde(flatten)]
    pub code: CodeFields,
    /// Every other field: refused unless it asks for nothing ([`refuse_unimplemented`]).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `UpdateFunctionConfigRequestBody`.
#[derive(Debug, Deserialize)]
pub struct UpdateConfigBody {
    pub func_name: Option<String>,
    pub strategy_config: Option<StrategyConfigBody>,
    #[serde(flatten)]
    pub config: ConfigFields,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `StrategyConfig` in update_function_config.
#[derive(Debug, Deserialize)]
pub struct StrategyConfigBody {
    /// The function's `max_instance_num`, as `config-max-instance` sets it.
    pub concurrency: Option<i64>,
    /// Requests per instance: fgs runs one at a time, so only 1.
    pub concurrent_num: Option<i64>,
}

impl StrategyConfigBody {
    pub fn apply(&self, record: &mut FunctionRecord) -> Result<(), ApiError> {
        if let Some(n) = self.concurrent_num.filter(|n| *n != 1) {
            return Err(LimitError::Concurrency(format!(
                "strategy_config.concurrent_num {n}: fgs runs one request per instance (1)"
            ))
            .into());
        }
        if let Some(n) = self.concurrency {
            record.max_instance_num = fgs_limits::validate_max_instances(n)?;
        }
        Ok(())
    }
}

/// `UpdateFunctionCodeRequestBody`.
#[derive(Debug, Deserialize)]
pub struct UpdateCodeBody {
    #[serde(flatten)]
    pub code: CodeFields,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Fields fgs accepts when they carry their default (what SDKs and Terraform send for a
/// feature left off), beyond the empty values [`asks_nothing`] knows.
const DEFAULTS: &[(&str, &str)] = &[
    ("type", "\"v2\""),
    ("enterprise_project_id", "\"0\""),
    ("ephemeral_storage", "512"),
];

/// Refuses (400 FSS.0400, naming it) every field of `other` — the fields fgs does not
/// implement (`func_vpc`, `mount_config`, `custom_image`, `log_config`, …) and unknown ones —
/// unless it asks for nothing: null, empty, false, 0, a documented default, or an object whose
/// `enabled` is false or whose fields all ask for nothing. Never accepted and ignored.
pub fn refuse_unimplemented(other: &Map<String, Value>) -> Result<(), ApiError> {
    for (name, value) in other {
        let default = DEFAULTS.iter().any(|(n, v)| {
            n == name && serde_json::from_str::<Value>(v).ok().as_ref() == Some(value)
        });
        if !default && !asks_nothing(value) {
            return Err(ApiError::invalid_parameter(format!(
                "{name} = {value} is not supported by fgs (leave it out, or empty)"
            )));
        }
    }
    Ok(())
}

fn asks_nothing(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => {
            o.get("enabled") == Some(&Value::Bool(false)) || o.values().all(asks_nothing)
        }
    }
}

impl ConfigFields {
    /// Checks every field and writes the valid configuration into `record`. The required
    /// fields (runtime, handler, memory_size, timeout) must be present.
    pub fn apply(
        self,
        record: &mut FunctionRecord,
        limits: &FunctionLimits,
    ) -> Result<(), ApiError> {
        let runtime = self
            .runtime
            .ok_or_else(|| LimitError::Runtime("runtime is required".into()))?;
        let language = Language::from_runtime(&runtime)?;
        if !record.runtime.is_empty() && record.runtime != runtime {
            return Err(LimitError::Runtime(format!(
                "the runtime of a function cannot be changed ({} → {runtime}); create a new function",
                record.runtime
            ))
            .into());
        }
        let handler = self
            .handler
            .ok_or_else(|| LimitError::Handler("handler is required".into()))?;
        // A custom runtime runs its `bootstrap`; the API reference's own example names the
        // handler just that (a fixed name: no path is built from it).
        if !(matches!(language, Language::Custom | Language::Http) && handler == "bootstrap") {
            validate_handler(&handler, limits)?;
        }
        let memory = self
            .memory_size
            .ok_or_else(|| LimitError::Memory("memory_size is required".into()))?;
        let memory = MemorySize::new(memory)?;
        let timeout = self
            .timeout
            .ok_or_else(|| LimitError::Timeout("timeout is required".into()))?;
        let timeout = Timeout::new(timeout, limits)?;
        let user_data = self.user_data.unwrap_or_default();
        let encrypted_user_data = match self.encrypted_user_data {
            // The masked form that show returned: the stored secret stays.
            Some(given) if given == masked_user_data(&record.encrypted_user_data) => {
                record.encrypted_user_data.clone()
            }
            given => given.unwrap_or_default(),
        };
        let total =
            parse_user_data(&user_data)?.len() + parse_user_data(&encrypted_user_data)?.len();
        if total > fgs_limits::USER_DATA_MAX_ITEMS {
            return Err(LimitError::UserDataCount {
                count: total,
                max: fgs_limits::USER_DATA_MAX_ITEMS,
            }
            .into());
        }
        let description = self.description.unwrap_or_default();
        validate_description(&description, limits)?;
        let initializer_handler = self.initializer_handler.unwrap_or_default();
        let initializer_timeout = if initializer_handler.is_empty() {
            None
        } else {
            validate_initializer(&initializer_handler, self.initializer_timeout, limits)?;
            self.initializer_timeout.map(|t| t as u32)
        };
        record.runtime = runtime;
        record.handler = handler;
        record.memory_size = memory.mb();
        record.timeout = timeout.secs();
        record.user_data = user_data;
        record.encrypted_user_data = encrypted_user_data;
        record.description = description;
        record.initializer_handler = initializer_handler;
        record.initializer_timeout = initializer_timeout;
        if let Some(xrole) = self.xrole {
            record.xrole = xrole;
        }
        if let Some(app_xrole) = self.app_xrole {
            record.app_xrole = app_xrole;
        }
        if let Some(list) = self.depend_version_list {
            record.depend_version_list = list;
        }
        Ok(())
    }
}

impl CodeFields {
    /// Decodes, checks and stores the code; writes its type, name, size and digest into
    /// `record` (whose runtime and handler must already be set).
    pub fn apply(self, record: &mut FunctionRecord, code: &CodeStore) -> Result<(), ApiError> {
        let code_type = self
            .code_type
            .ok_or_else(|| LimitError::CodeType("code_type is required".into()))?;
        if let Some(link) = self
            .func_code
            .as_ref()
            .and_then(|c| c.link.as_deref())
            .filter(|l| !l.is_empty())
        {
            return Err(LimitError::CodeType(format!(
                "func_code.link {link:?}: fgs has no OBS; send the code in func_code.file"
            ))
            .into());
        }
        let file = self
            .func_code
            .and_then(|c| c.file)
            .filter(|f| !f.is_empty());
        let decode = |file: Option<String>| -> Result<Vec<u8>, ApiError> {
            let file = file.ok_or_else(|| ApiError::code_required("func_code.file is empty"))?;
            base64::engine::general_purpose::STANDARD
                .decode(file.trim())
                .map_err(|e| {
                    ApiError::invalid_code(format!("func_code.file is not valid base64: {e}"))
                })
        };
        let language = Language::from_runtime(&record.runtime)?;
        let (stored, filename) = match code_type.as_str() {
            "inline" => {
                let source = decode(file)?;
                let filename = language.inline_filename(&record.handler);
                (code.put_inline(&filename, &source)?, filename)
            }
            "zip" => {
                let filename = self
                    .code_filename
                    .filter(|f| !f.is_empty())
                    .ok_or_else(|| {
                        ApiError::invalid_parameter(
                            "code_filename is required when code_type is zip",
                        )
                    })?;
                if !filename.ends_with(".zip") {
                    return Err(ApiError::invalid_file_type(&filename));
                }
                let zip = decode(file)?;
                (code.put_zip(&zip)?, filename)
            }
            "obs" | "jar" | "Custom-Image-Swr" => {
                return Err(LimitError::CodeType(format!(
                    "code_type {code_type:?} is not supported by fgs; use inline or zip"
                ))
                .into())
            }
            other => {
                return Err(LimitError::CodeType(format!("unknown code_type {other:?}")).into())
            }
        };
        if let Some(list) = self.depend_version_list {
            record.depend_version_list = list;
        }
        record.code_type = code_type;
        record.code_filename = filename;
        record.code_size = stored.size;
        record.digest = stored.digest;
        Ok(())
    }
}

impl CreateFunctionBody {
    /// Validates the name and package; the caller applies config and code.
    pub fn identity(&self, limits: &FunctionLimits) -> Result<(String, String), ApiError> {
        let name = self
            .func_name
            .clone()
            .ok_or_else(|| LimitError::FuncName("func_name is required".into()))?;
        validate_func_name(&name, limits)?;
        let package = self
            .package
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "default".into());
        validate_package(&package)?;
        Ok((name, package))
    }
}

fn strategy_config(record: &FunctionRecord) -> Value {
    json!({ "concurrency": record.max_instance_num, "concurrent_num": 1 })
}

/// `depend_list`: the ids of the dependencies (not their versions) the function uses.
fn depend_list(entry: &Entry) -> Vec<&str> {
    entry
        .dependencies
        .iter()
        .map(|d| d.dep_id.as_str())
        .collect()
}

fn dependencies_json(entry: &Entry) -> Vec<Value> {
    entry
        .dependencies
        .iter()
        .map(|d| crate::api::dependencies::dependency_json(d))
        .collect()
}

/// The function object returned by create, show config, update config and list.
pub fn function_json(entry: &Entry, region: &str) -> Value {
    let r = &entry.record;
    let memory = MemorySize::new(i64::from(r.memory_size))
        .map(|m| m.cpu_millicores())
        .unwrap_or(0);
    json!({
        "func_id": r.func_id,
        "resource_id": r.func_id,
        "func_urn": entry.spec.urn,
        "func_name": r.func_name,
        "domain_id": r.project_id,
        "namespace": r.project_id,
        "project_name": region,
        "package": r.package,
        "runtime": r.runtime,
        "timeout": r.timeout,
        "handler": r.handler,
        "memory_size": r.memory_size,
        "cpu": memory,
        "code_type": r.code_type,
        "code_url": "",
        "code_filename": r.code_filename,
        "code_size": r.code_size,
        "user_data": r.user_data,
        "encrypted_user_data": masked_user_data(&r.encrypted_user_data),
        "digest": r.digest,
        "version": r.version,
        "version_description": r.version_description,
        "image_name": format!("{}-{}", r.version, &r.digest[..12.min(r.digest.len())]),
        "xrole": r.xrole,
        "app_xrole": r.app_xrole,
        "description": r.description,
        "last_modified": r.last_modified,
        "initializer_handler": r.initializer_handler,
        "initializer_timeout": r.initializer_timeout.unwrap_or(0),
        "strategy_config": strategy_config(r),
        "reserved_instance_count": r.reserved_instances,
        "depend_list": depend_list(entry),
        "depend_version_list": r.depend_version_list,
        "dependencies": dependencies_json(entry),
        "ephemeral_storage": 512,
        "type": "v2",
        "long_time": false,
        "enable_dynamic_memory": false,
        "is_stateful_function": false,
    })
}

/// The show_function_code / update_function_code response.
pub fn code_json(entry: &Entry, package: &[u8]) -> Value {
    let r = &entry.record;
    json!({
        "func_urn": entry.spec.urn,
        "func_name": r.func_name,
        "domain_id": r.project_id,
        "runtime": r.runtime,
        "code_type": r.code_type,
        "code_url": "",
        "code_filename": r.code_filename,
        "code_size": r.code_size,
        "digest": r.digest,
        "last_modified": r.last_modified,
        "func_code": { "file": base64::engine::general_purpose::STANDARD.encode(package), "link": "" },
        "depend_list": depend_list(entry),
        "depend_version_list": r.depend_version_list,
        "strategy_config": strategy_config(r),
        "dependencies": dependencies_json(entry),
    })
}

/// `encrypted_user_data` as the API shows it: the names, each value `******` (fgs's choice; the
/// values are never returned). Sending this back in an update keeps the stored values.
pub(crate) fn masked_user_data(raw: &str) -> String {
    match fgs_limits::parse_user_data(raw) {
        Ok(vars) if !vars.is_empty() => serde_json::Value::Object(
            vars.into_iter()
                .map(|(name, _)| (name, serde_json::Value::from("******")))
                .collect(),
        )
        .to_string(),
        _ => String::new(),
    }
}
