//! Warm instances: reuse, scale-out under load, retirement and idle reaping.
//!
//! An invocation takes an idle instance of its function version if there is one, and starts a
//! new one otherwise, so concurrent invocations get as many instances as they need and each
//! instance serves one invocation at a time. A healthy instance goes back to the idle list
//! afterwards; a broken one (timeout, crash, failed initializer) is killed. Idle instances are
//! killed after the idle timeout, and all instances of a function older than a given revision
//! are retired when its code or configuration changes.
//!
//! At most `max_starting` instances start at once (a start is CPU-bound: a storm of them, after
//! a restart with a backlog, would crawl past every start budget). An invocation waiting for a
//! start takes an instance of its version that comes back meanwhile instead: warm instances
//! are preferred. A project holds at most all but one of the slots, so that its slow starts
//! cannot stall every other project's cold starts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use chrono::Utc;
use fgs_sandbox::wasm::WasmConfig;
use fgs_sandbox::Sandbox;

use bytes::Bytes;

use crate::http_instance::HttpBody;
use crate::instance::{Instance, Launcher};
use crate::prewarm::{LaneStats, Prewarm, PrewarmConfig, Prewarmed};
use crate::process_instance::ProcessInstance;
use crate::wasm::WasmRuntime;
use crate::{FunctionSpec, InvokeFailure, InvokeOutcome, InvokeRequest, RuntimeLayout};

/// Settings of an [`InstancePool`].
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// How long an instance may stay unused before it is stopped.
    pub idle_timeout: Duration,
    /// Largest accepted function response, bytes.
    pub max_response: u64,
    /// Instances starting at once, at most.
    pub max_starting: usize,
    /// Prewarmed sandboxes (`--prewarm`).
    pub prewarm: PrewarmConfig,
}

type VersionKey = (String, u64);

/// The instances of all functions on this host.
pub struct InstancePool {
    launcher: Launcher,
    config: PoolConfig,
    idle: Mutex<HashMap<VersionKey, Vec<Instance>>>,
    /// Per function: instances with a lower revision are discarded instead of reused.
    min_revision: Mutex<HashMap<String, u64>>,
    /// Per function version: how many idle instances are kept warm (reserved instances).
    reserved: Mutex<HashMap<VersionKey, usize>>,
    busy: AtomicUsize,
    /// Start slots (`max_starting`).
    starts: Arc<Semaphore>,
    /// Per project: its share of the start slots (all but one of them), so that one project's
    /// slow starts cannot hold every slot and stall the others' cold starts.
    project_starts: Mutex<HashMap<String, Arc<Semaphore>>>,
    project_share: usize,
    /// Per version: wakes one invocation waiting for a start when an instance comes back.
    returned: Mutex<HashMap<VersionKey, Arc<Notify>>>,
    starting: Arc<AtomicUsize>,
    peak_starting: AtomicUsize,
}

/// A start slot, held until the instance is ready to take work (a process runtime: until it
/// first asks for work, not merely launched), and counted in the starts in progress.
pub(crate) struct StartGuard {
    _slot: Slot,
    starting: Arc<AtomicUsize>,
}

/// What an invocation found for its instance.
enum Found {
    Idle(Instance),
    Prewarmed(Prewarmed),
    /// None: it may start one.
    Slot(Slot),
}

/// A start slot: one of the project's share and one of the host's.
pub(crate) struct Slot {
    _project: OwnedSemaphorePermit,
    _host: OwnedSemaphorePermit,
}

/// Projects whose start shares are kept before idle ones are forgotten.
const MAX_PROJECT_SHARES: usize = 4096;

