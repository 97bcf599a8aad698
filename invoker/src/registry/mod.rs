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

use crate::store::{PackageKind, Snapshot, Store, StoreError};
use crate::urn::{function_urn, FunctionRef, Qualifier};

mod alias;
pub mod dependencies;
mod error;
pub mod names;
pub mod triggers;

pub use alias::{Alias, Rule, Strategy};
pub use dependencies::DependencyVersion;
pub use error::RegistryError;
use names::NameKind;
pub use triggers::Trigger;

/// The version every function has: the one that changes.
pub const LATEST: &str = "latest";

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
    /// `latest`, or the name of the published version this record is a snapshot of.
    #[serde(default = "latest")]
    pub version: String,
    /// `version_description` of a published version.
    #[serde(default)]
    pub version_description: String,
    /// Ids of the dependency package versions the function uses, in order.
    #[serde(default)]
    pub depend_version_list: Vec<String>,
}

fn latest() -> String {
    LATEST.into()
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

/// A function version as served: its record and what the runtime needs to run it. `latest`
/// and every published version are each an `Entry`.
#[derive(Debug)]
pub struct Entry {
    /// The function's creation order, for listing.
    pub seq: i64,
    pub record: FunctionRecord,
    pub spec: Arc<FunctionSpec>,
    /// The dependency packages `record.depend_version_list` names, in order.
    pub dependencies: Vec<Arc<DependencyVersion>>,
}

impl Entry {
    /// Validates `record` and makes what the runtime needs of it, its dependency packages
    /// resolved in `table`.
    fn build(
        seq: i64,
        record: FunctionRecord,
        code: &CodeStore,
        region: &str,
        table: &[Arc<DependencyVersion>],
    ) -> Result<Self, RegistryError> {
        let dependencies = dependencies::resolve(
            table,
            &record.project_id,
            &record.runtime,
            &record.depend_version_list,
        )?;
        let spec = spec_for(&record, code, region, &dependencies)?;
        Ok(Entry {
            seq,
            record,
            spec: Arc::new(spec),
            dependencies,
        })
    }

    /// The version's identity on this host: its instances, admission, async queue and async
    /// records are its own (`func_id` for `latest`, `func_id:version` for a published one).
    pub fn id(&self) -> &str {
        &self.spec.function_id
    }

    pub fn is_latest(&self) -> bool {
        self.record.version == LATEST
    }
}

/// A function: `latest`, its published versions and its aliases.
#[derive(Debug, Clone)]
pub struct Function {
    pub latest: Arc<Entry>,
    /// Published versions, oldest first.
    pub versions: Vec<Arc<Entry>>,
    /// Aliases, oldest first.
    pub aliases: Vec<Arc<Alias>>,
    /// Triggers of every version and alias, oldest first.
    pub triggers: Vec<Arc<Trigger>>,
}

impl Function {
    /// `latest` or a published version.
    pub fn version(&self, name: &str) -> Option<&Arc<Entry>> {
        if name == LATEST {
            return Some(&self.latest);
        }
        self.versions.iter().find(|v| v.record.version == name)
    }

    pub fn alias(&self, name: &str) -> Option<&Arc<Alias>> {
        self.aliases.iter().find(|a| a.name == name)
    }

    /// `latest`, then every published version.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<Entry>> {
        std::iter::once(&self.latest).chain(self.versions.iter())
    }

    /// What a qualifier names: a version, or an alias (versions and aliases share one
    /// namespace, so `...:prod` finds alias `prod` as `...:!prod` does).
    fn resolve(&self, qualifier: &Qualifier) -> Result<Target<'_>, RegistryError> {
        match qualifier {
            Qualifier::None => Ok(Target::Version(&self.latest)),
            Qualifier::Version(v) => match (self.version(v), self.alias(v)) {
                (Some(entry), _) => Ok(Target::Version(entry)),
                (None, Some(alias)) => Ok(Target::Alias(alias)),
                (None, None) => Err(RegistryError::VersionNotFound(v.clone())),
            },
            Qualifier::Alias(a) => self
                .alias(a)
                .map(Target::Alias)
                .ok_or_else(|| RegistryError::AliasNotFound(a.clone())),
        }
    }

    /// The version an alias sends `version` to: it exists while the alias does (a version an
    /// alias points at cannot be deleted).
    fn alias_version(&self, version: &str) -> Result<&Arc<Entry>, RegistryError> {
        self.version(version)
            .ok_or_else(|| RegistryError::VersionNotFound(version.to_string()))
    }
}

