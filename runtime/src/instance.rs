//! One function instance, whatever runs it: a sandboxed process or a WebAssembly instance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fgs_sandbox::Sandbox;

use crate::http_instance::HttpInstance;
use crate::pool::StartGuard;
use crate::prewarm::Prewarm;
use crate::process_instance::ProcessInstance;
use crate::wasm::{WasmFunctionInstance, WasmRuntime};
use crate::{FunctionSpec, InvokeFailure, InvokeRequest, Language, RuntimeLayout};

/// What starting an instance needs.
pub(crate) struct Launcher {
    pub sandbox: Arc<dyn Sandbox>,
    pub layout: RuntimeLayout,
    pub wasm: Option<WasmRuntime>,
    pub max_response: u64,
    /// Prewarmed sandboxes for Python and Node.js, when on.
    pub prewarm: Option<Arc<Prewarm>>,
}

pub(crate) enum Instance {
    Process(ProcessInstance),
    Wasm(WasmFunctionInstance),
    Http(HttpInstance),
}

impl Instance {
    /// Starts an instance; `guard` (its start slot) is released once it is ready for work.
    pub async fn start(
        spec: Arc<FunctionSpec>,
        launcher: &Launcher,
        guard: StartGuard,
    ) -> Result<Self, InvokeFailure> {
        match (spec.language, &launcher.wasm) {
            (Language::Wasm, Some(wasm)) => {
                WasmFunctionInstance::start(spec, wasm, launcher.max_response)
                    .await
                    .map(Instance::Wasm)
            }
            (Language::Wasm, None) => Err(InvokeFailure::System(
                "the WASM runtime is not enabled on this host".into(),
            )),
            // Ready when started: the guard ends here.
            (Language::Http, _) => HttpInstance::start(
                spec,
                &launcher.layout,
                launcher.sandbox.as_ref(),
                launcher.max_response,
            )
            .await
            .map(Instance::Http),
            _ => ProcessInstance::start(
                spec,
                &launcher.layout,
                launcher.sandbox.as_ref(),
                launcher.max_response,
                Some(guard),
            )
            .await
            .map(Instance::Process),
        }
    }

    /// Whether the instance runs in a prewarmed sandbox.
    pub fn prewarmed(&self) -> bool {
        matches!(self, Instance::Process(i) if i.prewarmed())
    }

    pub async fn invoke(
        &mut self,
        request: InvokeRequest,
    ) -> (Result<Bytes, InvokeFailure>, Duration) {
        match self {
            Instance::Process(i) => i.invoke(request).await,
            Instance::Wasm(i) => i.invoke(request).await,
            Instance::Http(_) => (Err(InvokeFailure::System("an HTTP function answers HTTP requests, through an APIG trigger; it takes no events".into())), Duration::ZERO),
        }
    }

    pub fn take_log(&self) -> Vec<u8> {
        match self {
            Instance::Process(i) => i.take_log(),
            Instance::Wasm(i) => i.take_log(),
            Instance::Http(i) => i.process().take_log(),
        }
    }

    /// Start-up time inside the instance not covered by [`Instance::start`] (a process
    /// runtime's boot and initializer, which its first invocation waits for), once.
    pub fn take_init(&mut self) -> Option<Duration> {
        match self {
            Instance::Process(i) => i.take_init(),
            Instance::Wasm(_) | Instance::Http(_) => None,
        }
    }

    pub fn memory_used_mb(&self) -> f64 {
        match self {
            Instance::Process(i) => i.memory_used_mb(),
            Instance::Wasm(i) => i.memory_used_mb(),
            Instance::Http(i) => i.process().memory_used_mb(),
        }
    }

    pub fn is_broken(&self) -> bool {
        match self {
            Instance::Process(i) => i.is_broken(),
            Instance::Wasm(i) => i.is_broken(),
            Instance::Http(i) => i.process().is_broken(),
        }
    }

    pub fn last_used(&self) -> Instant {
        match self {
            Instance::Process(i) => i.last_used,
            Instance::Wasm(i) => i.last_used,
            Instance::Http(i) => i.process().last_used,
        }
    }

    /// Stops the instance and waits until its resources are released.
    pub async fn stop(self) {
        match self {
            Instance::Process(i) => i.stop().await,
            Instance::Wasm(i) => drop(i),
            Instance::Http(i) => i.into_process().stop().await,
        }
    }
}
