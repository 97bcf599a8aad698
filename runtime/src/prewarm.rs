//! Prewarmed sandboxes: Python and Node.js instances made before any function needs them.
//!
//! Nearly all of a process runtime's cold start is its interpreter booting and importing the
//! bootstrap (the sandbox itself costs a few milliseconds). So, per runtime, a lane keeps
//! sandboxes ready whose interpreter has started, imported fgs's bootstrap (and the stdlib
//! modules handlers commonly use) and waits for an assignment (`GET /v1/runtime/assignment`).
//! A cold start takes one: the sandbox helper mounts the function's code at the code root, the
//! cgroup gets the function's memory limit and CPU weight, the bootstrap gets the function's
//! environment, then imports the handler and runs the initializer as any instance does. A
//! prewarmed sandbox serves exactly one function instance for its life.
//!
//! Each lane's size follows the cold-start rate, between its minimum and maximum: the number
//! of instances taken (or missed) in the last [`RATE_WINDOW`], shrinking back to the minimum
//! after [`SHRINK_AFTER`] without takes. Ready sandboxes count against a host memory budget
//! (their cgroups' use), beyond which a lane does not refill. A lane refills one sandbox at a
//! time, at a low CPU weight (the sandbox's until assigned), so that refilling yields to the
//! cold starts it exists to serve; a start slot is not needed to take one, as an assignment
//! is a few system calls.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use fgs_sandbox::{Control, LaunchSpec, Sandbox};
use tokio::sync::Notify;

use crate::function::host_environment;
use crate::logs::LogPipe;
use crate::process_instance::Launched;
use crate::runtime_api::RuntimeApi;
use crate::{FunctionSpec, Language, RuntimeLayout};

/// Cold starts counted for a lane's size.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// A lane above its minimum shrinks after this long without a take.
const SHRINK_AFTER: Duration = Duration::from_secs(60);
/// How long a prewarmed interpreter may take to be ready.
const READY_BUDGET: Duration = Duration::from_secs(30);
/// The memory limit of a sandbox until assigned (an idle interpreter needs a fraction).
const UNASSIGNED_MEMORY_MB: u32 = 128;
/// The most sandboxes a lane holds (and the most takes it remembers: its size never exceeds
/// its maximum, so more would not change it).
const MAX_LANE: usize = 64;
/// Tells the bootstrap to wait for an assignment.
const PREWARMED_ENV: &str = "FGS_PREWARMED";

/// One runtime's lane: `min..=max` ready sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneConfig {
    pub language: Language,
    pub min: usize,
    pub max: usize,
}

/// Settings of the prewarmed pool (`--prewarm`, `--prewarm-memory`).
#[derive(Debug, Clone, Default)]
pub struct PrewarmConfig {
    /// No lanes: prewarming is off.
    pub lanes: Vec<LaneConfig>,
    /// The memory ready sandboxes may use together, bytes.
    pub memory_budget: u64,
}

impl PrewarmConfig {
    /// Parses `python=2..8,nodejs=1..4` (a single number is a fixed size) or `off`.
    pub fn parse(text: &str, memory_budget: u64) -> Result<Self, String> {
        let mut config = Self {
            lanes: Vec::new(),
            memory_budget,
        };
        if text.trim() == "off" {
            return Ok(config);
        }
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, range) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected RUNTIME=MIN..MAX"))?;
            let language = match name.trim() {
                "python" => Language::Python,
                "nodejs" => Language::NodeJs,
                other => return Err(format!("{other:?}: prewarming takes python or nodejs")),
            };
            let number = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("{part:?}: {s:?} is not a count"))
            };
            let (min, max) = match range.split_once("..") {
                Some((min, max)) => (number(min)?, number(max)?),
                None => (number(range)?, number(range)?),
            };
            if min > max || max == 0 || max > MAX_LANE {
                return Err(format!(
                    "{part:?}: expected 0 <= MIN <= MAX, 1 <= MAX <= 64"
                ));
            }
            if config.lanes.iter().any(|l| l.language == language) {
                return Err(format!("{name:?} named twice"));
            }
            config.lanes.push(LaneConfig { language, min, max });
        }
        Ok(config)
    }
}

/// A sandbox whose interpreter waits for its function.
pub(crate) struct Prewarmed {
    pub launched: Launched,
    pub control: Control,
    /// What it counted against the memory budget.
    memory: u64,
}

/// One lane's figures, for `/metrics`.
#[derive(Debug, Clone)]
pub struct LaneStats {
    pub runtime: &'static str,
    /// Ready sandboxes now.
    pub ready: usize,
    /// Cold starts that took a ready sandbox, and those that found none.
    pub hits: u64,
    pub misses: u64,
}