enum Target<'a> {
    Version(&'a Arc<Entry>),
    Alias(&'a Arc<Alias>),
}

/// How many versions (latest included) and aliases a function may have.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    pub versions: usize,
    pub aliases: usize,
    /// Dependency package versions per project.
    pub dependencies: usize,
}

pub type Key = (String, String, String);

/// The function table.
pub struct Registry {
    store: Store,
    code: CodeStore,
    region: String,
    quotas: Quotas,
    /// Every project's dependency package versions, oldest first.
    dependencies: RwLock<Vec<Arc<DependencyVersion>>>,
    functions: RwLock<HashMap<Key, Arc<Function>>>,
    writes: tokio::sync::Mutex<()>,
}

fn key(project_id: &str, package: &str, name: &str) -> Key {
    (
        project_id.to_string(),
        package.to_string(),
        name.to_string(),
    )
}

fn record_key(r: &FunctionRecord) -> Key {
    key(&r.project_id, &r.package, &r.func_name)
}

impl Registry {
    /// Loads every stored function with its versions and aliases (in a shared database, the
    /// code packages this host has not unpacked yet are fetched first).
    pub async fn load(
        store: Store,
        code: CodeStore,
        region: String,
        quotas: Quotas,
    ) -> Result<Self, RegistryError> {
        let registry = Self {
            store,
            code,
            region,
            quotas,
            dependencies: RwLock::new(Vec::new()),
            functions: RwLock::new(HashMap::new()),
            writes: tokio::sync::Mutex::new(()),
        };
        registry.load_dependencies().await?;
        let snapshot = registry.store.snapshot(None).await?;
        registry.fetch_code(&snapshot).await;
        *registry.functions.write().unwrap() = registry.build(snapshot);
        Ok(registry)
    }

    /// The functions of a snapshot as served; a record that no longer validates is skipped
    /// (and logged) rather than failing the rest.
    fn build(&self, snapshot: Snapshot) -> HashMap<Key, Arc<Function>> {
        let entry_of = |seq: i64, record: FunctionRecord| match self.entry(seq, record.clone()) {
            Ok(entry) => Some(entry),
            Err(e) => {
                tracing::error!(func = %record.func_name, version = %record.version, error = %e, "skipping stored function");
                None
            }
        };
        let mut functions: HashMap<Key, Function> = HashMap::new();
        for (seq, record) in snapshot.functions {
            let k = record_key(&record);
            if let Some(latest) = entry_of(seq, record) {
                functions.insert(
                    k,
                    Function {
                        latest,
                        versions: Vec::new(),
                        aliases: Vec::new(),
                        triggers: Vec::new(),
                    },
                );
            }
        }
        for record in snapshot.versions {
            if let Some(function) = functions.get_mut(&record_key(&record)) {
                if let Some(entry) = entry_of(function.latest.seq, record) {
                    function.versions.push(entry);
                }
            }
        }
        for (k, alias) in snapshot.aliases {
            if let Some(function) = functions.get_mut(&k) {
                function.aliases.push(Arc::new(alias));
            }
        }
        for trigger in snapshot.triggers {
            let k = key(&trigger.project_id, &trigger.package, &trigger.func_name);
            if let Some(function) = functions.get_mut(&k) {
                function.triggers.push(Arc::new(trigger));
            }
        }
        functions
            .into_iter()
            .map(|(k, f)| (k, Arc::new(f)))
            .collect()
    }

    async fn load_dependencies(&self) -> Result<(), RegistryError> {
        let dependencies = self.store.load_dependencies().await?;
        for d in &dependencies {
            self.fetch_package(&d.digest).await;
        }
        *self.dependencies.write().unwrap() = dependencies.into_iter().map(Arc::new).collect();
        Ok(())
    }

    /// Reads one function again (another host changed it): what was served before and what
    /// is served now (`None`: deleted).
    pub async fn reload(&self, key: &Key) -> Result<Change, RegistryError> {
        let _guard = self.writes.lock().await;
        let snapshot = self.store.snapshot(Some(key)).await?;
        self.fetch_code(&snapshot).await;
        let after = self.build(snapshot).remove(key);
        let mut functions = self.functions.write().unwrap();
        let before = match &after {
            Some(function) => functions.insert(key.clone(), function.clone()),
            None => functions.remove(key),
        };
        Ok(Change { before, after })
    }

