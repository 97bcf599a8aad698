//! A process instance: a sandboxed process, its runtime API and its log pipe.
//!
//! An instance runs one invocation at a time. Its first invocation also covers start-up:
//! the runtime has 30 s to start; when it reports its initializer running
//! (`POST /v1/runtime/init/start`, as the shipped bootstraps do), the initializer has
//! `initializer_timeout`. The handler's own time then runs against the function timeout. A timeout, a
//! crash or a failed initializer leaves the instance broken; the pool discards it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fgs_sandbox::{Exit, LaunchSpec, Process, Sandbox};
use tokio::sync::oneshot;

use crate::logs::LogPipe;
use crate::pool::StartGuard;
use crate::prewarm::Prewarmed;
use crate::runtime_api::{Completion, Dispatch, RuntimeApi};
use crate::{FunctionSpec, InvokeFailure, InvokeRequest, Language, RuntimeLayout};

/// How long a new runtime may take to start (and, without an initializer, to ask for its
/// first event). Cold starts do not count against the function's timeout, as in
/// FunctionGraph; a machine under load may need seconds to start many interpreters.
const START_BUDGET: Duration = Duration::from_secs(30);

/// A launched runtime process and what serves it: its runtime API, its network namespace
/// (kept until the instance is gone) and its log pipe.
pub(crate) struct Launched {
    pub process: Process,
    pub api: RuntimeApi,
    pub network: Option<fgs_sandbox::network::Namespace>,
    pub logs: Arc<LogPipe>,
}

pub(crate) struct ProcessInstance {
    pub spec: Arc<FunctionSpec>,
    process: Process,
    api: RuntimeApi,
    /// The instance's network namespace, kept until the instance is gone.
    network: Option<fgs_sandbox::network::Namespace>,
    logs: Arc<LogPipe>,
    /// The runtime has asked for work at least once (it is initialized).
    started: bool,
    launched: Instant,
    /// How long the runtime took from launch to its first request for work (its start and
    /// initializer), until taken.
    init: Option<Duration>,
    broken: bool,
    max_response: u64,
    pub last_used: Instant,
    /// It runs in a prewarmed sandbox.
    prewarmed: bool,
}

impl ProcessInstance {
    /// Starts a new instance of `spec`.
    pub async fn start(
        spec: Arc<FunctionSpec>,
        layout: &RuntimeLayout,
        sandbox: &dyn Sandbox,
        max_response: u64,
        start: Option<StartGuard>,
    ) -> Result<Self, InvokeFailure> {
        let system =
            |e: std::io::Error| InvokeFailure::System(format!("cannot start instance: {e}"));
        let bootstrap = spec.code_dir.join("bootstrap");
        let found = match spec.language {
            Language::Custom => is_executable(&bootstrap),
            Language::Http => bootstrap.is_file(),
            _ => true,
        };
        if !found {
            return Err(InvokeFailure::BootstrapNotFound);
        }
        // From the sandbox's pool; when it has run dry, making one runs `ip`: off the async
        // workers, so a burst of cold starts does not stall the API.
        let (listener, network) = tokio::task::block_in_place(|| sandbox.network())
            .map_err(system)?
            .into_parts();
        let api = RuntimeApi::start(listener, max_response).map_err(system)?;
        let (logs, output) = LogPipe::new().map_err(system)?;
        let (code_root, runtime_root) = sandbox.instance_paths(&spec.code_dir, layout.root());
        let (program, args) = layout
            .command(spec.language, &code_root, &runtime_root)
            .map_err(|e| InvokeFailure::System(e.to_string()))?;
        let dependencies = sandbox.dependency_paths(&spec.dependency_dirs);
        let env = spec.process_environment(
            &api.addr.to_string(),
            &code_root.to_string_lossy(),
            &runtime_root.to_string_lossy(),
            &dependencies,
            max_response,
        );
        let launch = LaunchSpec {
            program,
            args,
            env,
            cwd: code_root,
            code_dir: spec.code_dir.clone(),
            runtime_dir: layout.root().to_path_buf(),
            dependency_dirs: spec.dependency_dirs.clone(),
            ro_paths: layout.ro_paths(spec.language),
            memory_mb: spec.memory.mb(),
            output,
            netns: network.as_ref().map(|n| n.path()),
        };
        let process = sandbox
            .launch(launch)
            .map_err(|e| InvokeFailure::System(e.to_string()))?;
        let launched = Launched {
            process,
            api,
            network,
            logs,
        };
        Ok(Self::running(spec, launched, max_response, start, false))
    }

