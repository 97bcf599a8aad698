//! What the host tells the sandbox helper (`fgs-sandbox-exec`) to build and run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The instance's view of the file system and the program to run in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecSpec {
    /// An empty host directory the instance's root tmpfs is mounted on (in the instance's own
    /// mount namespace, so every instance can use the same one).
    pub root_mountpoint: PathBuf,
    /// Host directories shown read-only at the same path (interpreters, libraries, certs).
    pub ro_binds: Vec<PathBuf>,
    /// Host files or directories shown read-only at the same path when they exist.
    pub ro_binds_if_present: Vec<PathBuf>,
    /// Symlinks to recreate in the new root (`/bin -> usr/bin` on merged-/usr systems).
    pub symlinks: Vec<(PathBuf, PathBuf)>,
    /// Host code directory, shown read-only at `code_root`; `None` for a prewarmed instance,
    /// whose code is assigned later (over the control socket, see `assign`).
    pub code_dir: Option<PathBuf>,
    pub code_root: PathBuf,
    /// Dependency packages: each host directory shown read-only at its path inside.
    pub dependency_binds: Vec<(PathBuf, PathBuf)>,
    /// Host directory of the shipped bootstraps, shown read-only at `runtime_root`.
    pub runtime_dir: PathBuf,
    pub runtime_root: PathBuf,
    /// Size of the instance's `/tmp` tmpfs, bytes.
    pub tmp_bytes: u64,
    /// The network namespace to join (a `/proc/<pid>/fd/<n>` of the host), or the host's.
    pub netns: Option<PathBuf>,
    /// The files the helper writes its pid to, joining the instance's cgroups.
    pub cgroup_procs: Vec<PathBuf>,
    pub hostname: String,
    /// The function's uid and gid as it sees them (FunctionGraph's 1003)...
    pub uid: u32,
    pub gid: u32,
    /// ...and who it is on the host: an id of its own, which no other instance holds while it
    /// lives (mapped to `uid`/`gid` by a user namespace of its own).
    pub host_id: u32,
    pub nofile: u64,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// The helper holds a control socket at descriptor 3, which PID 1 serves assignments on.
    pub control: bool,
}