    /// Reads the dependency packages again (another host changed them).
    pub async fn reload_dependencies(&self) -> Result<(), RegistryError> {
        let _guard = self.writes.lock().await;
        self.load_dependencies().await
    }

    /// Reads everything again (notices may have been missed): every function that was or is
    /// served.
    pub async fn resync(&self) -> Result<Vec<Change>, RegistryError> {
        let _guard = self.writes.lock().await;
        self.load_dependencies().await?;
        let snapshot = self.store.snapshot(None).await?;
        self.fetch_code(&snapshot).await;
        let now = self.build(snapshot);
        let before = std::mem::replace(&mut *self.functions.write().unwrap(), now.clone());
        let keys: std::collections::HashSet<&Key> = before.keys().chain(now.keys()).collect();
        Ok(keys
            .into_iter()
            .map(|k| Change {
                before: before.get(k).cloned(),
                after: now.get(k).cloned(),
            })
            .collect())
    }

    /// Unpacks the code packages of a snapshot this host does not have yet (shared database).
    async fn fetch_code(&self, snapshot: &Snapshot) {
        let records = snapshot
            .functions
            .iter()
            .map(|(_, r)| r)
            .chain(snapshot.versions.iter());
        for record in records {
            self.fetch_package(&record.digest).await;
        }
    }

    /// Unpacks one package from the shared database into the code store, unless it is there.
    /// A package that cannot be had is logged: its function is served, and its invocations
    /// fail as a function whose code is missing does.
    async fn fetch_package(&self, digest: &str) {
        if !self.store.is_shared()
            || !CodeStore::is_digest(digest)
            || self.code.tree(digest).is_dir()
        {
            return;
        }
        if let Err(e) = self.unpack_shared(digest).await {
            tracing::error!(digest, error = %e, "cannot fetch a code package from the store");
        }
    }

    /// The package's own kind, as stored with it, says how to unpack it.
    async fn unpack_shared(&self, digest: &str) -> Result<(), RegistryError> {
        let Some((stored_kind, bytes)) = self.store.package(digest).await? else {
            return Err(RegistryError::Invalid(format!(
                "the store has no package {digest}"
            )));
        };
        let code = self.code.clone();
        let stored = tokio::task::spawn_blocking(move || match stored_kind {
            PackageKind::Zip => code.put_zip(&bytes),
            PackageKind::Inline(filename) => code.put_inline(&filename, &bytes),
        })
        .await
        .map_err(|e| RegistryError::Invalid(e.to_string()))??;
        if stored.digest != digest {
            return Err(RegistryError::Invalid(format!(
                "package {digest} unpacked as {}",
                stored.digest
            )));
        }
        Ok(())
    }