struct Lane {
    config: LaneConfig,
    ready: Mutex<VecDeque<Prewarmed>>,
    /// When instances were taken or missed, within the rate window.
    takes: Mutex<VecDeque<Instant>>,
    hits: AtomicU64,
    misses: AtomicU64,
    wake: Notify,
}

/// The prewarmed sandboxes of a host.
pub(crate) struct Prewarm {
    sandbox: Arc<dyn Sandbox>,
    layout: RuntimeLayout,
    max_response: u64,
    lanes: Vec<Lane>,
    budget: u64,
    used: AtomicU64,
    stopped: AtomicBool,
}

impl Prewarm {
    /// The pool, refilling in the background; `None` when `config` has no lanes or the
    /// sandbox cannot prewarm (it needs the namespace sandbox).
    pub fn start(
        config: &PrewarmConfig,
        sandbox: Arc<dyn Sandbox>,
        layout: RuntimeLayout,
        max_response: u64,
    ) -> Option<Arc<Self>> {
        if config.lanes.is_empty() {
            return None;
        }
        if !sandbox.prepares() {
            tracing::warn!("--prewarm needs the namespace sandbox (root); prewarming is off");
            return None;
        }
        let lanes = config
            .lanes
            .iter()
            .map(|&config| Lane {
                config,
                ready: Mutex::new(VecDeque::new()),
                takes: Mutex::new(VecDeque::new()),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                wake: Notify::new(),
            })
            .collect();
        let pool = Arc::new(Self {
            sandbox,
            layout,
            max_response,
            lanes,
            budget: config.memory_budget,
            used: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        for lane in 0..pool.lanes.len() {
            tokio::spawn(refill(Arc::downgrade(&pool), lane));
        }
        Some(pool)
    }

    /// A ready sandbox for `spec`, when it may use one and one is ready (a hit); counts the
    /// take either way, so that the lane grows with the cold-start rate.
    pub fn take(&self, spec: &FunctionSpec) -> Option<Prewarmed> {
        if !spec.prewarmable() {
            return None;
        }
        let lane = self
            .lanes
            .iter()
            .find(|l| l.config.language == spec.language)?;
        {
            let mut takes = lane.takes.lock().unwrap();
            if takes.len() >= MAX_LANE {
                takes.pop_front();
            }
            takes.push_back(Instant::now());
        }
        let taken = {
            let mut ready = lane.ready.lock().unwrap();
            // One that ended while it waited is of no use (nor counts against the budget).
            ready.retain(|p| {
                let alive = p.launched.process.exit().is_none();
                if !alive {
                    self.used.fetch_sub(p.memory, Ordering::Relaxed);
                }
                alive
            });
            ready.pop_front()
        };
        lane.wake.notify_one();
        match taken {
            Some(prewarmed) => {
                self.used.fetch_sub(prewarmed.memory, Ordering::Relaxed);
                lane.hits.fetch_add(1, Ordering::Relaxed);
                Some(prewarmed)
            }
            None => {
                lane.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn stats(&self) -> Vec<LaneStats> {
        self.lanes
            .iter()
            .map(|lane| LaneStats {
                runtime: match lane.config.language {
                    Language::NodeJs => "nodejs",
                    _ => "python",
                },
                ready: lane.ready.lock().unwrap().len(),
                hits: lane.hits.load(Ordering::Relaxed),
                misses: lane.misses.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Stops refilling and ends every ready sandbox, waiting until each is gone.
    pub async fn shutdown(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for lane in &self.lanes {
            lane.wake.notify_one();
            let ready: Vec<Prewarmed> = lane.ready.lock().unwrap().drain(..).collect();
            for prewarmed in ready {
                prewarmed.launched.process.kill();
                prewarmed.launched.process.wait().await;
            }
        }
    }

    /// How many sandboxes `lane` should hold now, and whether it has been idle long enough
    /// to shrink.
    fn target(&self, lane: &Lane) -> (usize, bool) {
        let now = Instant::now();
        let mut takes = lane.takes.lock().unwrap();
        let idle = takes
            .back()
            .is_none_or(|last| now.duration_since(*last) >= SHRINK_AFTER);
        while takes
            .front()
            .is_some_and(|t| now.duration_since(*t) > SHRINK_AFTER)
        {
            takes.pop_front();
        }
        let recent = takes
            .iter()
            .filter(|t| now.duration_since(**t) <= RATE_WINDOW)
            .count();
        let config = lane.config;
        (recent.clamp(config.min, config.max), idle)
    }

    /// Makes one sandbox for `language` and waits until its interpreter waits for work.
    async fn make(&self, language: Language) -> std::io::Result<Prewarmed> {
        let failed = |e: String| std::io::Error::other(e);
        let sandbox = self.sandbox.clone();
        let network = tokio::task::spawn_blocking(move || sandbox.network())
            .await
            .map_err(|e| failed(e.to_string()))??;
        let (listener, network) = network.into_parts();
        let api = RuntimeApi::start(listener, self.max_response)?;
        let (logs, output) = LogPipe::new()?;
        let (code_root, runtime_root) = self
            .sandbox
            .instance_paths(Path::new(""), self.layout.root());
        let (program, args) = self
            .layout
            .command(language, &code_root, &runtime_root)
            .map_err(|e| failed(e.to_string()))?;
        let mut env = host_environment(
            &api.addr.to_string(),
            &code_root.to_string_lossy(),
            &runtime_root.to_string_lossy(),
            self.max_response,
        );
        env.push((PREWARMED_ENV.into(), "1".into()));
        let spec = LaunchSpec {
            program,
            args,
            env,
            cwd: code_root,
            code_dir: Default::default(),
            runtime_dir: self.layout.root().to_path_buf(),
            dependency_dirs: Vec::new(),
            ro_paths: self.layout.ro_paths(language),
            memory_mb: UNASSIGNED_MEMORY_MB,
            output,
            netns: network.as_ref().map(|n| n.path()),
        };
        let (process, control) = self
            .sandbox
            .prepare(spec)
            .map_err(|e| failed(e.to_string()))?;
        let mut waiting = api.waiting.clone();
        tokio::select! {
            ready = tokio::time::timeout(READY_BUDGET, waiting.wait_for(|w| *w)) => {
                if !matches!(ready, Ok(Ok(_))) {
                    return Err(failed(format!("not ready within {}s", READY_BUDGET.as_secs())));
                }
            }
            exit = process.wait() => {
                let output = String::from_utf8_lossy(&logs.take()).into_owned();
                return Err(failed(format!("ended before it was ready ({exit:?}): {output}")));
            }
        }
        let memory = process.memory_current();
        Ok(Prewarmed {
            launched: Launched {
                process,
                api,
                network,
                logs,
            },
            control,
            memory,
        })
    }
}

/// Keeps lane `index` of `pool` at its target size until the pool is gone or stopped.
async fn refill(pool: Weak<Prewarm>, index: usize) {
    let mut failures = 0u32;
    loop {
        let Some(pool) = pool.upgrade() else { return };
        if pool.stopped.load(Ordering::SeqCst) {
            return;
        }
        let lane = &pool.lanes[index];
        let (target, idle) = pool.target(lane);
        let have = lane.ready.lock().unwrap().len();
        let affordable = pool.used.load(Ordering::Relaxed) < pool.budget;
        if have < target && affordable {
            match pool.make(lane.config.language).await {
                Ok(prewarmed) if !pool.stopped.load(Ordering::SeqCst) => {
                    failures = 0;
                    pool.used.fetch_add(prewarmed.memory, Ordering::Relaxed);
                    lane.ready.lock().unwrap().push_back(prewarmed);
                }
                Ok(_) => return,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(runtime = ?lane.config.language, error = %e, "cannot prewarm a sandbox");
                    let backoff = Duration::from_millis(250 << failures.min(7));
                    drop(pool);
                    tokio::time::sleep(backoff).await;
                }
            }
            continue;
        }
        if have > target && idle {
            let oldest = lane.ready.lock().unwrap().pop_front();
            if let Some(prewarmed) = oldest {
                pool.used.fetch_sub(prewarmed.memory, Ordering::Relaxed);
            }
            continue;
        }
        let wake = async { lane.wake.notified().await };
        tokio::select! {
            _ = wake => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lanes() {
        let config = PrewarmConfig::parse("python=2..8,nodejs=1..4", 1).unwrap();
        assert_eq!(
            config.lanes,
            vec![
                LaneConfig {
                    language: Language::Python,
                    min: 2,
                    max: 8
                },
                LaneConfig {
                    language: Language::NodeJs,
                    min: 1,
                    max: 4
                },
            ]
        );
        assert_eq!(PrewarmConfig::parse("python=3", 1).unwrap().lanes[0].max, 3);
        assert!(PrewarmConfig::parse("off", 1).unwrap().lanes.is_empty());
        for bad in [
            "java=1..2",
            "python=4..2",
            "python",
            "python=0..0",
            "python=1,python=2",
        ] {
            assert!(PrewarmConfig::parse(bad, 1).is_err(), "{bad}");
        }
    }
}