    /// Makes a prewarmed sandbox an instance of `spec`: shows it the code, gives it the
    /// function's limits and environment; its bootstrap then loads the handler. On failure
    /// the sandbox is discarded. No start slot: an assignment is a few system calls, and the
    /// interpreter has booted already.
    pub fn assign(
        spec: Arc<FunctionSpec>,
        prewarmed: Prewarmed,
        sandbox: &dyn Sandbox,
        max_response: u64,
    ) -> Result<Self, InvokeFailure> {
        let Prewarmed {
            mut launched,
            control,
            ..
        } = prewarmed;
        let assigned = tokio::task::block_in_place(|| {
            control.assign(&spec.code_dir, &spec.dependency_dirs)?;
            launched.process.assign_limits(spec.memory.mb())
        });
        if let Err(e) = assigned {
            launched.process.kill();
            return Err(InvokeFailure::System(format!(
                "cannot assign a prewarmed sandbox: {e}"
            )));
        }
        let (code_root, runtime_root) = sandbox.instance_paths(&spec.code_dir, Path::new(""));
        let dependencies = sandbox.dependency_paths(&spec.dependency_dirs);
        let env = spec.process_environment(
            &launched.api.addr.to_string(),
            &code_root.to_string_lossy(),
            &runtime_root.to_string_lossy(),
            &dependencies,
            max_response,
        );
        // What the interpreter wrote while it waited is no invocation's.
        launched.logs.take();
        launched.api.assign(&env);
        Ok(Self::running(spec, launched, max_response, None, true))
    }