impl Drop for StartGuard {
    fn drop(&mut self) {
        self.starting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl InstancePool {
    /// Creates the pool and its idle reaper. Process instances start in `sandbox`; WASM
    /// functions run on an engine made from `wasm` at their first cold start (none without).
    pub fn new(
        sandbox: Arc<dyn Sandbox>,
        layout: RuntimeLayout,
        wasm: Option<WasmConfig>,
        config: PoolConfig,
    ) -> Arc<Self> {
        let max_starting = config.max_starting.max(1);
        let starts = Arc::new(Semaphore::new(max_starting));
        let prewarm = Prewarm::start(
            &config.prewarm,
            sandbox.clone(),
            layout.clone(),
            config.max_response,
        );
        let launcher = Launcher {
            sandbox,
            layout,
            wasm: wasm.map(WasmRuntime::new),
            max_response: config.max_response,
            prewarm,
        };
        let pool = Arc::new(Self {
            starts,
            project_starts: Mutex::new(HashMap::new()),
            project_share: (max_starting - 1).max(1),
            launcher,
            config,
            idle: Mutex::new(HashMap::new()),
            min_revision: Mutex::new(HashMap::new()),
            reserved: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            returned: Mutex::new(HashMap::new()),
            starting: Arc::new(AtomicUsize::new(0)),
            peak_starting: AtomicUsize::new(0),
        });
        tokio::spawn(reap(Arc::downgrade(&pool)));
        pool
    }

    /// Runs `request` on an instance of `spec`.
    pub async fn invoke(&self, spec: Arc<FunctionSpec>, request: InvokeRequest) -> InvokeOutcome {
        let mut lease = match self.lease(spec, &request.request_id).await {
            Ok(lease) => lease,
            Err(outcome) => return *outcome,
        };
        let (result, duration) = lease.instance.invoke(request).await;
        self.finish(lease, result, duration)
    }

    /// Forwards an HTTP request to an instance of the HTTP function `spec`; the outcome (its
    /// result carries no body) and the function's response.
    pub async fn forward(
        &self,
        spec: Arc<FunctionSpec>,
        request_id: &str,
        request: hyper::Request<HttpBody>,
    ) -> (InvokeOutcome, Option<hyper::Response<Bytes>>) {
        let mut lease = match self.lease(spec, request_id).await {
            Ok(lease) => lease,
            Err(outcome) => return (*outcome, None),
        };
        let (result, duration) = match &mut lease.instance {
            Instance::Http(instance) => instance.forward(request).await,
            _ => (
                Err(InvokeFailure::System("not an HTTP function".into())),
                Duration::ZERO,
            ),
        };
        let (result, response) = match result {
            Ok(response) => (Ok(Bytes::new()), Some(response)),
            Err(failure) => (Err(failure), None),
        };
        (self.finish(lease, result, duration), response)
    }

    /// An instance of `spec` for one invocation: an idle one, else a new one (or the outcome
    /// of the failed start).
    async fn lease(
        &self,
        spec: Arc<FunctionSpec>,
        request_id: &str,
    ) -> Result<Lease<'_>, Box<InvokeOutcome>> {
        let key = (spec.function_id.clone(), spec.revision);
        let started_at = Utc::now();
        let busy = BusyGuard::new(&self.busy);
        let found = self.take_idle(&key, &spec).await;
        let cold_start = !matches!(found, Found::Idle(_));
        let start = std::time::Instant::now();
        let started = match found {
            Found::Idle(instance) => Ok(instance),
            Found::Prewarmed(prewarmed) => match self.assign(spec.clone(), prewarmed) {
                Ok(instance) => Ok(instance),
                // Start one as without the pool.
                Err(()) => {
                    let slot = self.slot(&spec.project_id).await;
                    self.start(spec.clone(), slot).await
                }
            },
            Found::Slot(slot) => self.start(spec.clone(), slot).await,
        };
        let instance = match started {
            Ok(instance) => instance,
            Err(failure) => {
                return Err(Box::new(InvokeOutcome {
                    request_id: request_id.to_string(),
                    result: Err(failure),
                    output: Vec::new(),
                    version: spec.version.clone(),
                    started_at,
                    finished_at: Utc::now(),
                    duration: Duration::ZERO,
                    memory_used_mb: 0.0,
                    memory_size_mb: spec.memory.mb(),
                    cold_start,
                    prewarmed: false,
                    init_duration: Some(start.elapsed()),
                }));
            }
        };
        Ok(Lease {
            key,
            instance,
            spec,
            request_id: request_id.to_string(),
            started_at,
            start: cold_start.then(|| start.elapsed()),
            _busy: busy,
        })
    }

    /// An idle instance of version `key`; else a prewarmed sandbox for `spec`; else, waiting
    /// for an idle one to come back while all start slots are taken, a start slot.
    async fn take_idle(&self, key: &VersionKey, spec: &FunctionSpec) -> Found {
        let project = spec.project_id.as_str();
        let pop = || {
            self.idle
                .lock()
                .unwrap()
                .get_mut(key)
                .and_then(|list| list.pop())
        };
        // The warm path: one lock, no waiting.
        if let Some(instance) = pop() {
            return Found::Idle(instance);
        }
        if let Some(prewarmed) = self.launcher.prewarm.as_ref().and_then(|p| p.take(spec)) {
            return Found::Prewarmed(prewarmed);
        }
        let returned = self
            .returned
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .clone();
        loop {
            tokio::select! {
                biased;
                slot = self.slot(project) => {
                    // One may have come back while this waited.
                    return pop().map_or(Found::Slot(slot), Found::Idle);
                }
                _ = returned.notified() => {}
            }
            if let Some(instance) = pop() {
                return Found::Idle(instance);
            }
        }
    }

    /// A start slot for `project`: one of its share, then one of the host's.
    async fn slot(&self, project: &str) -> Slot {
        let share = {
            let mut shares = self.project_starts.lock().unwrap();
            if shares.len() > MAX_PROJECT_SHARES && !shares.contains_key(project) {
                // Forget the projects starting nothing now (ids are cheap without auth).
                let full = self.project_share;
                shares.retain(|_, s| s.available_permits() < full);
            }
            shares
                .entry(project.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.project_share)))
                .clone()
        };
        let closed = "start semaphores are never closed";
        let project = share.acquire_owned().await.expect(closed);
        let host = self.starts.clone().acquire_owned().await.expect(closed);
        Slot {
            _project: project,
            _host: host,
        }
    }

    /// Makes `prewarmed` an instance of `spec`; on failure (logged) the caller starts one.
    fn assign(&self, spec: Arc<FunctionSpec>, prewarmed: Prewarmed) -> Result<Instance, ()> {
        let sandbox = self.launcher.sandbox.as_ref();
        let max_response = self.launcher.max_response;
        ProcessInstance::assign(spec.clone(), prewarmed, sandbox, max_response)
            .map(Instance::Process)
            .map_err(|failure| {
                tracing::warn!(function = %spec.urn, error = %String::from_utf8_lossy(&failure.payload()), "prewarmed sandbox failed");
            })
    }

    /// Starts an instance of `spec` in start `slot`.
    async fn start(
        &self,
        spec: Arc<FunctionSpec>,
        slot: Slot,
    ) -> Result<Instance, crate::InvokeFailure> {
        let now = self.starting.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_starting.fetch_max(now, Ordering::Relaxed);
        let guard = StartGuard {
            _slot: slot,
            starting: self.starting.clone(),
        };
        Instance::start(spec, &self.launcher, guard).await
    }

    /// The prewarmed sandboxes' lanes (none when prewarming is off).
    pub fn prewarm_stats(&self) -> Vec<LaneStats> {
        self.launcher
            .prewarm
            .as_ref()
            .map(|p| p.stats())
            .unwrap_or_default()
    }

    /// Instances starting now, and the most that ever started at once.
    pub fn starting(&self) -> (usize, usize) {
        (
            self.starting.load(Ordering::Relaxed),
            self.peak_starting.load(Ordering::Relaxed),
        )
    }

    /// The outcome of an invocation on `lease`'s instance; gives the instance back.
    fn finish(
        &self,
        mut lease: Lease<'_>,
        result: Result<Bytes, InvokeFailure>,
        duration: Duration,
    ) -> InvokeOutcome {
        let init_duration = lease
            .start
            .map(|start| start + lease.instance.take_init().unwrap_or_default());
        let output = lease.instance.take_log();
        let memory_used_mb = lease.instance.memory_used_mb();
        let memory_size_mb = lease.spec.memory.mb();
        let prewarmed = lease.start.is_some() && lease.instance.prewarmed();
        self.release(lease.key, lease.instance);
        InvokeOutcome {
            request_id: lease.request_id,
            result,
            output,
            version: lease.spec.version.clone(),
            started_at: lease.started_at,
            finished_at: Utc::now(),
            duration,
            memory_used_mb,
            memory_size_mb,
            cold_start: lease.start.is_some(),
            prewarmed,
            init_duration,
        }
    }

    /// Stops reusing instances of `function_id` older than `revision`; kills idle ones now.
    /// `u64::MAX` retires every instance of the function, and its reservation (it was
    /// deleted).
    pub fn retire(&self, function_id: &str, revision: u64) {
        self.reserved
            .lock()
            .unwrap()
            .retain(|(id, rev), _| !(id == function_id && *rev < revision));
        self.min_revision
            .lock()
            .unwrap()
            .insert(function_id.to_string(), revision);
        self.idle
            .lock()
            .unwrap()
            .retain(|(id, rev), _| !(id == function_id && *rev < revision));
        self.returned
            .lock()
            .unwrap()
            .retain(|(id, rev), _| !(id == function_id && *rev < revision));
        if let Some(wasm) = &self.launcher.wasm {
            wasm.retire(function_id, revision);
        }
    }

    /// Instances alive now (idle and busy).
    pub fn instance_count(&self) -> usize {
        let idle: usize = self.idle.lock().unwrap().values().map(Vec::len).sum();
        idle + self.busy.load(Ordering::Relaxed)
    }

    /// Stops every idle instance, waits until each has ended and its resources are released,
    /// then releases the sandbox's host resources (host shutdown, after the API has stopped).
    pub async fn shutdown(&self) {
        let instances: Vec<Instance> = self
            .idle
            .lock()
            .unwrap()
            .drain()
            .flat_map(|(_, list)| list)
            .collect();
        for instance in instances {
            instance.stop().await;
        }
        if let Some(prewarm) = &self.launcher.prewarm {
            prewarm.shutdown().await;
        }
        self.launcher.sandbox.shutdown();
    }

    fn release(&self, key: VersionKey, instance: Instance) {
        let retired = self
            .min_revision
            .lock()
            .unwrap()
            .get(&key.0)
            .is_some_and(|min| key.1 < *min);
        if instance.is_broken() || retired {
            return; // dropping the instance kills its process group
        }
        self.idle
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .push(instance);
        if let Some(returned) = self.returned.lock().unwrap().get(&key) {
            returned.notify_one();
        }
    }

    /// Keeps `count` instances of `spec`'s version warm (reserved instances): starts what is
    /// missing, in the background, and the idle reaper leaves that many alone. 0 ends the
    /// reservation.
    pub fn reserve(self: &Arc<Self>, spec: Arc<FunctionSpec>, count: usize) {
        let key = (spec.function_id.clone(), spec.revision);
        {
            let mut reserved = self.reserved.lock().unwrap();
            reserved.retain(|(id, _), _| *id != spec.function_id);
            if count > 0 {
                reserved.insert(key.clone(), count);
            }
        }
        if count > 0 {
            tokio::spawn(self.clone().start_reserved(key, spec, count));
        }
    }

    /// A new version of a function (code or configuration changed) replaces the old one: the
    /// old version's instances are retired and its reserved instances move to the new one.
    pub fn replace(self: &Arc<Self>, spec: Arc<FunctionSpec>) {
        let reserved = self
            .reserved
            .lock()
            .unwrap()
            .iter()
            .find(|((id, _), _)| *id == spec.function_id)
            .map_or(0, |(_, count)| *count);
        self.retire(&spec.function_id, spec.revision);
        if reserved > 0 {
            self.reserve(spec, reserved);
        }
    }

    async fn start_reserved(
        self: Arc<Self>,
        key: VersionKey,
        spec: Arc<FunctionSpec>,
        count: usize,
    ) {
        let have = self.idle.lock().unwrap().get(&key).map_or(0, Vec::len);
        for _ in have..count {
            let slot = self.slot(&spec.project_id).await;
            match self.start(spec.clone(), slot).await {
                Ok(instance) => self.release(key.clone(), instance),
                Err(failure) => {
                    tracing::warn!(function = %spec.urn, error = %String::from_utf8_lossy(&failure.payload()), "cannot start a reserved instance");
                    return;
                }
            }
        }
    }

    fn reap_idle(&self) {
        let cutoff = self.config.idle_timeout;
        let reserved = self.reserved.lock().unwrap().clone();
        let mut idle = self.idle.lock().unwrap();
        for (key, list) in idle.iter_mut() {
            list.retain(|i| !i.is_broken());
            // The most recently used instances are at the end; keep the reserved ones.
            let keep = reserved.get(key).copied().unwrap_or(0);
            let mut expired = list.len().saturating_sub(keep);
            list.retain(|i| {
                let reap = expired > 0 && i.last_used().elapsed() >= cutoff;
                if reap {
                    expired -= 1;
                }
                !reap
            });
        }
        idle.retain(|_, list| !list.is_empty());
    }
}

async fn reap(pool: Weak<InstancePool>) {
    let period = match pool.upgrade() {
        Some(p) => {
            (p.config.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(10))
        }
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        match pool.upgrade() {
            Some(p) => p.reap_idle(),
            None => return,
        }
    }
}

/// An instance taken for one invocation, and what its outcome's log needs.
struct Lease<'a> {
    key: VersionKey,
    instance: Instance,
    spec: Arc<FunctionSpec>,
    request_id: String,
    started_at: chrono::DateTime<Utc>,
    /// For a new instance: how long [`Instance::start`] took.
    start: Option<Duration>,
    _busy: BusyGuard<'a>,
}

struct BusyGuard<'a>(&'a AtomicUsize);

impl<'a> BusyGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        BusyGuard(counter)
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
