//! What the runtime needs to know to run one function version.

use std::path::PathBuf;

use fgs_limits::MemorySize;

use crate::Language;

/// A runnable function version. Instances are shared only between invocations of the same
/// `function_id` and `revision`; any change of code or configuration bumps the revision, so
/// new invocations never reach an instance started from older code.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Stable identity of the function version on this host: instances are never shared
    /// across it (the invoker uses `func_id` for `latest`, `func_id:version` otherwise).
    pub function_id: String,
    /// Increases with every change of code or configuration.
    pub revision: u64,
    pub urn: String,
    pub project_id: String,
    pub package: String,
    pub name: String,
    pub version: String,
    pub language: Language,
    pub handler: String,
    pub memory: MemorySize,
    pub timeout_secs: u32,
    /// `initializer_handler` and `initializer_timeout`, when configured.
    pub initializer: Option<(String, u32)>,
    /// Environment variables (`user_data`), in order.
    pub user_data: Vec<(String, String)>,
    /// The unpacked code package.
    pub code_dir: PathBuf,
    /// The unpacked dependency packages (`depend_version_list`), in order.
    pub dependency_dirs: Vec<PathBuf>,
}

impl FunctionSpec {
    /// What every instance's environment holds: the user's variables, then FunctionGraph's
    /// `RUNTIME_*` variables describing the function (which take precedence).
    pub(crate) fn base_environment(&self) -> Vec<(String, String)> {
        let user_json: serde_json::Map<String, serde_json::Value> = self
            .user_data
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let mut env: Vec<(String, String)> = self.user_data.clone();
        let mut set = |k: &str, v: String| env.push((k.to_string(), v));
        set("RUNTIME_PROJECT_ID", self.project_id.clone());
        set("RUNTIME_FUNC_NAME", self.name.clone());
        set("RUNTIME_FUNC_VERSION", self.version.clone());
        set("RUNTIME_PACKAGE", self.package.clone());
        set("RUNTIME_HANDLER", self.handler.clone());
        set("RUNTIME_TIMEOUT", self.timeout_secs.to_string());
        set(
            "RUNTIME_USERDATA",
            serde_json::Value::Object(user_json).to_string(),
        );
        set("RUNTIME_CPU", self.memory.cpu_millicores().to_string());
        set("RUNTIME_MEMORY", self.memory.mb().to_string());
        if let Some((handler, timeout)) = &self.initializer {
            set("RUNTIME_INITIALIZER_HANDLER", handler.clone());
            set("RUNTIME_INITIALIZER_TIMEOUT", timeout.to_string());
        }
        env
    }

    /// The environment of a process instance: the base environment, where the code, the
    /// bootstraps, the dependency packages (`dependencies`, as the instance sees them) and the
    /// runtime API are, and what interpreters need.
    ///
    /// Dependencies are importable where FunctionGraph's packaging guide puts their content:
    /// Python modules at a package's root (`PYTHONPATH`), Node.js modules in a package's
    /// `node_modules` or at its root (`NODE_PATH`); every runtime, `Custom` included, finds the
    /// packages' directories in `RUNTIME_DEPENDENCY_PATHS` (fgs's variable), `:`-separated.
    pub(crate) fn process_environment(
        &self,
        api_addr: &str,
        code_root: &str,
        runtime_root: &str,
        dependencies: &[PathBuf],
        max_response: u64,
    ) -> Vec<(String, String)> {
        let mut env = self.base_environment();
        let mut set = |k: &str, v: String| env.push((k.to_string(), v));
        if !dependencies.is_empty() {
            let join = |paths: Vec<PathBuf>| {
                std::env::join_paths(paths)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            set("RUNTIME_DEPENDENCY_PATHS", join(dependencies.to_vec()));
            match self.language {
                Language::Python => set("PYTHONPATH", join(dependencies.to_vec())),
                Language::NodeJs => set(
                    "NODE_PATH",
                    join(
                        dependencies
                            .iter()
                            .flat_map(|d| [d.join("node_modules"), d.clone()])
                            .collect(),
                    ),
                ),
                Language::Custom | Language::Wasm | Language::Http => {}
            }
        }
        env.extend(host_environment(
            api_addr,
            code_root,
            runtime_root,
            max_response,
        ));
        env
    }
}

impl FunctionSpec {
    /// Whether a prewarmed instance may run this function: a Python or Node.js function none
    /// of whose variables is read by the interpreter (or the C library) as it starts, since a
    /// prewarmed interpreter has started before it learns them (`PYTHONPATH` set by
    /// dependencies is applied by the bootstrap instead).
    pub fn prewarmable(&self) -> bool {
        const READ_AT_START: &[&str] = &[
            "PYTHON", "NODE_", "UV_", "LD_", "MALLOC_", "GLIBC_", "LANG", "LC_", "TZ",
        ];
        matches!(self.language, Language::Python | Language::NodeJs)
            && !self
                .user_data
                .iter()
                .any(|(name, _)| READ_AT_START.iter().any(|p| name.starts_with(p)))
    }
}

/// What every process instance's environment holds besides its function's: where the code,
/// the bootstraps and the runtime API are, and what interpreters need. A prewarmed instance
/// starts with this alone.
pub(crate) fn host_environment(
    api_addr: &str,
    code_root: &str,
    runtime_root: &str,
    max_response: u64,
) -> Vec<(String, String)> {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    [
        ("RUNTIME_CODE_ROOT", code_root.to_string()),
        ("RUNTIME_ROOT", runtime_root.to_string()),
        ("RUNTIME_API_ADDR", api_addr.to_string()),
        ("RUNTIME_MAX_RESP_BODY_SIZE", max_response.to_string()),
        ("PATH", path),
        ("HOME", "/tmp".into()),
        ("LANG", "C.UTF-8".into()),
        ("PYTHONUNBUFFERED", "1".into()),
        ("PYTHONDONTWRITEBYTECODE", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