    /// An instance whose runtime has been launched: until the runtime first asks for work it
    /// is starting, and keeps its start slot and its start CPU weight (not longer than the
    /// start budget, nor than it lives).
    fn running(
        spec: Arc<FunctionSpec>,
        launched: Launched,
        max_response: u64,
        start: Option<StartGuard>,
        prewarmed: bool,
    ) -> Self {
        let Launched {
            process,
            api,
            network,
            logs,
        } = launched;
        let mut ready = api.ready.clone();
        let settle = process.cpu_settler();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(START_BUDGET, ready.wait_for(|r| *r)).await;
            settle();
            drop(start);
        });
        Self {
            spec,
            process,
            api,
            network,
            logs,
            started: false,
            launched: Instant::now(),
            init: None,
            broken: false,
            max_response,
            last_used: Instant::now(),
            prewarmed,
        }
    }

    /// Whether the instance runs in a prewarmed sandbox.
    pub fn prewarmed(&self) -> bool {
        self.prewarmed
    }

    /// Kills the instance and waits until it has ended.
    pub async fn stop(&self) {
        self.process.kill();
        self.process.wait().await;
    }

    pub fn is_broken(&self) -> bool {
        self.broken || self.process.exit().is_some()
    }

    /// The runtime's start and initialization time, once, after its first invocation.
    pub fn take_init(&mut self) -> Option<Duration> {
        self.init.take()
    }

    /// The instance has started (an HTTP function's server listens): its CPU weight drops
    /// from the start weight to its steady one.
    pub fn settle_cpu(&self) {
        self.process.settle_cpu();
    }

    /// Kills an instance left in an unknown state; the pool discards it.
    pub fn discard(&mut self) {
        self.broken = true;
        self.process.kill();
    }

    /// The instance's own network namespace, if it has one.
    pub fn namespace(&self) -> Option<&fgs_sandbox::network::Namespace> {
        self.network.as_ref()
    }

    /// Waits until the instance's process has ended.
    pub async fn exited(&self) -> Exit {
        self.process.wait().await
    }

    /// Runs one invocation; returns its result and the handler's execution time.
    pub async fn invoke(
        &mut self,
        request: InvokeRequest,
    ) -> (Result<Bytes, InvokeFailure>, Duration) {
        let oom_before = self.process.oom_kills();
        let mut result = self.run(request).await;
        result.0 = result
            .0
            .map_err(|failure| self.classify(failure, oom_before));
        if result.0.as_ref().is_err_and(|f| !f.keeps_instance()) {
            self.broken = true;
            self.process.kill();
        }
        self.last_used = Instant::now();
        result
    }

    /// What the kernel says about a failure: an OOM kill in the instance (even of a helper
    /// process the function started) is a memory-limit error; a function error with `/tmp`
    /// full is a disk-limit error.
    fn classify(&self, failure: InvokeFailure, oom_before: u64) -> InvokeFailure {
        match failure {
            InvokeFailure::Crashed(Exit::OutOfMemory) => InvokeFailure::OutOfMemory,
            InvokeFailure::Function(_) | InvokeFailure::Crashed(_)
                if self.process.oom_kills() > oom_before =>
            {
                InvokeFailure::OutOfMemory
            }
            InvokeFailure::Function(body) if self.process.tmp_full() => {
                InvokeFailure::DiskFull(body)
            }
            other => other,
        }
    }

    /// The instance's output since the previous call.
    pub fn take_log(&self) -> Vec<u8> {
        self.logs.take()
    }

    /// Peak memory of the instance (its cgroup's, else its main process's resident set), MB.
    pub fn memory_used_mb(&self) -> f64 {
        if let Some(bytes) = self.process.memory_peak() {
            return bytes as f64 / (1024.0 * 1024.0);
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.pid()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }

    async fn run(&mut self, request: InvokeRequest) -> (Result<Bytes, InvokeFailure>, Duration) {
        let (picked_tx, picked_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let timeout = Duration::from_secs(u64::from(self.spec.timeout_secs));
        let dispatch = Dispatch {
            request,
            picked: picked_tx,
            done: done_tx,
        };
        if self.api.dispatch.send(dispatch).await.is_err() {
            return (
                Err(InvokeFailure::System("instance API is gone".into())),
                Duration::ZERO,
            );
        }

        // Phase 1: the runtime takes the event (after starting and initializing, if new).
        // A new runtime gets START_BUDGET to start; once it reports that its initializer
        // runs, the initializer gets `initializer_timeout` from then on.
        let mut deadline = (!self.started).then(|| {
            let failure = InvokeFailure::LoadTimeout {
                secs: START_BUDGET.as_secs() as u32,
            };
            (tokio::time::Instant::now() + START_BUDGET, failure)
        });
        let mut init_error = self.api.init_error.clone();
        let mut init_started = self.api.init_started.clone();
        let mut picked_rx = picked_rx;
        loop {
            let expiry = async {
                match &deadline {
                    Some((at, _)) => tokio::time::sleep_until(*at).await,
                    None => std::future::pending().await,
                }
            };
            let initializing = deadline.is_some() && !*init_started.borrow();
            tokio::select! {
                picked = &mut picked_rx => {
                    if picked.is_err() {
                        return (Err(InvokeFailure::System("instance API dropped the event".into())), Duration::ZERO);
                    }
                    break;
                }
                _ = init_started.wait_for(|s| *s), if initializing => {
                    if let Some((_, secs)) = &self.spec.initializer {
                        let limit = Duration::from_secs(u64::from(*secs));
                        deadline = Some((tokio::time::Instant::now() + limit, InvokeFailure::InitTimeout { secs: *secs }));
                    }
                }
                _ = init_error.wait_for(|e| e.is_some()) => {
                    let body = self.api.init_error.borrow().clone().unwrap_or_default();
                    return (Err(InvokeFailure::InitFailed(body)), Duration::ZERO);
                }
                exit = self.process.wait() => {
                    if let Some(body) = self.api.init_error.borrow().clone() {
                        return (Err(InvokeFailure::InitFailed(body)), Duration::ZERO);
                    }
                    return (Err(InvokeFailure::Crashed(exit)), Duration::ZERO);
                }
                _ = expiry => {
                    let (_, failure) = deadline.take().expect("expiry only with a deadline");
                    return (Err(failure), Duration::ZERO);
                }
            }
        }
        if !self.started {
            self.init = Some(self.launched.elapsed());
        }
        self.started = true;

        // Phase 2: the handler runs against the function timeout.
        let began = Instant::now();
        tokio::select! {
            done = done_rx => {
                let elapsed = began.elapsed();
                let result = match done {
                    Ok(Completion::Response(body)) => Ok(body),
                    Ok(Completion::Error(body)) => Err(InvokeFailure::Function(body)),
                    Ok(Completion::TooLarge(size)) => {
                        Err(InvokeFailure::ResponseTooLarge { size, max: self.max_response })
                    }
                    Err(_) => Err(InvokeFailure::System("instance API dropped the invocation".into())),
                };
                (result, elapsed)
            }
            exit = self.process.wait() => (Err(InvokeFailure::Crashed(exit)), began.elapsed()),
            _ = tokio::time::sleep(timeout) => {
                (Err(InvokeFailure::Timeout { secs: self.spec.timeout_secs }), began.elapsed())
            }
        }
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
