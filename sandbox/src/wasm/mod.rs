//! The WebAssembly sandbox: functions as components on wasmtime (runtime `WASM`).
//!
//! - One [`WasmEngine`] per host: Cranelift, the pooling instance allocator (instances reuse
//!   pre-reserved memory slots, so creating one is cheap), and epoch interruption driven by
//!   a ticker thread, with which a running call yields to the async executor every tick and
//!   is interrupted at its deadline.
//! - [`WasmEngine::load`] compiles a component once: the artifact is cached on disk under
//!   `<cache>/<component digest>-<engine hash>.cwasm`, authenticated with the host key, so a
//!   restarted host (or another host sharing cache and key) deserializes instead of compiling. The result, a [`WasmComponent`], holds the
//!   linked `InstancePre`, prepared once per function version.
//! - [`WasmComponent::instantiate`] makes a [`WasmInstance`]: its own store, WASI context
//!   (environment = user data, stdout/stderr = the invocation log, `/tmp` = the instance's own
//!   directory, a 512 MB tmpfs when fgs runs as root, no network), and a [`ResourceLimiter`]
//!   that caps linear memory at the function's memory size.
//!
//! [`ResourceLimiter`]: wasmtime::ResourceLimiter

mod bindings;
mod cache;
mod log;
mod state;
mod tmp;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;

pub use state::FunctionInfo;

use bindings::fgs::function::types::FunctionError;
use bindings::{FunctionHandler, FunctionHandlerPre};
use log::LogBuffer;
use state::{MemoryLimiter, State};
use tmp::TmpDir;

/// How often the epoch advances: the granularity of timeouts and of yielding.
const TICK: Duration = Duration::from_millis(5);
/// Linear memory a pooled slot can hold (the wasm32 maximum); the limiter enforces the
/// function's own size below it.
const SLOT_MEMORY: usize = 4 << 30;

/// Settings of a [`WasmEngine`].
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Most component instances alive at once (the pool's size).
    pub max_instances: u32,
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
    /// Where instances' `/tmp` directories are created.
    pub tmp_dir: PathBuf,
    /// Authenticates the compile cache: only artifacts this key wrote are loaded.
    pub host_key: Arc<fgs_secrets::HostKey>,
}

/// Why a component could not be loaded or an instance created.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("invalid WebAssembly component: {0}")]
    InvalidComponent(String),
    #[error("component does not match the fgs:function world: {0}")]
    Link(String),
    #[error("cannot create instance: {0}")]
    Instantiate(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// How a call into an instance failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WasmFailure {
    /// The guest returned a `function-error`; FunctionGraph's error JSON.
    Function(Vec<u8>),
    /// The guest trapped; the trap's message.
    Trap(String),
    /// The call ran past its deadline.
    Timeout,
    /// The guest tried to grow memory past the function's memory size.
    OutOfMemory,
}

/// The host's wasmtime engine and linker.
pub struct WasmEngine {
    engine: Engine,
    linker: Arc<Linker<State>>,
    config: WasmConfig,
    ticking: Arc<AtomicBool>,
    next_id: Arc<AtomicU64>,
    private_tmpfs: bool,
}

impl WasmEngine {
    pub fn new(config: WasmConfig) -> Result<Self, WasmError> {
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 2)
            .total_tables(n * 8)
            .total_stacks(n)
            .max_memory_size(SLOT_MEMORY);
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| WasmError::Instantiate(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| WasmError::Link(e.to_string()))?;
        FunctionHandler::add_to_linker::<State, wasmtime::component::HasSelf<State>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| WasmError::Link(e.to_string()))?;
        std::fs::create_dir_all(&config.cache_dir)?;
        let private_tmpfs = tmp::prepare(&config.tmp_dir)?;
        let ticking = Arc::new(AtomicBool::new(true));
        let (ticker_engine, flag) = (engine.clone(), ticking.clone());
        std::thread::Builder::new()
            .name("fgs-wasm-epoch".into())
            .spawn(move || {
                while flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticker_engine.increment_epoch();
                }
            })?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            config,
            ticking,
            next_id: Arc::new(AtomicU64::new(1)),
            private_tmpfs,
        })
    }

    /// Whether instances get a size-capped tmpfs as `/tmp` (needs root).
    pub fn private_tmpfs(&self) -> bool {
        self.private_tmpfs
    }

    /// Compiles (or loads the cached compilation of) the component file at `path`, and links it.
    pub fn load(&self, path: &Path) -> Result<WasmComponent, WasmError> {
        let component = cache::load_or_compile(
            &self.engine,
            &self.config.host_key,
            &self.config.cache_dir,
            path,
        )?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| WasmError::Link(e.to_string()))?;
        let pre = FunctionHandlerPre::new(pre).map_err(|e| WasmError::Link(e.to_string()))?;
        Ok(WasmComponent {
            pre,
            tmp_dir: self.config.tmp_dir.clone(),
            private_tmpfs: self.private_tmpfs,
            next_id: self.next_id.clone(),
        })
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

