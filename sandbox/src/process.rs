//! A running instance process and its end.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;

use crate::lease::Lease;
use crate::{ControlGroup, Exit, SandboxError};

/// The descriptor an instance's helper finds its control socket at.
pub(crate) const CONTROL_FD: i32 = 3;

/// A command for an instance: an empty environment, stdin from `/dev/null`, stdout and
/// stderr into `output`, its own process group, killed when the host dies
/// (`PR_SET_PDEATHSIG`), with no other inherited descriptor but `control` (as descriptor 3,
/// when given), and with `nofile` as `RLIMIT_NOFILE` when given.
pub(crate) fn instance_command(
    program: &Path,
    output: OwnedFd,
    nofile: Option<u64>,
    control: Option<OwnedFd>,
) -> Result<std::process::Command, SandboxError> {
    let stderr = output.try_clone().map_err(|source| SandboxError::Spawn {
        program: program.to_path_buf(),
        source,
    })?;
    let mut cmd = std::process::Command::new(program);
    cmd.env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::from(output))
        .stderr(Stdio::from(stderr))
        .process_group(0);
    // SAFETY: only async-signal-safe calls (prctl, setrlimit) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Nothing of the host leaks into an instance: C libraries in the host (librdkafka)
            // open descriptors without close-on-exec. Mark them close-on-exec rather than
            // closing them, so std's exec-error pipe keeps working.
            const CLOSE_RANGE_CLOEXEC: u32 = 4;
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) != 0 {
                for fd in 3..65_536 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            if let Some(fd) = &control {
                let fd = fd.as_raw_fd();
                // dup2 onto itself keeps close-on-exec: clear it then.
                if fd == CONTROL_FD {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                } else if libc::dup2(fd, CONTROL_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(n) = nofile {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, n, n)
                    .map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// Spawns an instance command (from [`instance_command`]) on the launcher thread.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, not the host process,
/// and tokio's threads come and go (blocking threads end after idling, `block_in_place` hands
/// a worker's place to a new thread): a child forked on one of them would be SIGKILLed in the
/// middle of an invocation once that thread ended. So every instance is forked on one thread
/// that lives as long as the host, inside the caller's runtime (which reaps the child).
pub(crate) fn spawn(cmd: std::process::Command) -> std::io::Result<tokio::process::Child> {
    type Job = (
        std::process::Command,
        tokio::runtime::Handle,
        std::sync::mpsc::SyncSender<std::io::Result<tokio::process::Child>>,
    );
    static LAUNCHER: std::sync::OnceLock<std::sync::mpsc::Sender<Job>> = std::sync::OnceLock::new();
    let launcher = LAUNCHER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("fgs-launcher".into())
            .spawn(move || {
                for (cmd, runtime, reply) in rx {
                    let _entered = runtime.enter();
                    let child = tokio::process::Command::from(cmd)
                        .kill_on_drop(false)
                        .spawn();
                    let _ = reply.send(child);
                }
            })
            .expect("the launcher thread starts");
        tx
    });
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    let job = (cmd, tokio::runtime::Handle::current(), reply);
    launcher
        .send(job)
        .map_err(|_| std::io::Error::other("the launcher thread has ended"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the launcher thread has ended"))?
}

/// A started instance: the leader of its own process group, optionally in its own cgroup.
///
/// A monitor task reaps the process and publishes its [`Exit`]. When the leader ends, the rest
/// of its group is killed, an OOM kill recorded by its cgroup turns the exit into
/// [`Exit::OutOfMemory`], and the cgroup is removed, all before the exit is published. Dropping
/// a `Process` kills the group.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    exited: Arc<AtomicBool>,
    exit: watch::Receiver<Option<Exit>>,
    group: Option<Arc<dyn ControlGroup>>,
    private_tmp: bool,
    /// The CPU weight the instance settles at once started (`cpu.shares`).
    steady_cpu_shares: Option<u64>,
}

impl std::fmt::Debug for dyn ControlGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlGroup")
    }
}

