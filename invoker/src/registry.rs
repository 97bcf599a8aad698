//! The functions of this host: persisted in the store, served from memory.
//!
//! Reads (every invocation looks its function up) never touch SQLite. Writes are serialized,
//! committed to the store first and then published in memory, so what an API call reports
//! is what a restart will load.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use fgs_limits::{parse_user_data, MemorySize};
use fgs_runtime::{CodeStore, FunctionSpec, Language};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::store::{Store, StoreError};
use crate::urn::{function_urn, FunctionRef};

/// A function definition as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionRecord {
    pub func_id: String,
    pub project_id: String,
    pub package: String,
    pub func_name: String,
    pub runtime: String,
    pub handler: String,
    pub memory_size: u32,
    pub timeout: u32,
    pub code_type: String,
    pub code_filename: String,
    pub code_size: u64,
    /// SHA-512 of the code package: its address in the code store.
    pub digest: String,
    pub user_data: String,
    pub encrypted_user_data: String,
    pub description: String,
    pub xrole: String,
    pub app_xrole: String,
    pub initializer_handler: String,
    pub initializer_timeout: Option<u32>,
    pub created: String,
    pub last_modified: String,
    /// Bumped by every change of code or configuration.
    pub revision: u64,
    /// `max_instance_num`: -1 unlimited, 0 disabled.
    #[serde(default = "unlimited")]
    pub max_instance_num: i32,
    /// Reserved instances: kept warm, counted against the tenant's concurrency.
    #[serde(default)]
    pub reserved_instances: u32,
    #[serde(default)]
    pub reserved_idle_mode: bool,
    /// The async notification policy, when one is configured.
    #[serde(default)]
    pub async_config: Option<AsyncConfig>,
}

fn unlimited() -> i32 {
    -1
}

/// A function's async invocation policy (`async-invoke-config`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AsyncConfig {
    pub max_async_event_age_in_seconds: u32,
    pub max_async_retry_attempts: u32,
    pub on_success: Option<Destination>,
    pub on_failure: Option<Destination>,
    pub enable_async_status_log: bool,
    pub created_time: String,
    pub last_modified: String,
}

/// Where the outcome of an async request is sent: another function (FunctionGraph).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Destination {
    /// The destination type as given (`FunctionGraph`).
    pub destination: String,
    /// The destination parameters as given (a JSON string with `func_urn`).
    pub param: String,
    /// The destination function, parsed from `param`.
    pub func_urn: String,
}

/// A function as served: its record and what the runtime needs to run it.
#[derive(Debug)]
pub struct Entry {
    /// Creation order, for listing.
    pub seq: i64,
    pub record: FunctionRecord,
    pub spec: Arc<FunctionSpec>,
}

type Key = (String, String, String);

/// The function table.
pub struct Registry {
    store: Store,
    code: CodeStore,
    region: String,
    functions: RwLock<HashMap<Key, Arc<Entry>>>,
    writes: tokio::sync::Mutex<()>,
}

fn key(project_id: &str, package: &str, name: &str) -> Key {
    (
        project_id.to_string(),
        package.to_string(),
        name.to_string(),
    )
}