/// A compiled, linked component: what every instance of one function version starts from.
#[derive(Clone)]
pub struct WasmComponent {
    pre: FunctionHandlerPre<State>,
    tmp_dir: PathBuf,
    private_tmpfs: bool,
    next_id: Arc<AtomicU64>,
}

impl WasmComponent {
    /// Creates an instance for `function` with `env` as its environment.
    pub async fn instantiate(
        &self,
        function: Arc<FunctionInfo>,
        env: &[(String, String)],
    ) -> Result<WasmInstance, WasmError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tmp = TmpDir::create(&self.tmp_dir, id, self.private_tmpfs)?;
        let log = LogBuffer::default();
        let wasi = WasiCtxBuilder::new()
            .envs(env)
            .stdout(log.clone())
            .stderr(log.clone())
            // No sockets: a component runs inside fgs's own process, where the host's
            // loopback (fgs's APIs, other instances) would be one connect away.
            .preopened_dir(tmp.path(), "/tmp", wasmtime_wasi::FsPerms::ReadWrite)
            .map_err(|e| WasmError::Instantiate(e.to_string()))?
            .build();
        let state = State {
            wasi,
            table: wasmtime::component::ResourceTable::new(),
            limiter: MemoryLimiter {
                max_bytes: function.memory_mb as usize * 1024 * 1024,
                current: 0,
                hit: false,
            },
            function,
            log: log.clone(),
            request_id: String::new(),
            deadline: Instant::now(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|ctx| {
            Ok(if Instant::now() >= ctx.data().deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store.data_mut().deadline = Instant::now() + Duration::from_secs(60);
        store.set_epoch_deadline(1);
        let bindings = self.pre.instantiate_async(&mut store).await.map_err(|e| {
            if store.data().limiter.hit {
                WasmError::Instantiate(format!("memory limit exceeded: {e}"))
            } else {
                WasmError::Instantiate(format!("{e:#}"))
            }
        })?;
        Ok(WasmInstance {
            store,
            bindings,
            log,
            _tmp: tmp,
        })
    }
}

/// A live component instance: one store, reused for invocation after invocation.
pub struct WasmInstance {
    store: Store<State>,
    bindings: FunctionHandler,
    log: LogBuffer,
    _tmp: TmpDir,
}

impl WasmInstance {
    /// Runs the component's `initializer`.
    pub async fn initialize(
        &mut self,
        request_id: &str,
        timeout: Duration,
    ) -> Result<(), WasmFailure> {
        self.begin(request_id, timeout);
        let ctx = Resource::new_borrow(0);
        let result = self.bindings.call_initializer(&mut self.store, ctx).await;
        self.finish(result)
    }

    /// Runs the component's `handler` on `event`.
    pub async fn handle(
        &mut self,
        event: &[u8],
        request_id: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, WasmFailure> {
        self.begin(request_id, timeout);
        let ctx = Resource::new_borrow(0);
        let result = self
            .bindings
            .call_handler(&mut self.store, event, ctx)
            .await;
        self.finish(result)
    }

    /// The instance's output since the last call.
    pub fn take_log(&self) -> Vec<u8> {
        self.log.take()
    }

    /// Linear memory in use, bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.store.data().limiter.current as u64
    }

    fn begin(&mut self, request_id: &str, timeout: Duration) {
        let data = self.store.data_mut();
        data.request_id.clear();
        data.request_id.push_str(request_id);
        data.deadline = Instant::now() + timeout;
        self.store.set_epoch_deadline(1);
    }

    fn finish<T>(
        &mut self,
        result: wasmtime::Result<Result<T, FunctionError>>,
    ) -> Result<T, WasmFailure> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(WasmFailure::Function(error_json(&error))),
            Err(trap) => {
                let data = self.store.data();
                Err(if Instant::now() >= data.deadline {
                    WasmFailure::Timeout
                } else if data.limiter.hit {
                    WasmFailure::OutOfMemory
                } else {
                    WasmFailure::Trap(format!("{trap:#}"))
                })
            }
        }
    }
}

/// FunctionGraph's function-error JSON.
fn error_json(error: &FunctionError) -> Vec<u8> {
    serde_json::json!({
        "errorMessage": error.error_message,
        "errorType": error.error_type,
        "stackTrace": error.stack_trace,
    })
    .to_string()
    .into_bytes()
}
