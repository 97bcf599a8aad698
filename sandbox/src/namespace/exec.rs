//! The sandbox helper: the program the host starts for every instance.
//!
//! Three processes make an instance:
//! 1. the **helper** (this program, started by the host, in the host's PID namespace) joins the
//!    instance's cgroups, unshares the mount, PID, IPC and UTS namespaces and forks;
//! 2. its child is **PID 1** of the new PID namespace: it builds the instance's root (a tmpfs
//!    with read-only binds, `/tmp`, `/proc`, `/dev`), `pivot_root`s into it, forks the runtime
//!    and reaps every process of the namespace until the runtime ends;
//! 3. the **runtime** drops to the instance's own host uid/gid, enters a user namespace of its
//!    own where that id is uid/gid 1003, sets its rlimits, `no_new_privs` and a seccomp filter,
//!    and execs the language runtime or `bootstrap`.
//!
//! PID 1 reports the runtime's end to the helper over a pipe, and the helper ends the same way
//! (same exit code, or killed by the same signal), so the host sees how the runtime ended. When
//! PID 1 exits, the kernel kills everything left in the namespace; the mounts vanish with it.

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{self, SigHandler, SigSet, Signal};
use nix::sys::wait::{wait, waitpid, WaitStatus};
use nix::unistd::{
    chdir, execve, fork, pipe2, pivot_root, setgroups, sethostname, setresgid, setresuid,
    ForkResult, Gid, Uid,
};

use super::seccomp;
use super::spec::ExecSpec;
use crate::process::CONTROL_FD;

/// The environment variable carrying the JSON [`ExecSpec`] (not argv: other users can read a
/// process's argv, not its environment).
pub const SPEC_ENV: &str = "FGS_SANDBOX_SPEC";

/// Exit code of the helper when the sandbox could not be built.
const SETUP_FAILED: i32 = 125;
/// Exit code when the runtime program could not be executed.
const EXEC_FAILED: i32 = 127;

/// Entry point of `fgs-sandbox-exec`.
pub fn main() -> ! {
    let spec: ExecSpec = match std::env::var(SPEC_ENV)
        .map_err(|e| e.to_string())
        .and_then(|json| serde_json::from_str(&json).map_err(|e| e.to_string()))
    {
        Ok(spec) => spec,
        Err(e) => fail(SETUP_FAILED, &format!("invalid sandbox spec: {e}")),
    };
    if let Err(e) = helper(&spec) {
        fail(SETUP_FAILED, &e);
    }
    unreachable!("helper relays the runtime's end")
}

fn fail(code: i32, message: &str) -> ! {
    eprintln!("fgs-sandbox: {message}");
    std::process::exit(code)
}

fn helper(spec: &ExecSpec) -> Result<(), String> {
    let pid = std::process::id().to_string();
    for file in &spec.cgroup_procs {
        fs::write(file, &pid).map_err(|e| format!("cannot join cgroup {}: {e}", file.display()))?;
    }
    // The runtime is the one the OOM killer should pick, never the sandbox's own processes.
    let _ = fs::write("/proc/self/oom_score_adj", "-1000");
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    if let Some(netns) = &spec.netns {
        let ns = fs::File::open(netns)
            .map_err(|e| format!("cannot open network namespace {}: {e}", netns.display()))?;
        nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("cannot join the instance's network namespace: {e}"))?;
    }
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS,
    )
    .map_err(|e| format!("unshare: {e}"))?;
    let (status_read, status_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: this process is single-threaded (freshly exec'd), so fork is safe.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(status_read);
            namespace_init(spec, status_write)
        }
        ForkResult::Parent { child } => {
            drop(status_write);
            if spec.control {
                // PID 1 alone holds the control socket: the host sees it close when PID 1 ends.
                let _ = nix::unistd::close(CONTROL_FD);
            }
            let init_status = waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
            let mut buf = [0u8; 8];
            let reported = fs::File::from(status_read).read_exact(&mut buf).is_ok();
            let status = if reported {
                decode(buf)
            } else {
                init_status_to_end(init_status)
            };
            relay(status)
        }
    }
}

/// How the runtime ended.
#[derive(Clone, Copy)]
enum End {
    Code(i32),
    Signal(i32),
}

fn encode(end: End) -> [u8; 8] {
    let (kind, value) = match end {
        End::Code(c) => (0u32, c as u32),
        End::Signal(s) => (1u32, s as u32),
    };
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&kind.to_le_bytes());
    buf[4..].copy_from_slice(&value.to_le_bytes());
    buf
}

fn decode(buf: [u8; 8]) -> End {
    let kind = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes"));
    let value = u32::from_le_bytes(buf[4..].try_into().expect("4 bytes")) as i32;
    if kind == 1 {
        End::Signal(value)
    } else {
        End::Code(value)
    }
}

