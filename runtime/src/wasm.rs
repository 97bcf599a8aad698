//! The `WASM` runtime (an fgs extension): functions as WebAssembly components.
//!
//! The code package holds the component; the handler names its file (e.g. `echo.wasm`).
//! Each function version's component is compiled (or loaded from the engine's disk cache)
//! and linked once, at its first cold start; instances are created from it in well under a
//! millisecond. Every instance runs the component's `initializer` once, before its first
//! event (within `initializer_timeout` when configured, else the function timeout; the guest
//! SDK's default initializer does nothing), then serves events one at a time, keeping its
//! state. A trap, timeout or memory-limit failure discards the instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fgs_sandbox::wasm::{
    FunctionInfo, WasmComponent, WasmConfig, WasmEngine, WasmError, WasmFailure, WasmInstance,
};
use tokio::sync::OnceCell;

use crate::{FunctionSpec, InvokeFailure, InvokeRequest};

type VersionKey = (String, u64);

/// The wasm engine and the linked components of function versions.
pub struct WasmRuntime {
    config: WasmConfig,
    /// Made at the first cold start of a WASM function, not with the host: a host that runs
    /// none (most, and every test suite's ephemeral host) never pays the engine's memory,
    /// its linker of WASI functions or its epoch thread.
    engine: Arc<std::sync::OnceLock<Result<Arc<WasmEngine>, String>>>,
    components: Mutex<HashMap<VersionKey, Arc<OnceCell<WasmComponent>>>>,
}

impl WasmRuntime {
    pub fn new(config: WasmConfig) -> Self {
        Self {
            config,
            engine: Arc::default(),
            components: Mutex::new(HashMap::new()),
        }
    }

    /// The engine, made on first use (blocking: call off the async workers).
    fn engine(
        config: &WasmConfig,
        cell: &std::sync::OnceLock<Result<Arc<WasmEngine>, String>>,
    ) -> Result<Arc<WasmEngine>, InvokeFailure> {
        cell.get_or_init(|| {
            let engine = WasmEngine::new(config.clone()).map_err(|e| e.to_string())?;
            if !engine.private_tmpfs() {
                tracing::warn!(
                    "WASM instances get an uncapped /tmp directory: a 512 MB tmpfs needs root"
                );
            }
            Ok(Arc::new(engine))
        })
        .clone()
        .map_err(|e| InvokeFailure::System(format!("cannot start the WebAssembly engine: {e}")))
    }

    /// Forgets the components of `function_id` older than `revision`.
    pub(crate) fn retire(&self, function_id: &str, revision: u64) {
        self.components
            .lock()
            .unwrap()
            .retain(|(id, rev), _| !(id == function_id && *rev < revision));
    }

    /// The linked component of `spec`'s version, compiled or loaded once.
    async fn component(&self, spec: &FunctionSpec) -> Result<WasmComponent, InvokeFailure> {
        let cell = self
            .components
            .lock()
            .unwrap()
            .entry((spec.function_id.clone(), spec.revision))
            .or_default()
            .clone();
        let component = cell
            .get_or_try_init(|| async {
                let (config, cell) = (self.config.clone(), self.engine.clone());
                let path = crate::package::file_in(&spec.code_dir, &spec.handler)
                    .filter(|path| path.is_file())
                    .ok_or_else(|| {
                        InvokeFailure::EntryNotFound(format!(
                            "{} is not in the code package",
                            spec.handler
                        ))
                    })?;
                let engine = tokio::task::spawn_blocking(move || {
                    Self::engine(&config, &cell).map(|engine| engine.load(&path))
                })
                .await
                .map_err(|e| InvokeFailure::System(e.to_string()))??;
                engine.map_err(|e| match e {
                    WasmError::InvalidComponent(_) | WasmError::Link(_) => {
                        InvokeFailure::EntryNotFound(e.to_string())
                    }
                    other => InvokeFailure::System(other.to_string()),
                })
            })
            .await?;
        Ok(component.clone())
    }
}

/// An instance of a WASM function.
pub(crate) struct WasmFunctionInstance {
    pub spec: Arc<FunctionSpec>,
    instance: WasmInstance,
    initialized: bool,
    broken: bool,
    max_response: u64,
    pub last_used: Instant,
}

impl WasmFunctionInstance {
    pub async fn start(
        spec: Arc<FunctionSpec>,
        runtime: &WasmRuntime,
        max_response: u64,
    ) -> Result<Self, InvokeFailure> {
        let component = runtime.component(&spec).await?;
        let info = Arc::new(FunctionInfo {
            name: spec.name.clone(),
            version: spec.version.clone(),
            package: spec.package.clone(),
            project_id: spec.project_id.clone(),
            memory_mb: spec.memory.mb(),
            cpu_millicores: spec.memory.cpu_millicores(),
            timeout_secs: spec.timeout_secs,
            user_data: spec.user_data.iter().cloned().collect(),
        });
        let instance = component
            .instantiate(info, &spec.base_environment())
            .await
            .map_err(|e| match e {
                WasmError::Instantiate(why) if why.starts_with("memory limit") => {
                    InvokeFailure::OutOfMemory
                }
                other => InvokeFailure::System(other.to_string()),
            })?;
        Ok(Self {
            spec,
            instance,
            initialized: false,
            broken: false,
            max_response,
            last_used: Instant::now(),
        })
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    pub async fn invoke(
        &mut self,
        request: InvokeRequest,
    ) -> (Result<Bytes, InvokeFailure>, Duration) {
        let began = Instant::now();
        let result = self.run(&request).await;
        if result.as_ref().is_err_and(|f| !f.keeps_instance()) {
            self.broken = true;
        }
        self.last_used = Instant::now();
        (result, began.elapsed())
    }

    async fn run(&mut self, request: &InvokeRequest) -> Result<Bytes, InvokeFailure> {
        let timeout_secs = self.spec.timeout_secs;
        if !self.initialized {
            let init_secs = self
                .spec
                .initializer
                .as_ref()
                .map(|(_, t)| *t)
                .unwrap_or(timeout_secs);
            self.instance
                .initialize(
                    &request.request_id,
                    Duration::from_secs(u64::from(init_secs)),
                )
                .await
                .map_err(|failure| match failure {
                    WasmFailure::Function(json) => InvokeFailure::InitFailed(Bytes::from(json)),
                    WasmFailure::Timeout => InvokeFailure::InitTimeout { secs: init_secs },
                    other => failure_of(other, timeout_secs),
                })?;
            self.initialized = true;
        }
        let result = self
            .instance
            .handle(
                &request.body,
                &request.request_id,
                Duration::from_secs(u64::from(timeout_secs)),
            )
            .await
            .map_err(|failure| failure_of(failure, timeout_secs))?;
        if result.len() as u64 > self.max_response {
            return Err(InvokeFailure::ResponseTooLarge {
                size: result.len() as u64,
                max: self.max_response,
            });
        }
        Ok(Bytes::from(result))
    }

    pub fn take_log(&self) -> Vec<u8> {
        self.instance.take_log()
    }

    pub fn memory_used_mb(&self) -> f64 {
        self.instance.memory_bytes() as f64 / (1024.0 * 1024.0)
    }
}

fn failure_of(failure: WasmFailure, timeout_secs: u32) -> InvokeFailure {
    match failure {
        WasmFailure::Function(json) => InvokeFailure::Function(Bytes::from(json)),
        WasmFailure::Trap(message) => InvokeFailure::Trap(message),
        WasmFailure::Timeout => InvokeFailure::Timeout { secs: timeout_secs },
        WasmFailure::OutOfMemory => InvokeFailure::OutOfMemory,
    }
}
