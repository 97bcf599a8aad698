//! The kernel-enforced sandbox: cgroups, namespaces, a minimal read-only root, a private
//! `/tmp`, an unprivileged user and a seccomp filter. Needs root.
//!
//! What a function sees (the answer to the FunctionGraph FAQ "which directories can be
//! accessed"):
//!
//! | path | what |
//! |---|---|
//! | `/opt/function/code` | the function's code package, read-only (`RUNTIME_CODE_ROOT`) |
//! | `/opt/function/dependencies/{n}` | its dependency packages in order, read-only |
//! | `/home/snuser/runtime` | fgs's bootstraps, read-only (`RUNTIME_ROOT`) |
//! | `/tmp` | a fresh 512 MB tmpfs per instance, the only writable place |
//! | `/usr` (and `/bin`, `/lib`, `/lib64`, `/sbin`) | the host's, read-only, no setuid |
//! | the interpreter's install prefix (e.g. a pyenv Python) | the host's, read-only |
//! | `/etc` | generated `passwd`, `group`, `hostname`; the host's TLS certificates, `resolv.conf`, `hosts`, `nsswitch.conf`, `localtime`, `ld.so.cache`, read-only |
//! | `/proc` | the instance's own PID namespace only |
//! | `/dev` | `null`, `zero`, `full`, `random`, `urandom`, `tty`, `shm` (64 MB), fd links |
//!
//! Everything else of the host (its `/root`, `/home`, `/var`, the fgs data dir, other
//! instances) is absent. The function runs as uid/gid 1003 (`snuser`) without capabilities, in
//! a user namespace of its own that maps 1003 to a host id no other live instance holds (from
//! [`HOST_IDS`]), in its own mount, PID, IPC and UTS namespaces, and (unless `--network host`) its own network
//! namespace, where its runtime API listens ([`crate::network`]). The root itself is read-only.

mod assign;
mod exec;
mod seccomp;
mod spec;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use assign::Control;
pub use exec::main as exec_main;
pub use spec::ExecSpec;

use fgs_limits::instance::{MAX_OPEN_FILES, MAX_TASKS, TMP_BYTES};

use crate::cgroup::{Cgroups, GroupLimits, PREWARM_CPU_SHARES, START_CPU_SHARES};
use crate::lease::Block;
use crate::network::{InstanceNetwork, NetworkMode, Networks};
use crate::process::instance_command;
use crate::{Enforcement, LaunchSpec, Process, Sandbox, SandboxError};

/// Where code is mounted in an instance (the only place an assignment may mount).
pub const MOUNT_ROOT: &str = "/opt/function";
/// Where an instance sees its code.
pub const CODE_ROOT: &str = "/opt/function/code";
/// Where an instance sees its dependency packages: `{DEPENDENCY_ROOT}/0`, `/1`, …
pub const DEPENDENCY_ROOT: &str = "/opt/function/dependencies";
/// Where an instance sees the shipped bootstraps.
pub const RUNTIME_ROOT: &str = "/home/snuser/runtime";
/// FunctionGraph's function user (the documented default uid/gid of function processes).
pub const FUNCTION_UID: u32 = 1003;
/// Host uids/gids of instances: each host takes one of `ID_BLOCKS` blocks of `IDS_PER_BLOCK`
/// from here, far above the accounts a distribution or a user creates. A block holds more than
/// the instances a host can hold (`--host-concurrency` running plus the warm ones).
pub const HOST_IDS: u32 = 1_000_000_000;
const ID_BLOCKS: u32 = 64;
const IDS_PER_BLOCK: u32 = 65_536;

/// Settings of a [`NamespaceSandbox`].
#[derive(Debug, Clone)]
pub struct NamespaceConfig {
    /// The `fgs-sandbox-exec` helper binary.
    pub helper: PathBuf,
    /// An empty directory instances mount their root on (each in its own mount namespace).
    pub root_mountpoint: PathBuf,
    /// Names this host's cgroups (`fgs/<host_key>/…`); a restarted host with the same key
    /// removes what its predecessor left.
    pub host_key: String,
    /// The instances' network.
    pub network: NetworkMode,
}

/// Instances in cgroups and namespaces, with a minimal root. See the module docs.
pub struct NamespaceSandbox {
    config: NamespaceConfig,
    cgroups: Cgroups,
    networks: Arc<Networks>,
    /// The host ids this host's instances run as.
    ids: Block,
    symlinks: Vec<(PathBuf, PathBuf)>,
    ro_binds: Vec<PathBuf>,
    next_id: AtomicU64,
}