fn init_status_to_end(status: WaitStatus) -> End {
    match status {
        WaitStatus::Exited(_, code) => End::Code(code),
        WaitStatus::Signaled(_, sig, _) => End::Signal(sig as i32),
        _ => End::Code(SETUP_FAILED),
    }
}

/// Ends this process the way the runtime ended.
fn relay(end: End) -> ! {
    match end {
        End::Code(code) => std::process::exit(code),
        End::Signal(sig) => {
            if let Ok(signal) = Signal::try_from(sig) {
                // SAFETY: restoring the default disposition of a signal.
                unsafe {
                    let _ = signal::signal(signal, SigHandler::SigDfl);
                }
                let mut set = SigSet::empty();
                set.add(signal);
                let _ = set.thread_unblock();
                let _ = signal::raise(signal);
            }
            std::process::exit(128 + sig)
        }
    }
}

/// PID 1 of the instance's PID namespace.
fn namespace_init(spec: &ExecSpec, status: OwnedFd) -> ! {
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if let Err(e) = build_root(spec) {
        fail(SETUP_FAILED, &e);
    }
    let _ = sethostname(&spec.hostname);
    if spec.control {
        // The runtime must never hold the control socket.
        // SAFETY: fcntl on a descriptor number; harmless if it is not open.
        unsafe { libc::fcntl(CONTROL_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: single-threaded.
    let runtime = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(status);
            exec_runtime(spec)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => fail(SETUP_FAILED, &format!("fork: {e}")),
    };
    if spec.control {
        // No fork follows, so a thread is safe here; it ends with PID 1.
        // SAFETY: descriptor 3 is the control socket the host passed, owned by PID 1 alone.
        let socket = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(CONTROL_FD) };
        std::thread::spawn(move || super::assign::serve(socket));
    }
    loop {
        match wait() {
            Ok(WaitStatus::Exited(pid, code)) if pid == runtime => report(status, End::Code(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == runtime => {
                report(status, End::Signal(sig as i32))
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => report(status, End::Code(SETUP_FAILED)),
        }
    }
}

fn report(status: OwnedFd, end: End) -> ! {
    let _ = fs::File::from(status).write_all(&encode(end));
    std::process::exit(0)
}

/// The runtime process: drop privileges, confine, exec.
fn exec_runtime(spec: &ExecSpec) -> ! {
    let _ = fs::write("/proc/self/oom_score_adj", "0");
    let confine = || -> Result<(), String> {
        setrlimit(Resource::RLIMIT_NOFILE, spec.nofile, spec.nofile)
            .map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
        become_function_user(spec)?;
        chdir(&spec.cwd).map_err(|e| format!("chdir {}: {e}", spec.cwd.display()))?;
        // SAFETY: prctl with constant arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err("PR_SET_NO_NEW_PRIVS failed".into());
        }
        seccomp::apply()
    };
    if let Err(e) = confine() {
        fail(SETUP_FAILED, &e);
    }
    let cstr = |s: &str| CString::new(s).unwrap_or_default();
    let program = cstr(&spec.program.to_string_lossy());
    let mut argv = vec![program.clone()];
    argv.extend(spec.args.iter().map(|a| cstr(a)));
    let env: Vec<CString> = spec
        .env
        .iter()
        .map(|(k, v)| cstr(&format!("{k}={v}")))
        .collect();
    let err = execve(&program, &argv, &env).unwrap_err();
    fail(
        EXEC_FAILED,
        &format!("cannot execute {}: {err}", spec.program.display()),
    )
}

/// Drops root for the instance's own host id, then enters a user namespace where that id is
/// the function's uid/gid: two instances never share an identity on the host, while each sees
/// FunctionGraph's uid 1003. The namespace owns nothing (every other namespace of the instance
/// belongs to the host's), so the capabilities it grants until `execve` clears them are void.
fn become_function_user(spec: &ExecSpec) -> Result<(), String> {
    setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    let gid = Gid::from_raw(spec.host_id);
    setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
    let uid = Uid::from_raw(spec.host_id);
    setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))?;
    // Changing uid made the process undumpable, which makes its /proc files root's: the maps
    // below could not be written by the process itself.
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) } != 0 {
        return Err("PR_SET_DUMPABLE failed".into());
    }
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare user namespace: {e}"))?;
    let write = |file: &str, content: String| {
        fs::write(format!("/proc/self/{file}"), content)
            .map_err(|e| format!("write /proc/self/{file}: {e}"))
    };
    write("uid_map", format!("{} {} 1\n", spec.uid, spec.host_id))?;
    write("setgroups", "deny".into())?;
    write("gid_map", format!("{} {} 1\n", spec.gid, spec.host_id))
}