    /// Keeps a package this host has in the shared database, for the other hosts (once per
    /// digest; nothing to do with a database of this host alone).
    async fn share_code(&self, digest: &str, kind: PackageKind) -> Result<(), RegistryError> {
        if !self.store.is_shared() || self.store.has_package(digest).await? {
            return Ok(());
        }
        let (code, name) = (self.code.clone(), digest.to_string());
        let bytes = tokio::task::spawn_blocking(move || code.blob(&name))
            .await
            .map_err(|e| RegistryError::Invalid(e.to_string()))??;
        self.store.put_package(digest, &kind, &bytes).await?;
        Ok(())
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn code(&self) -> &CodeStore {
        &self.code
    }

    /// The function a URN names, whatever its qualifier.
    pub fn function(
        &self,
        project_id: &str,
        func: &FunctionRef,
    ) -> Result<Arc<Function>, RegistryError> {
        self.functions
            .read()
            .unwrap()
            .get(&key(project_id, &func.package, &func.name))
            .cloned()
            .ok_or_else(|| {
                RegistryError::FunctionNotFound(format!("{}:{}", func.package, func.name))
            })
    }

    /// The version a URN names: `latest` when unqualified, an alias's major version.
    pub fn get(&self, project_id: &str, func: &FunctionRef) -> Result<Arc<Entry>, RegistryError> {
        let function = self.function(project_id, func)?;
        let entry = match function.resolve(&func.qualifier)? {
            Target::Version(entry) => entry,
            Target::Alias(alias) => function.alias_version(&alias.version)?,
        };
        Ok(entry.clone())
    }

    /// The version an invocation of the URN runs: through an alias, the one its weights or
    /// rules choose for this request (`header` looks the request's headers up; `roll`, asked only
    /// for an alias, is
    /// uniform in 0..100).
    pub fn route<'h>(
        &self,
        project_id: &str,
        func: &FunctionRef,
        header: impl Fn(&str) -> Option<&'h str>,
        roll: impl FnOnce() -> u32,
    ) -> Result<Arc<Entry>, RegistryError> {
        let function = self.function(project_id, func)?;
        let entry = match function.resolve(&func.qualifier)? {
            Target::Version(entry) => entry,
            Target::Alias(alias) => function.alias_version(alias.route(header, roll()))?,
        };
        Ok(entry.clone())
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
    pub fn list(&self, project_id: &str) -> Vec<Arc<Function>> {
        let mut list: Vec<_> = self
            .functions
            .read()
            .unwrap()
            .values()
            .filter(|f| f.latest.record.project_id == project_id)
            .cloned()
            .collect();
        list.sort_by_key(|f| f.latest.seq);
        list
    }

    fn publish_function(&self, function: Function) -> Arc<Function> {
        let function = Arc::new(function);
        self.functions
            .write()
            .unwrap()
            .insert(record_key(&function.latest.record), function.clone());
        function
    }

    fn entry(&self, seq: i64, record: FunctionRecord) -> Result<Arc<Entry>, RegistryError> {
        let dependencies = self.dependencies.read().unwrap();
        Entry::build(seq, record, &self.code, &self.region, &dependencies).map(Arc::new)
    }

    /// Stores a new function; refused if the name is taken in its package.
    pub async fn create(&self, record: FunctionRecord) -> Result<Arc<Entry>, RegistryError> {
        let _guard = self.writes.lock().await;
        // Validated (and its dependencies resolved) before anything is stored.
        let entry = self.entry(0, record.clone())?;
        if self
            .functions
            .read()
            .unwrap()
            .contains_key(&record_key(&record))
        {
            return Err(RegistryError::FunctionExists(record.func_name));
        }
        self.share_code(&record.digest, package_kind(&record))
            .await?;
        let seq = match self.store.insert_function(record.clone()).await {
            Err(StoreError::Conflict) => {
                return Err(RegistryError::FunctionExists(record.func_name))
            }
            other => other?,
        };
        let entry = Arc::new(Entry {
            seq,
            record,
            spec: entry.spec.clone(),
            dependencies: entry.dependencies.clone(),
        });
        self.publish_function(Function {
            latest: entry.clone(),
            versions: Vec::new(),
            aliases: Vec::new(),
            triggers: Vec::new(),
        });
        Ok(entry)
    }

    /// Replaces the record of the version a URN names with `change(record)`. A change of code
    /// or configuration (`new_revision`) bumps its revision, so that new invocations use new
    /// instances, and is refused for a published version, which is read-only; its settings
    /// (instances, async policy) may change. An alias has no settings of its own.
    pub async fn update<E: From<RegistryError>>(
        &self,
        project_id: &str,
        func: &FunctionRef,
        new_revision: bool,
        change: impl FnOnce(&mut FunctionRecord) -> Result<(), E>,
    ) -> Result<Arc<Entry>, E> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        let current = match function.resolve(&func.qualifier)? {
            Target::Version(entry) => entry.clone(),
            Target::Alias(alias) => {
                return Err(RegistryError::InvalidAlias(format!(
                    "{}: settings belong to versions; use the URN of version {}",
                    alias.name, alias.version
                ))
                .into())
            }
        };
        if new_revision && !current.is_latest() {
            return Err(RegistryError::ReadOnly(current.record.version.clone()).into());
        }
        let mut record = current.record.clone();
        change(&mut record)?;
        if new_revision {
            record.revision = current.record.revision + 1;
            record.last_modified = now();
        }
        let entry = self.entry(current.seq, record.clone())?;
        let mut updated = (*function).clone();
        if current.is_latest() {
            self.share_code(&record.digest, package_kind(&record))
                .await?;
            self.store
                .update_function(record)
                .await
                .map_err(RegistryError::from)?;
            updated.latest = entry.clone();
        } else {
            self.store
                .update_version(record)
                .await
                .map_err(RegistryError::from)?;
            for v in updated.versions.iter_mut() {
                if v.record.version == entry.record.version {
                    *v = entry.clone();
                }
            }
        }
        self.publish_function(updated);
        Ok(entry)
    }

