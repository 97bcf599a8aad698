//! Control groups of instances: memory, pids and CPU limits the kernel enforces, and what
//! the kernel reports back (OOM kills, peak memory).
//!
//! [`ControlGroup`] is the one interface over cgroup v1 (one directory per controller under
//! `/sys/fs/cgroup/<controller>/`) and v2 (one unified directory); `cgroups-rs` does the file
//! work, the two implementations differ where the kernel interfaces do (OOM counters, peak
//! memory, killing every member). Each instance gets its own group under
//! `fgs/<host key>/`, removed when the instance ends; a host removes what a crashed
//! predecessor with the same key left behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::hierarchies;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, Controller, MaxValue};

/// The controllers fgs uses.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// Limits of one instance.
#[derive(Debug, Clone, Copy)]
pub struct GroupLimits {
    pub memory_bytes: i64,
    pub pids_max: i64,
    /// Relative CPU weight while the instance starts (v1 `cpu.shares`; converted to
    /// `cpu.weight` on v2): a start is a burst of work, not the tenant's steady load, and one
    /// starved by a busy machine would overrun its start budget.
    pub start_cpu_shares: u64,
}

/// The CPU weight of an instance that starts, in `cpu.shares` (1024: an ordinary process's).
pub const START_CPU_SHARES: u64 = 1024;

/// The CPU weight of a prewarmed sandbox until a function takes it (background work).
pub const PREWARM_CPU_SHARES: u64 = 256;

/// One instance's control group.
pub trait ControlGroup: Send + Sync {
    /// The `cgroup.procs` files a process writes its pid to in order to join the group.
    fn join_files(&self) -> Vec<PathBuf>;
    /// How many processes the kernel's OOM killer has killed in the group.
    fn oom_kills(&self) -> u64;
    /// Peak memory use of the group, bytes (0 when the kernel does not report it).
    fn memory_peak(&self) -> u64;
    /// Sets the group's relative CPU weight (`cpu.shares`, converted on v2).
    fn set_cpu_shares(&self, shares: u64);
    /// Sets the group's memory limit (and no swap), bytes: a prewarmed sandbox gets its
    /// function's memory when assigned.
    fn set_memory_limit(&self, bytes: i64) -> std::io::Result<()>;
    /// Memory the group uses now, bytes.
    fn memory_current(&self) -> u64;
    /// Kills every process in the group and removes it.
    fn destroy(&self);
}

/// Where the groups of one host live, and how to create them.
pub struct Cgroups {
    parent: String,
}

impl Cgroups {
    /// Prepares `fgs/<host_key>` and removes leftovers of a previous host with that key.
    /// Fails when cgroups are not writable here (not root, read-only cgroupfs, controllers
    /// missing).
    pub fn open(host_key: &str) -> Result<Self, String> {
        let parent = format!("fgs/{host_key}");
        let probe = format!("{parent}/probe-{}", std::process::id());
        let group = Cgroup::new_with_specified_controllers(
            hierarchies::auto(),
            &probe,
            Some(controllers()),
        )
        .map_err(|e| format!("cannot create cgroup {probe}: {e}"))?;
        let missing: Vec<_> = CONTROLLERS
            .iter()
            .filter(|c| {
                !group
                    .subsystems()
                    .iter()
                    .any(|s| s.controller_name() == **c)
            })
            .collect();
        let _ = group.delete();
        if !missing.is_empty() {
            return Err(format!("cgroup controllers not available: {missing:?}"));
        }
        let cgroups = Cgroups { parent };
        cgroups.remove_leftovers();
        Ok(cgroups)
    }

    /// Whether the unified (v2) hierarchy is in use.
    pub fn is_v2(&self) -> bool {
        hierarchies::is_cgroup2_unified_mode()
    }

    /// Creates the group `name` with `limits`.
    pub fn create(
        &self,
        name: &str,
        limits: GroupLimits,
    ) -> std::io::Result<Box<dyn ControlGroup>> {
        let path = format!("{}/{name}", self.parent);
        let group =
            Cgroup::new_with_specified_controllers(hierarchies::auto(), &path, Some(controllers()))
                .map_err(io_error)?;
        let configured = configure(&group, limits);
        let group: Box<dyn ControlGroup> = if group.v2() {
            Box::new(V2(group))
        } else {
            Box::new(V1(group))
        };
        if let Err(e) = configured {
            group.destroy();
            return Err(e);
        }
        Ok(group)
    }

    /// The host's parent group, e.g. `fgs/<host key>`.
    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// Kills what is left in the instance groups and removes them.
    pub fn remove_leftovers(&self) {
        for name in self.child_groups() {
            let path = format!("{}/{name}", self.parent);
            let group =
                Cgroup::load_with_specified_controllers(hierarchies::auto(), &path, controllers());
            let group: Box<dyn ControlGroup> = if group.v2() {
                Box::new(V2(group))
            } else {
                Box::new(V1(group))
            };
            group.destroy();
            tracing::info!(cgroup = %path, "removed leftover cgroup");
        }
    }

    /// Removes the host's parent group (at shutdown, when every instance has ended).
    pub fn remove_parent(&self) {
        let group = Cgroup::load_with_specified_controllers(
            hierarchies::auto(),
            &self.parent,
            controllers(),
        );
        let _ = group.delete();
    }