/// Why the namespace sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// This host cannot sandbox at all (no root, no writable cgroups, no helper): a caller may
    /// fall back to a weaker sandbox.
    #[error("{0}")]
    Unavailable(String),
    /// It could, but not with the network asked for: falling back would silently drop every
    /// other wall too, so this is for the operator to fix (install `nft`, or pick a network).
    #[error("--network {mode}: {reason}")]
    Network { mode: &'static str, reason: String },
}

impl NamespaceSandbox {
    /// Checks that this host can sandbox (root, writable cgroups, the helper) and prepares it.
    pub fn new(config: NamespaceConfig) -> Result<Self, NamespaceError> {
        let unavailable = NamespaceError::Unavailable;
        if !nix::unistd::geteuid().is_root() {
            return Err(unavailable("not running as root".into()));
        }
        if !config.helper.is_file() {
            return Err(unavailable(format!(
                "sandbox helper {} not found",
                config.helper.display()
            )));
        }
        std::fs::create_dir_all(&config.root_mountpoint).map_err(|e| {
            unavailable(format!(
                "cannot create {}: {e}",
                config.root_mountpoint.display()
            ))
        })?;
        let cgroups = Cgroups::open(&config.host_key).map_err(unavailable)?;
        let ids = Block::take("uid", ID_BLOCKS, IDS_PER_BLOCK).map_err(unavailable)?;
        let networks = Networks::new(config.network, &config.host_key).map_err(|reason| {
            NamespaceError::Network {
                mode: config.network.name(),
                reason,
            }
        })?;
        // Merged-/usr systems have /bin -> usr/bin and the like: recreate the links, bind /usr.
        let mut symlinks = Vec::new();
        let mut ro_binds = vec![PathBuf::from("/usr")];
        for top in ["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"] {
            let path = PathBuf::from(top);
            match std::fs::read_link(&path) {
                Ok(target) => symlinks.push((path, target)),
                Err(_) if path.is_dir() => ro_binds.push(path),
                Err(_) => {}
            }
        }
        Ok(Self {
            config,
            cgroups,
            networks,
            ids,
            symlinks,
            ro_binds,
            next_id: AtomicU64::new(1),
        })
    }

    /// What the helper builds for `spec`; `prewarmed`: without code, and served a control
    /// socket.
    fn exec_spec(
        &self,
        spec: &LaunchSpec,
        cgroup_procs: Vec<PathBuf>,
        host_id: u32,
        prewarmed: bool,
    ) -> ExecSpec {
        let mut ro_binds = self.ro_binds.clone();
        for path in &spec.ro_paths {
            if !ro_binds.iter().any(|b| path.starts_with(b)) {
                ro_binds.push(path.clone());
            }
        }
        let etc = [
            "ssl",
            "ca-certificates",
            "pki",
            "resolv.conf",
            "hosts",
            "nsswitch.conf",
            "localtime",
            "ld.so.cache",
            "ld.so.conf",
            "ld.so.conf.d",
            "alternatives",
            "mime.types",
            "protocols",
            "services",
            "gai.conf",
        ];
        ExecSpec {
            root_mountpoint: self.config.root_mountpoint.clone(),
            ro_binds,
            ro_binds_if_present: etc.iter().map(|f| Path::new("/etc").join(f)).collect(),
            symlinks: self.symlinks.clone(),
            code_dir: (!prewarmed).then(|| spec.code_dir.clone()),
            code_root: CODE_ROOT.into(),
            dependency_binds: if prewarmed {
                Vec::new()
            } else {
                spec.dependency_dirs
                    .iter()
                    .cloned()
                    .zip(self.dependency_paths(&spec.dependency_dirs))
                    .collect()
            },
            runtime_dir: spec.runtime_dir.clone(),
            runtime_root: RUNTIME_ROOT.into(),
            tmp_bytes: TMP_BYTES,
            netns: spec.netns.clone(),
            cgroup_procs,
            hostname: "fgs-instance".into(),
            uid: FUNCTION_UID,
            gid: FUNCTION_UID,
            host_id,
            nofile: MAX_OPEN_FILES,
            program: spec.program.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            control: prewarmed,
        }
    }