    /// Changes the settings of the version a URN names (instances, async policy): allowed for
    /// published versions too, and no new revision.
    pub async fn update_settings(
        &self,
        project_id: &str,
        func: &FunctionRef,
        change: impl FnOnce(&mut FunctionRecord),
    ) -> Result<Arc<Entry>, RegistryError> {
        self.update(project_id, func, false, |record| {
            change(record);
            Ok::<_, RegistryError>(())
        })
        .await
    }

    /// Publishes `latest` as a new immutable version: its code and every configuration field.
    /// `digest`, when given, must be the code's. Refused when `latest` has not changed since
    /// the last version was published, and beyond the quota.
    pub async fn publish(
        &self,
        project_id: &str,
        func: &FunctionRef,
        name: Option<String>,
        description: String,
        digest: Option<String>,
    ) -> Result<Arc<Entry>, RegistryError> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        if !matches!(function.resolve(&func.qualifier)?, Target::Version(e) if e.is_latest()) {
            return Err(RegistryError::InvalidVersion(
                "versions are published from latest: use the function's URN or its :latest URN"
                    .into(),
            ));
        }
        let latest = &function.latest;
        if let Some(digest) = digest.filter(|d| !d.is_empty()) {
            if digest != latest.record.digest {
                return Err(RegistryError::Invalid(format!(
                    "digest {digest:?} is not the digest of the code of latest ({})",
                    latest.record.digest
                )));
            }
        }
        if let Some(last) = function.versions.last() {
            if last.record.revision == latest.record.revision {
                return Err(RegistryError::Unchanged(last.record.version.clone()));
            }
        }
        let name = name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| names::generated_version(chrono::Utc::now()));
        names::validate(&name, NameKind::Version)?;
        if function.version(&name).is_some() || function.alias(&name).is_some() {
            return Err(RegistryError::VersionExists(format!(
                "version or alias {name}"
            )));
        }
        if function.versions.len() + 1 >= self.quotas.versions {
            return Err(RegistryError::VersionQuota {
                count: function.versions.len() + 1,
            });
        }
        let mut record = latest.record.clone();
        record.version = name.clone();
        record.version_description = description;
        record.last_modified = now();
        // "By default, non-latest versions do not have reserved instances."
        record.reserved_instances = 0;
        record.reserved_idle_mode = false;
        let entry = self.entry(latest.seq, record.clone())?;
        match self.store.insert_version(record).await {
            Err(StoreError::Conflict) => {
                return Err(RegistryError::VersionExists(format!("version {name}")))
            }
            other => other?,
        }
        let mut updated = (*function).clone();
        updated.versions.push(entry.clone());
        self.publish_function(updated);
        Ok(entry)
    }

    /// Deletes the published version a URN names; refused while an alias points at it.
    pub async fn delete_version(
        &self,
        project_id: &str,
        func: &FunctionRef,
    ) -> Result<Arc<Entry>, RegistryError> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        let entry = match function.resolve(&func.qualifier)? {
            Target::Version(entry) if entry.is_latest() => {
                return Err(RegistryError::Invalid(
                    "the latest version cannot be deleted; delete the function with its URN without a version".into(),
                ))
            }
            Target::Version(entry) => entry.clone(),
            Target::Alias(alias) => {
                return Err(RegistryError::InvalidAlias(format!(
                    "{}: delete an alias with DELETE .../aliases/{}",
                    alias.name, alias.name
                )))
            }
        };
        let version = &entry.record.version;
        if function.triggers.iter().any(|t| &t.qualifier == version) {
            return Err(RegistryError::HasTriggers(format!("version {version}")));
        }
        for alias in &function.aliases {
            if &alias.version == version {
                return Err(RegistryError::VersionInUse {
                    version: version.clone(),
                    alias: alias.name.clone(),
                });
            }
            if alias.additional() == Some(version) {
                return Err(RegistryError::AdditionalInUse {
                    version: version.clone(),
                    alias: alias.name.clone(),
                });
            }
        }
        self.store
            .delete_version(&record_key(&entry.record), version.clone())
            .await?;
        let mut updated = (*function).clone();
        updated.versions.retain(|v| &v.record.version != version);
        self.publish_function(updated);
        Ok(entry)
    }

    /// Creates an alias (`replace` false) or changes one (`replace` true): validated against
    /// the function's versions, its name unused by versions and other aliases, at most one
    /// alias per version, within the quota.
    pub async fn put_alias(
        &self,
        project_id: &str,
        func: &FunctionRef,
        alias: Alias,
        replace: bool,
    ) -> Result<Arc<Alias>, RegistryError> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        alias.validate(|v| function.version(v).is_some())?;
        let existing = function.alias(&alias.name).is_some();
        if replace && !existing {
            return Err(RegistryError::AliasNotFound(alias.name));
        }
        if !replace {
            if existing || function.version(&alias.name).is_some() {
                return Err(RegistryError::AliasExists(format!(
                    "version or alias {}",
                    alias.name
                )));
            }
            if function.aliases.len() >= self.quotas.aliases {
                return Err(RegistryError::AliasQuota {
                    count: function.aliases.len(),
                });
            }
        }
        if let Some(other) = function
            .aliases
            .iter()
            .find(|a| a.name != alias.name && a.version == alias.version)
        {
            return Err(RegistryError::VersionInUse {
                version: alias.version.clone(),
                alias: other.name.clone(),
            });
        }
        self.store
            .put_alias(&record_key(&function.latest.record), alias.clone())
            .await?;
        let alias = Arc::new(alias);
        let mut updated = (*function).clone();
        match updated.aliases.iter_mut().find(|a| a.name == alias.name) {
            Some(slot) => *slot = alias.clone(),
            None => updated.aliases.push(alias.clone()),
        }
        self.publish_function(updated);
        Ok(alias)
    }

    pub async fn delete_alias(
        &self,
        project_id: &str,
        func: &FunctionRef,
        name: &str,
    ) -> Result<(), RegistryError> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        if function.alias(name).is_none() {
            return Err(RegistryError::AliasNotFound(name.to_string()));
        }
        if function.triggers.iter().any(|t| t.qualifier == name) {
            return Err(RegistryError::HasTriggers(format!("alias {name}")));
        }
        self.store
            .delete_alias(&record_key(&function.latest.record), name.to_string())
            .await?;
        let mut updated = (*function).clone();
        updated.aliases.retain(|a| a.name != name);
        self.publish_function(updated);
        Ok(())
    }

    /// Stores a new version of the project's dependency `name` (version 1 of a new dependency
    /// when there is none of that name), its zip already unpacked into the code store.
    pub async fn create_dependency(
        &self,
        mut version: DependencyVersion,
    ) -> Result<Arc<DependencyVersion>, RegistryError> {
        let _guard = self.writes.lock().await;
        let existing: Vec<Arc<DependencyVersion>> = self.dependencies(&version.project_id);
        if existing.len() >= self.quotas.dependencies {
            return Err(RegistryError::DependencyQuota {
                count: existing.len(),
            });
        }
        let same_name = existing.iter().filter(|d| d.name == version.name);
        if let Some(newest) = same_name.max_by_key(|d| d.version) {
            version.dep_id = newest.dep_id.clone();
            version.version = newest.version + 1;
        }
        self.share_code(&version.digest, PackageKind::Zip).await?;
        self.store.insert_dependency(version.clone()).await?;
        let version = Arc::new(version);
        self.dependencies.write().unwrap().push(version.clone());
        Ok(version)
    }

    /// A project's dependency package versions, oldest first.
    pub fn dependencies(&self, project_id: &str) -> Vec<Arc<DependencyVersion>> {
        self.dependencies
            .read()
            .unwrap()
            .iter()
            .filter(|d| d.project_id == project_id)
            .cloned()
            .collect()
    }

    /// Version `version` of the project's dependency `dep_id`.
    pub fn dependency_version(
        &self,
        project_id: &str,
        dep_id: &str,
        version: &str,
    ) -> Result<Arc<DependencyVersion>, RegistryError> {
        self.dependencies(project_id)
            .into_iter()
            .find(|d| d.dep_id == dep_id && d.version.to_string() == version)
            .ok_or_else(|| RegistryError::DependencyNotFound(format!("{dep_id} version {version}")))
    }

    /// Deletes a dependency package version; refused while a function version uses it.
    pub async fn delete_dependency_version(
        &self,
        project_id: &str,
        dep_id: &str,
        version: &str,
    ) -> Result<(), RegistryError> {
        let _guard = self.writes.lock().await;
        let doomed = self.dependency_version(project_id, dep_id, version)?;
        let user = self
            .list(project_id)
            .iter()
            .flat_map(|f| f.entries().cloned().collect::<Vec<_>>())
            .find(|e| e.record.depend_version_list.contains(&doomed.id));
        if let Some(user) = user {
            return Err(RegistryError::DependencyInUse {
                dependency: format!("{} version {}", doomed.name, doomed.version),
                function: user.spec.urn.clone(),
            });
        }
        self.store
            .delete_dependency(project_id, doomed.id.clone())
            .await?;
        self.dependencies
            .write()
            .unwrap()
            .retain(|d| d.id != doomed.id);
        Ok(())
    }

    /// The qualifier a trigger created on `func` belongs to: `latest`, a version or an alias.
    fn trigger_qualifier(function: &Function, func: &FunctionRef) -> Result<String, RegistryError> {
        Ok(match function.resolve(&func.qualifier)? {
            Target::Alias(alias) => alias.name.clone(),
            Target::Version(entry) => entry.record.version.clone(),
        })
    }

    /// The triggers of the function `func` names; of its version or alias when qualified.
    pub fn triggers(
        &self,
        project_id: &str,
        func: &FunctionRef,
    ) -> Result<Vec<Arc<Trigger>>, RegistryError> {
        let function = self.function(project_id, func)?;
        if func.qualifier == Qualifier::None {
            return Ok(function.triggers.clone());
        }
        let qualifier = Self::trigger_qualifier(&function, func)?;
        Ok(function
            .triggers
            .iter()
            .filter(|t| t.qualifier == qualifier)
            .cloned()
            .collect())
    }

    /// One trigger of the function, by type and id.
    pub fn trigger(
        &self,
        project_id: &str,
        func: &FunctionRef,
        type_code: &str,
        trigger_id: &str,
    ) -> Result<Arc<Trigger>, RegistryError> {
        self.function(project_id, func)?
            .triggers
            .iter()
            .find(|t| t.trigger_id == trigger_id && t.trigger_type_code == type_code)
            .cloned()
            .ok_or_else(|| RegistryError::TriggerNotFound(format!("{type_code} {trigger_id}")))
    }

    /// Stores a new trigger for the version or alias `func` names (`latest` unqualified);
    /// `trigger` carries its validated type, status and data.
    pub async fn create_trigger(
        &self,
        project_id: &str,
        func: &FunctionRef,
        mut trigger: Trigger,
    ) -> Result<Arc<Trigger>, RegistryError> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        trigger.qualifier = Self::trigger_qualifier(&function, func)?;
        trigger.project_id = project_id.to_string();
        trigger.package = func.package.clone();
        trigger.func_name = func.name.clone();
        let siblings: Vec<&Arc<Trigger>> = function
            .triggers
            .iter()
            .filter(|t| t.qualifier == trigger.qualifier)
            .collect();
        if siblings.len() >= triggers::MAX_PER_QUALIFIER {
            return Err(RegistryError::TriggerQuota {
                qualifier: trigger.qualifier,
                count: siblings.len(),
            });
        }
        if trigger.trigger_type_code == "TIMER"
            && siblings
                .iter()
                .any(|t| t.trigger_type_code == "TIMER" && t.name() == trigger.name())
        {
            return Err(RegistryError::TimerExists(trigger.name().to_string()));
        }
        if let Some(api) = trigger.api() {
            let functions = self.functions.read().unwrap();
            let taken = functions
                .values()
                .flat_map(|f| f.triggers.iter())
                .any(|t| t.api().is_some_and(|other| other.conflicts(&api)));
            if taken {
                return Err(RegistryError::PathExists(format!(
                    "{} {} ({}) is already published on the gateway",
                    api.method,
                    api.path.as_str(),
                    if api.prefix { "SWA" } else { "NORMAL" }
                )));
            }
        }
        self.store.put_trigger(trigger.clone()).await?;
        let trigger = Arc::new(trigger);
        let mut updated = (*function).clone();
        updated.triggers.push(trigger.clone());
        self.publish_function(updated);
        Ok(trigger)
    }

    /// Replaces a stored trigger (same id) with `changed`.
    pub async fn update_trigger(
        &self,
        project_id: &str,
        func: &FunctionRef,
        changed: Trigger,
    ) -> Result<Arc<Trigger>, RegistryError> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        if !function
            .triggers
            .iter()
            .any(|t| t.trigger_id == changed.trigger_id)
        {
            return Err(RegistryError::TriggerNotFound(changed.trigger_id));
        }
        self.store.put_trigger(changed.clone()).await?;
        let changed = Arc::new(changed);
        let mut updated = (*function).clone();
        for t in updated.triggers.iter_mut() {
            if t.trigger_id == changed.trigger_id {
                *t = changed.clone();
            }
        }
        self.publish_function(updated);
        Ok(changed)
    }

    /// Deletes the triggers `ids` of the function; returns them.
    pub async fn delete_triggers(
        &self,
        project_id: &str,
        func: &FunctionRef,
        ids: &[String],
    ) -> Result<Vec<Arc<Trigger>>, RegistryError> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        let doomed: Vec<Arc<Trigger>> = function
            .triggers
            .iter()
            .filter(|t| ids.contains(&t.trigger_id))
            .cloned()
            .collect();
        self.store
            .delete_triggers(&record_key(&function.latest.record), ids.to_vec())
            .await?;
        let mut updated = (*function).clone();
        updated.triggers.retain(|t| !ids.contains(&t.trigger_id));
        self.publish_function(updated);
        Ok(doomed)
    }

    /// Every trigger of every project.
    pub fn all_triggers(&self) -> Vec<Arc<Trigger>> {
        self.functions
            .read()
            .unwrap()
            .values()
            .flat_map(|f| f.triggers.iter().cloned())
            .collect()
    }

    /// Deletes a whole function: latest, its versions and its aliases; returns what was
    /// deleted.
    pub async fn delete(
        &self,
        project_id: &str,
        func: &FunctionRef,
    ) -> Result<Arc<Function>, RegistryError> {
        let _guard = self.writes.lock().await;
        let function = self.function(project_id, func)?;
        self.store
            .delete_function(&record_key(&function.latest.record))
            .await?;
        self.functions
            .write()
            .unwrap()
            .remove(&key(project_id, &func.package, &func.name));
        Ok(function)
    }
}

