//! Isolation of function instances, and classification of how a run ended.
//!
//! A [`Sandbox`] turns a [`LaunchSpec`] (what to run, with which limits) into a running
//! [`Process`]. The runtimes only talk to the trait, so stronger isolation slots in without
//! touching them:
//!
//! - [`NamespaceSandbox`] (needs root): cgroups (memory, pids, CPU), mount/PID/IPC/UTS
//!   namespaces, a minimal read-only root with a private 512 MB `/tmp`, an unprivileged user
//!   and a seccomp filter. The kernel enforces FunctionGraph's limits and reports violations
//!   (OOM kills), which [`Exit`] classifies.
//! - [`ProcessGroupSandbox`]: the fallback without root: a process group with
//!   `RLIMIT_NOFILE` 1024, killed as a group and with the host.

mod cgroup;
mod error;
mod exit;
mod lease;
pub mod namespace;
pub mod network;
mod process;
mod process_group;
pub mod wasm;

pub use cgroup::ControlGroup;
pub use error::SandboxError;
pub use exit::Exit;
pub use namespace::{Control, NamespaceConfig, NamespaceError, NamespaceSandbox};
pub use process::Process;
pub use process_group::ProcessGroupSandbox;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Everything needed to start one function instance. Paths in `program`, `args`, `env` and
/// `cwd` are as the instance sees them (see [`Sandbox::instance_paths`]).
#[derive(Debug)]
pub struct LaunchSpec {
    /// The program to execute (an interpreter or the package's `bootstrap`).
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The complete environment; nothing of the host's environment is inherited.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The function's code, on the host.
    pub code_dir: PathBuf,
    /// fgs's shipped bootstraps, on the host.
    pub runtime_dir: PathBuf,
    /// The function's dependency packages, unpacked, on the host (each shown read-only where
    /// [`Sandbox::dependency_paths`] says).
    pub dependency_dirs: Vec<PathBuf>,
    /// Further host directories the runtime needs (an interpreter's install prefix), shown
    /// read-only at the same path.
    pub ro_paths: Vec<PathBuf>,
    /// The function's configured memory, MB.
    pub memory_mb: u32,
    /// Where the instance's stdout and stderr go (the write end of its log pipe).
    pub output: OwnedFd,
    /// The network namespace to run in (from [`Sandbox::network`]); `None`: the host's.
    pub netns: Option<PathBuf>,
}

/// Which limits the kernel enforces for instances started by a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforcement {
    /// Short name of the sandbox: `namespace` or `process-group`.
    pub mode: &'static str,
    /// The limits actually enforced.
    pub enforced: Vec<String>,
    /// FunctionGraph limits this sandbox does not enforce.
    pub not_enforced: Vec<String>,
    /// Why a weaker sandbox is in use, when one is.
    pub reason: Option<String>,
    /// The cgroup under which instance groups are created, when cgroups are used.
    pub cgroup_parent: Option<String>,
}

/// Starts function instances in isolation.
pub trait Sandbox: Send + Sync + 'static {
    /// Starts the instance described by `spec`.
    fn launch(&self, spec: LaunchSpec) -> Result<Process, SandboxError>;

    /// Starts an instance without code (a prewarmed instance): its runtime starts and waits,
    /// and [`Control::assign`] later shows one function's code to it. `spec.code_dir` and
    /// `spec.dependency_dirs` are not used; `spec.memory_mb` is the limit until assigned.
    fn prepare(&self, spec: LaunchSpec) -> Result<(Process, Control), SandboxError> {
        Err(SandboxError::Spawn {
            program: spec.program,
            source: std::io::Error::other("this sandbox cannot prewarm instances"),
        })
    }

    /// Whether [`Sandbox::prepare`] works here (it needs the namespace sandbox).
    fn prepares(&self) -> bool {
        false
    }

    /// What this sandbox enforces, for `/healthz` and the start-up log.
    fn enforcement(&self) -> Enforcement;

    /// The network for a new instance: where its runtime API listens, and the namespace it
    /// runs in. By default the host's network, with the API on a loopback port.
    fn network(&self) -> std::io::Result<network::InstanceNetwork> {
        network::InstanceNetwork::host()
    }

    /// Where an instance sees its code directory and the shipped bootstraps.
    fn instance_paths(&self, code_dir: &Path, runtime_dir: &Path) -> (PathBuf, PathBuf);

    /// Where an instance sees its dependency packages (host directories, in order). By
    /// default where they are on the host.
    fn dependency_paths(&self, dependency_dirs: &[PathBuf]) -> Vec<PathBuf> {
        dependency_dirs.to_vec()
    }

    /// Releases host resources once every instance has ended.
    fn shutdown(&self) {}
}