impl Registry {
    /// Loads every stored function.
    pub fn load(store: Store, code: CodeStore, region: String) -> Result<Self, StoreError> {
        let mut functions = HashMap::new();
        for (seq, record) in store.load_functions()? {
            match spec_for(&record, &code, &region) {
                Ok(spec) => {
                    let k = key(&record.project_id, &record.package, &record.func_name);
                    functions.insert(
                        k,
                        Arc::new(Entry {
                            seq,
                            record,
                            spec: Arc::new(spec),
                        }),
                    );
                }
                Err(e) => {
                    tracing::error!(func = %record.func_name, error = %e.msg, "skipping stored function")
                }
            }
        }
        Ok(Self {
            store,
            code,
            region,
            functions: RwLock::new(functions),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn code(&self) -> &CodeStore {
        &self.code
    }

    /// The function a URN points at (its `latest` version).
    pub fn get(&self, project_id: &str, func: &FunctionRef) -> Result<Arc<Entry>, ApiError> {
        let found = self
            .functions
            .read()
            .unwrap()
            .get(&key(project_id, &func.package, &func.name))
            .cloned();
        let entry = found.ok_or_else(|| {
            ApiError::function_not_found(&format!("{}:{}", func.package, func.name))
        })?;
        func.require_latest()?;
        Ok(entry)
    }

    /// The projects that have functions.
    pub fn projects(&self) -> Vec<String> {
        let mut projects: Vec<String> = self
            .functions
            .read()
            .unwrap()
            .keys()
            .map(|(p, _, _)| p.clone())
            .collect();
        projects.sort();
        projects.dedup();
        projects
    }

    /// A project's functions in creation order.
    pub fn list(&self, project_id: &str) -> Vec<Arc<Entry>> {
        let mut list: Vec<_> = self
            .functions
            .read()
            .unwrap()
            .values()
            .filter(|e| e.record.project_id == project_id)
            .cloned()
            .collect();
        list.sort_by_key(|e| e.seq);
        list
    }

    /// Stores a new function; 409 FSS.1061 if the name is taken in its package.
    pub async fn create(&self, record: FunctionRecord) -> Result<Arc<Entry>, ApiError> {
        let _guard = self.writes.lock().await;
        let spec = spec_for(&record, &self.code, &self.region)?;
        let k = key(&record.project_id, &record.package, &record.func_name);
        if self.functions.read().unwrap().contains_key(&k) {
            return Err(ApiError::function_exists(&record.func_name));
        }
        let seq = match self.store.insert_function(record.clone()).await {
            Err(StoreError::Conflict) => return Err(ApiError::function_exists(&record.func_name)),
            other => other?,
        };
        let entry = Arc::new(Entry {
            seq,
            record,
            spec: Arc::new(spec),
        });
        self.functions.write().unwrap().insert(k, entry.clone());
        Ok(entry)
    }

    /// Replaces a function's record with `change(record)`, bumping its revision (so new
    /// invocations use new instances) when `new_revision` is set.
    pub async fn update(
        &self,
        project_id: &str,
        func: &FunctionRef,
        new_revision: bool,
        change: impl FnOnce(&mut FunctionRecord) -> Result<(), ApiError>,
    ) -> Result<Arc<Entry>, ApiError> {
        let _guard = self.writes.lock().await;
        let current = self.get(project_id, func)?;
        let mut record = current.record.clone();
        change(&mut record)?;
        if new_revision {
            record.revision = current.record.revision + 1;
            record.last_modified = now();
        }
        let spec = spec_for(&record, &self.code, &self.region)?;
        self.store.update_function(record.clone()).await?;
        let entry = Arc::new(Entry {
            seq: current.seq,
            record,
            spec: Arc::new(spec),
        });
        let k = key(project_id, &func.package, &func.name);
        self.functions.write().unwrap().insert(k, entry.clone());
        Ok(entry)
    }

    /// Deletes a whole function; returns what was deleted.
    pub async fn delete(
        &self,
        project_id: &str,
        func: &FunctionRef,
    ) -> Result<Arc<Entry>, ApiError> {
        let _guard = self.writes.lock().await;
        let entry = self.get(project_id, func)?;
        self.store
            .delete_function(
                project_id.to_string(),
                func.package.clone(),
                func.name.clone(),
            )
            .await?;
        self.functions
            .write()
            .unwrap()
            .remove(&key(project_id, &func.package, &func.name));
        Ok(entry)
    }
}

/// The current time in FunctionGraph's `last_modified` form (UTC).
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn spec_for(
    record: &FunctionRecord,
    code: &CodeStore,
    region: &str,
) -> Result<FunctionSpec, ApiError> {
    let language = Language::from_runtime(&record.runtime)?;
    let memory = MemorySize::new(i64::from(record.memory_size))?;
    let mut user_data = parse_user_data(&record.user_data)?;
    user_data.extend(parse_user_data(&record.encrypted_user_data)?);
    Ok(FunctionSpec {
        function_id: record.func_id.clone(),
        revision: record.revision,
        urn: function_urn(
            region,
            &record.project_id,
            &record.package,
            &record.func_name,
            Some("latest"),
        ),
        project_id: record.project_id.clone(),
        package: record.package.clone(),
        name: record.func_name.clone(),
        version: "latest".into(),
        language,
        handler: record.handler.clone(),
        memory,
        timeout_secs: record.timeout,
        initializer: record
            .initializer_timeout
            .filter(|_| !record.initializer_handler.is_empty())
            .map(|t| (record.initializer_handler.clone(), t)),
        user_data,
        code_dir: code.tree(&record.digest),
    })
}