/// Builds the instance's root file system and moves into it.
fn build_root(spec: &ExecSpec) -> Result<(), String> {
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| format!("make / private: {e}"))?;
    let root = &spec.root_mountpoint;
    mount(
        Some("fgs-root"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=16m,mode=755"),
    )
    .map_err(|e| format!("mount root tmpfs: {e}"))?;
    let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap_or(p));

    for dir in &spec.ro_binds {
        bind_read_only(dir, &inside(dir))?;
    }
    for path in spec.ro_binds_if_present.iter().filter(|p| p.exists()) {
        bind_read_only(path, &inside(path))?;
    }
    for (link, target) in &spec.symlinks {
        symlink(target, inside(link)).map_err(|e| format!("symlink {}: {e}", link.display()))?;
    }
    match &spec.code_dir {
        Some(dir) => bind_read_only(dir, &inside(&spec.code_root))?,
        None => mkdir(&inside(&spec.code_root))?,
    }
    for (dir, at) in &spec.dependency_binds {
        bind_read_only(dir, &inside(at))?;
    }
    bind_read_only(&spec.runtime_dir, &inside(&spec.runtime_root))?;

    let tmp = inside(Path::new("/tmp"));
    mkdir(&tmp)?;
    let tmp_opts = format!("size={},mode=1777", spec.tmp_bytes);
    mount(
        Some("tmpfs"),
        &tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(tmp_opts.as_str()),
    )
    .map_err(|e| format!("mount /tmp: {e}"))?;

    let proc_dir = inside(Path::new("/proc"));
    mkdir(&proc_dir)?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(|e| format!("mount /proc: {e}"))?;

    build_dev(&inside(Path::new("/dev")))?;
    write_etc(&inside(Path::new("/etc")), spec)?;

    let old = root.join(".old-root");
    mkdir(&old)?;
    pivot_root(root, &old).map_err(|e| format!("pivot_root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    umount2("/.old-root", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    fs::remove_dir("/.old-root").map_err(|e| format!("remove old root: {e}"))?;
    mount(
        none,
        "/",
        none,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        none,
    )
    .map_err(|e| format!("remount / read-only: {e}"))?;
    Ok(())
}

fn mkdir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))
}

/// Shows `src` read-only (and without setuid) at `dst`.
fn bind_read_only(src: &Path, dst: &Path) -> Result<(), String> {
    if src.is_dir() {
        mkdir(dst)?;
    } else {
        mkdir(dst.parent().unwrap_or(Path::new("/")))?;
        fs::File::create(dst).map_err(|e| format!("create {}: {e}", dst.display()))?;
    }
    let none: Option<&str> = None;
    mount(
        Some(src),
        dst,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(|e| format!("bind {}: {e}", src.display()))?;
    mount(
        none,
        dst,
        none,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID,
        none,
    )
    .map_err(|e| format!("remount {} read-only: {e}", dst.display()))
}

/// A minimal `/dev`: the harmless character devices, `/dev/shm`, and the fd links.
fn build_dev(dev: &Path) -> Result<(), String> {
    mkdir(dev)?;
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("size=64k,mode=755"),
    )
    .map_err(|e| format!("mount /dev: {e}"))?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let host = PathBuf::from("/dev").join(name);
        if host.exists() {
            let target = dev.join(name);
            fs::File::create(&target).map_err(|e| format!("create /dev/{name}: {e}"))?;
            let none: Option<&str> = None;
            mount(Some(&host), &target, none, MsFlags::MS_BIND, none)
                .map_err(|e| format!("bind /dev/{name}: {e}"))?;
        }
    }
    let shm = dev.join("shm");
    mkdir(&shm)?;
    mount(
        Some("tmpfs"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("size=64m,mode=1777"),
    )
    .map_err(|e| format!("mount /dev/shm: {e}"))?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).map_err(|e| format!("symlink /dev/{link}: {e}"))?;
    }
    Ok(())
}

/// The instance's own user database and host name.
fn write_etc(etc: &Path, spec: &ExecSpec) -> Result<(), String> {
    mkdir(etc)?;
    let write = |name: &str, content: String| {
        fs::write(etc.join(name), content).map_err(|e| format!("write /etc/{name}: {e}"))
    };
    write(
        "passwd",
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\nsnuser:x:{}:{}:FunctionGraph user:/tmp:/bin/sh\n",
            spec.uid, spec.gid
        ),
    )?;
    write("group", format!("root:x:0:\nsnuser:x:{}:\n", spec.gid))?;
    write("hostname", format!("{}\n", spec.hostname))?;
    if !etc.join("hosts").exists() {
        write(
            "hosts",
            format!("127.0.0.1 localhost {}\n::1 localhost\n", spec.hostname),
        )?;
    }
    Ok(())
}