impl Process {
    /// Takes ownership of a spawned child whose process group id equals its pid.
    /// `private_tmp`: the instance has its own `/tmp`, reachable through `/proc/<pid>/root`.
    /// `identity`: the host id the instance runs as, released once nothing of it is left.
    pub(crate) fn monitor(
        mut child: tokio::process::Child,
        group: Option<Arc<dyn ControlGroup>>,
        private_tmp: bool,
        identity: Option<Lease>,
    ) -> Self {
        let pid = child.id().expect("a just-spawned child has a pid");
        let exited = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(None);
        let flag = exited.clone();
        let cgroup = group.clone();
        tokio::spawn(async move {
            let mut exit = match child.wait().await {
                Ok(status) => Exit::from_status(status),
                Err(_) => Exit::Code(-1),
            };
            // Kill what is left of the group before the pid can be reused.
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            flag.store(true, Ordering::SeqCst);
            if let Some(group) = cgroup {
                exit = tokio::task::spawn_blocking(move || {
                    let oom = group.oom_kills() > 0;
                    group.destroy();
                    if oom {
                        Exit::OutOfMemory
                    } else {
                        exit
                    }
                })
                .await
                .unwrap_or(exit);
            }
            drop(identity);
            let _ = tx.send(Some(exit));
        });
        Process {
            pid,
            exited,
            exit: rx,
            group,
            private_tmp,
            steady_cpu_shares: None,
        }
    }

    /// The CPU weight (`cpu.shares`) of the instance's group once [`Process::settle_cpu`]
    /// says it started; until then it has its start weight.
    pub(crate) fn with_steady_cpu(mut self, shares: u64) -> Self {
        self.steady_cpu_shares = Some(shares);
        self
    }

    /// The instance has started: its group drops from the start weight to its steady one
    /// (proportional to its memory, as FunctionGraph allocates CPU).
    pub fn settle_cpu(&self) {
        self.cpu_settler()();
    }

    /// [`Process::settle_cpu`], to call later (from a task watching the instance's start).
    pub fn cpu_settler(&self) -> impl FnOnce() + Send + 'static {
        let group = self.group.clone();
        let shares = self.steady_cpu_shares;
        move || {
            if let (Some(group), Some(shares)) = (group, shares) {
                group.set_cpu_shares(shares);
            }
        }
    }

    /// Gives a prewarmed instance its function's memory limit, and the CPU weight of a start
    /// that settles at its steady weight (proportional to the memory) once started.
    pub fn assign_limits(&mut self, memory_mb: u32) -> std::io::Result<()> {
        if let Some(group) = &self.group {
            group.set_memory_limit(i64::from(memory_mb) * 1024 * 1024)?;
            group.set_cpu_shares(crate::cgroup::START_CPU_SHARES.max(u64::from(memory_mb)));
            self.steady_cpu_shares = Some(u64::from(memory_mb));
        }
        Ok(())
    }

    /// Memory the instance uses now (its cgroup's), bytes; 0 without a cgroup.
    pub fn memory_current(&self) -> u64 {
        self.group.as_ref().map_or(0, |g| g.memory_current())
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the whole process group at once.
    pub fn kill(&self) {
        if !self.exited.load(Ordering::SeqCst) {
            let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        }
    }

    /// How the process ended, once it has.
    pub fn exit(&self) -> Option<Exit> {
        *self.exit.borrow()
    }

    /// Waits until the process has ended and its resources are released.
    pub async fn wait(&self) -> Exit {
        let mut rx = self.exit.clone();
        loop {
            if let Some(exit) = *rx.borrow_and_update() {
                return exit;
            }
            if rx.changed().await.is_err() {
                return Exit::Code(-1);
            }
        }
    }

    /// Processes of the instance the OOM killer has killed so far.
    pub fn oom_kills(&self) -> u64 {
        self.group.as_ref().map(|g| g.oom_kills()).unwrap_or(0)
    }

    /// Peak memory of the instance in bytes, when its cgroup reports it.
    pub fn memory_peak(&self) -> Option<u64> {
        self.group
            .as_ref()
            .map(|g| g.memory_peak())
            .filter(|&b| b > 0)
    }

    /// Whether the instance's private `/tmp` is full.
    pub fn tmp_full(&self) -> bool {
        if !self.private_tmp || self.exited.load(Ordering::SeqCst) {
            return false;
        }
        nix::sys::statvfs::statvfs(format!("/proc/{}/root/tmp", self.pid).as_str())
            .map(|s| s.blocks_available() == 0)
            .unwrap_or(false)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