    fn child_groups(&self) -> Vec<String> {
        let hier = hierarchies::auto();
        let base = if hierarchies::is_cgroup2_unified_mode() {
            hier.root().join(&self.parent)
        } else {
            hier.root().join("memory").join(&self.parent)
        };
        std::fs::read_dir(base)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn controllers() -> Vec<String> {
    CONTROLLERS.iter().map(|s| s.to_string()).collect()
}

fn io_error(e: cgroups_rs::fs::error::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn configure(group: &Cgroup, limits: GroupLimits) -> std::io::Result<()> {
    set_memory(group, limits.memory_bytes)?;
    let pids: &PidController = group
        .controller_of()
        .ok_or_else(|| std::io::Error::other("no pids controller"))?;
    pids.set_pid_max(MaxValue::Value(limits.pids_max))
        .map_err(io_error)?;
    let cpu: &CpuController = group
        .controller_of()
        .ok_or_else(|| std::io::Error::other("no cpu controller"))?;
    cpu.set_shares(limits.start_cpu_shares).map_err(io_error)?;
    Ok(())
}

/// The memory limit, without swap: memory+swap may not exceed memory (v1 needs the
/// accounting enabled).
fn set_memory(group: &Cgroup, bytes: i64) -> std::io::Result<()> {
    let mem: &MemController = group
        .controller_of()
        .ok_or_else(|| std::io::Error::other("no memory controller"))?;
    if group.v2() {
        mem.set_limit(bytes).map_err(io_error)?;
        let _ = mem.set_memswap_limit(0);
    } else {
        // v1 keeps memory <= memory+swap at every step: raising, memory+swap goes first
        // (lowering, that first try fails and the second one sets it).
        let _ = mem.set_memswap_limit(bytes);
        mem.set_limit(bytes).map_err(io_error)?;
        let _ = mem.set_memswap_limit(bytes);
    }
    let _ = mem.set_swappiness(0);
    Ok(())
}

fn memory_current(group: &Cgroup, file: &str) -> u64 {
    group
        .controller_of::<MemController>()
        .map(|m| read_number(&m.path().join(file)))
        .unwrap_or(0)
}

fn set_shares(group: &Cgroup, shares: u64) {
    if let Some(cpu) = group.controller_of::<CpuController>() {
        if let Err(e) = cpu.set_shares(shares) {
            tracing::warn!(error = %e, "cannot set an instance's CPU weight");
        }
    }
}

/// Every `cgroup.procs` file of the group's controller directories.
fn procs_files(group: &Cgroup) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = group
        .subsystems()
        .iter()
        .map(|s| s.to_controller().path().join("cgroup.procs"))
        .collect();
    files.sort();
    files.dedup();
    files
}

fn read_key(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

fn read_number(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// SIGKILLs every process listed in the group until none is left, then removes it.
fn kill_and_remove(group: &Cgroup) {
    for _ in 0..200 {
        let procs = group.procs();
        if procs.is_empty() {
            break;
        }
        for pid in procs {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid.pid as i32),
                nix::sys::signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for _ in 0..200 {
        if group.delete().is_ok() || !group.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::warn!(cgroup = group.path(), "could not remove cgroup");
}

/// cgroup v1: separate hierarchies per controller.
struct V1(Cgroup);

impl ControlGroup for V1 {
    fn join_files(&self) -> Vec<PathBuf> {
        procs_files(&self.0)
    }

    fn set_memory_limit(&self, bytes: i64) -> std::io::Result<()> {
        set_memory(&self.0, bytes)
    }

    fn memory_current(&self) -> u64 {
        memory_current(&self.0, "memory.usage_in_bytes")
    }

    fn oom_kills(&self) -> u64 {
        self.0
            .controller_of::<MemController>()
            .map(|m| read_key(&m.path().join("memory.oom_control"), "oom_kill "))
            .unwrap_or(0)
    }

    fn memory_peak(&self) -> u64 {
        self.0
            .controller_of::<MemController>()
            .map(|m| read_number(&m.path().join("memory.max_usage_in_bytes")))
            .unwrap_or(0)
    }

    fn set_cpu_shares(&self, shares: u64) {
        set_shares(&self.0, shares);
    }

    fn destroy(&self) {
        kill_and_remove(&self.0);
    }
}

/// cgroup v2: one unified directory.
struct V2(Cgroup);

impl ControlGroup for V2 {
    fn join_files(&self) -> Vec<PathBuf> {
        procs_files(&self.0)
    }

    fn set_memory_limit(&self, bytes: i64) -> std::io::Result<()> {
        set_memory(&self.0, bytes)
    }

    fn memory_current(&self) -> u64 {
        memory_current(&self.0, "memory.current")
    }

    fn oom_kills(&self) -> u64 {
        self.0
            .controller_of::<MemController>()
            .map(|m| read_key(&m.path().join("memory.events"), "oom_kill "))
            .unwrap_or(0)
    }

    fn memory_peak(&self) -> u64 {
        self.0
            .controller_of::<MemController>()
            .map(|m| read_number(&m.path().join("memory.peak")))
            .unwrap_or(0)
    }

    fn set_cpu_shares(&self, shares: u64) {
        set_shares(&self.0, shares);
    }

    fn destroy(&self) {
        let _ = self.0.kill();
        kill_and_remove(&self.0);
    }
}
