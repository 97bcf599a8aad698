//! Isolation of function instances, and classification of how a run ended.
//!
//! A [`Sandbox`] turns a [`LaunchSpec`] (what to run, with which limits) into a running
//! [`Process`]. The runtimes only talk to the trait, so stronger isolation (cgroups,
//! namespaces, WASM) slots in without touching them. [`ProcessGroupSandbox`] is the baseline:
//! each instance is a child in its own process group with `RLIMIT_NOFILE` 1024, killed as a
//! group, and killed with the host.

mod error;
mod exit;
mod process;
mod process_group;

pub use error::SandboxError;
pub use exit::Exit;
pub use process::Process;
pub use process_group::ProcessGroupSandbox;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Everything needed to start one function instance.
#[derive(Debug)]
pub struct LaunchSpec {
    /// The program to execute (an interpreter or the package's `bootstrap`).
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The complete environment; nothing of the host's environment is inherited.
    pub env: Vec<(String, String)>,
    /// Working directory (the function's code root).
    pub cwd: PathBuf,
    /// The function's configured memory, MB.
    pub memory_mb: u32,
    /// Where the instance's stdout and stderr go (the write end of its log pipe).
    pub output: OwnedFd,
}

/// Which limits the kernel enforces for instances started by a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforcement {
    /// Short name of the sandbox, e.g. `process-group`.
    pub mode: &'static str,
    /// The limits actually enforced, e.g. `RLIMIT_NOFILE=1024`.
    pub enforced: Vec<String>,
    /// FunctionGraph limits this sandbox does not enforce.
    pub not_enforced: Vec<String>,
}

/// Starts function instances in isolation.
pub trait Sandbox: Send + Sync + 'static {
    /// Starts the instance described by `spec`.
    fn launch(&self, spec: LaunchSpec) -> Result<Process, SandboxError>;

    /// What this sandbox enforces, for `/healthz` and the start-up log.
    fn enforcement(&self) -> Enforcement;
}