    /// Starts the helper for `spec`; with `control`, a prewarmed instance served on it.
    fn start(&self, spec: LaunchSpec, control: Option<OwnedFd>) -> Result<Process, SandboxError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let identity = self.ids.lease().ok_or_else(|| SandboxError::Spawn {
            program: spec.program.clone(),
            source: std::io::Error::other("every host id of this host is in use"),
        })?;
        let host_id = HOST_IDS + self.ids.number() * IDS_PER_BLOCK + identity.index();
        let limits = GroupLimits {
            memory_bytes: i64::from(spec.memory_mb) * 1024 * 1024,
            pids_max: MAX_TASKS,
            // A prewarmed sandbox starts in the background: at a low weight, which its
            // assignment raises to a start's.
            start_cpu_shares: if control.is_some() {
                PREWARM_CPU_SHARES
            } else {
                START_CPU_SHARES.max(u64::from(spec.memory_mb))
            },
        };
        let group = self
            .cgroups
            .create(&format!("i{}-{id}", std::process::id()), limits)
            .map_err(|source| SandboxError::Spawn {
                program: spec.program.clone(),
                source,
            })?;
        let group: Arc<dyn crate::cgroup::ControlGroup> = Arc::from(group);
        let exec = self.exec_spec(&spec, group.join_files(), host_id, control.is_some());
        let json = serde_json::to_string(&exec).expect("spec serializes");
        let mut cmd = instance_command(&self.config.helper, spec.output, None, control)?;
        cmd.env(exec::SPEC_ENV, json);
        let child = match crate::process::spawn(cmd) {
            Ok(child) => child,
            Err(source) => {
                group.destroy();
                return Err(SandboxError::Spawn {
                    program: self.config.helper.clone(),
                    source,
                });
            }
        };
        Ok(Process::monitor(child, Some(group), true, Some(identity))
            .with_steady_cpu(u64::from(spec.memory_mb)))
    }
}

/// Where an instance sees its `count` dependency packages: `{DEPENDENCY_ROOT}/0`, `/1`, …
fn dependency_roots(count: usize) -> impl Iterator<Item = PathBuf> {
    (0..count).map(|i| Path::new(DEPENDENCY_ROOT).join(i.to_string()))
}

impl Sandbox for NamespaceSandbox {
    fn launch(&self, spec: LaunchSpec) -> Result<Process, SandboxError> {
        self.start(spec, None)
    }

    fn prepare(&self, spec: LaunchSpec) -> Result<(Process, Control), SandboxError> {
        let spawn_error = |source| SandboxError::Spawn {
            program: self.config.helper.clone(),
            source,
        };
        let (host, instance) = std::os::unix::net::UnixStream::pair().map_err(spawn_error)?;
        let process = self.start(spec, Some(OwnedFd::from(instance)))?;
        Ok((process, Control::new(host)))
    }

    fn prepares(&self) -> bool {
        true
    }

    fn enforcement(&self) -> Enforcement {
        let hierarchy = if self.cgroups.is_v2() {
            "cgroup v2"
        } else {
            "cgroup v1"
        };
        Enforcement {
            mode: "namespace",
            enforced: vec![
                format!("memory_size ({hierarchy}, no swap)"),
                format!("pids.max={MAX_TASKS}"),
                "cpu shares proportional to memory".into(),
                format!("RLIMIT_NOFILE={}", MAX_OPEN_FILES),
                "mount, PID, IPC, UTS namespaces".into(),
                "read-only minimal root (pivot_root)".into(),
                "512 MB tmpfs /tmp per instance".into(),
                format!("uid/gid {FUNCTION_UID}, no capabilities, no_new_privs"),
                "user namespace: a host uid of its own per instance".into(),
                "seccomp".into(),
                format!("network: {}", self.networks.mode().name()),
            ],
            not_enforced: match self.networks.mode() {
                NetworkMode::Host => {
                    vec![
                        "network namespace (--network host: instances share the host network)"
                            .into(),
                    ]
                }
                NetworkMode::Isolated | NetworkMode::None => vec![],
            },
            reason: None,
            cgroup_parent: Some(self.cgroups.parent().to_string()),
        }
    }

    fn instance_paths(&self, _code_dir: &Path, _runtime_dir: &Path) -> (PathBuf, PathBuf) {
        (CODE_ROOT.into(), RUNTIME_ROOT.into())
    }

    fn dependency_paths(&self, dependency_dirs: &[PathBuf]) -> Vec<PathBuf> {
        dependency_roots(dependency_dirs.len()).collect()
    }

    fn network(&self) -> std::io::Result<InstanceNetwork> {
        self.networks.take()
    }

    fn shutdown(&self) {
        self.networks.shutdown();
        self.cgroups.remove_leftovers();
        self.cgroups.remove_parent();
    }
}