/// How a function's code package was uploaded.
fn package_kind(record: &FunctionRecord) -> PackageKind {
    if record.code_type == "inline" {
        PackageKind::Inline(record.code_filename.clone())
    } else {
        PackageKind::Zip
    }
}

/// A function as served before and after the store was read again.
pub struct Change {
    pub before: Option<Arc<Function>>,
    pub after: Option<Arc<Function>>,
}

/// The current time in FunctionGraph's `last_modified` form (UTC).
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn spec_for(
    record: &FunctionRecord,
    code: &CodeStore,
    region: &str,
    dependencies: &[Arc<DependencyVersion>],
) -> Result<FunctionSpec, RegistryError> {
    let language = Language::from_runtime(&record.runtime)?;
    let memory = MemorySize::new(i64::from(record.memory_size))?;
    // Digests become paths in the code store: one read back from a (shared) database that
    // is not a SHA-512 is refused, never joined.
    for digest in std::iter::once(&record.digest).chain(dependencies.iter().map(|d| &d.digest)) {
        if !CodeStore::is_digest(digest) {
            return Err(RegistryError::Invalid(format!(
                "stored code digest {digest:?} is not a SHA-512"
            )));
        }
    }
    let mut user_data = parse_user_data(&record.user_data)?;
    user_data.extend(parse_user_data(&record.encrypted_user_data)?);
    Ok(FunctionSpec {
        function_id: if record.version == LATEST {
            record.func_id.clone()
        } else {
            format!("{}:{}", record.func_id, record.version)
        },
        revision: record.revision,
        urn: function_urn(
            region,
            &record.project_id,
            &record.package,
            &record.func_name,
            Some(&record.version),
        ),
        project_id: record.project_id.clone(),
        package: record.package.clone(),
        name: record.func_name.clone(),
        version: record.version.clone(),
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
        dependency_dirs: dependencies.iter().map(|d| code.tree(&d.digest)).collect(),
    })
}
