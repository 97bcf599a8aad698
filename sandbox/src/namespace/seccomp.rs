//! The seccomp filter of instances: an **allowlist**. A system call not listed here fails with
//! `EPERM`; `clone3` fails with `ENOSYS`.
//!
//! The runtime process installs it (with `no_new_privs`) right before it execs the language
//! runtime or `bootstrap` (see `exec.rs`), so everything from that `execve` on runs under it.
//!
//! # Where the list comes from
//!
//! It was measured with `strace -f` (every process and thread, from the runtime's `execve` to
//! its death) on x86_64, kernel 6.18, glibc 2.36, running against a stand-in for the runtime
//! API and answering several events each:
//! - **Python 3.11** (pyenv 3.11.7 and Debian 3.11.2) with the shipped `bootstrap.py`, an
//!   initializer, and a handler that uses files under `/tmp`, `mmap`, `sqlite3`, `zlib`,
//!   `urllib.request` and `ssl` against local servers, `getaddrinfo`, UDP, `select`,
//!   `subprocess` (`/bin/true`, `/bin/sh -c`), `os.fork`, threads and thread pools,
//!   `multiprocessing` (fork and spawn pools, queues, semaphores), `ProcessPoolExecutor`,
//!   `asyncio`, signals, timers and `ctypes`;
//! - **Node.js 20** with the shipped `bootstrap.js`, an initializer, and a handler that uses
//!   `fs` (sync, callback and promise APIs, streams, `fs.watch`), `http`, `https`, `dns`,
//!   `net`, `dgram`, `crypto` (`pbkdf2` on the thread pool), `zlib`, `child_process`
//!   (`execFile`, `execSync`, `spawnSync`), `worker_threads`, `os` and signals; and again with
//!   `UV_USE_IO_URING=1`, where libuv falls back to its thread pool when `io_uring_setup` fails;
//! - **custom runtimes**: `examples/custom-bootstrap/bootstrap` and the bootstraps of the tests
//!   (`/bin/sh` with `curl`, `grep`, `cut`, `tr`, `mktemp`, `id`, `sleep`), and a static glibc
//!   binary that polls the API from a thread and forks.
//!
//! To that measured set (about 100 calls) the list adds, as margin, the rest of the families it
//! touches, whose other members are as harmless: the read/write, `stat`, `*at`, poll/epoll/
//! select, timer/clock, signal, futex, memory-mapping, socket and id-query variants (so that a
//! different libc, Go's runtime or a newer glibc that picks another variant keeps working), the
//! newer replacements glibc tries first (`faccessat2`, `fchmodat2`, `close_range`, `statx`,
//! `openat2`, `epoll_pwait2`), SysV IPC (the instance has its own IPC namespace), the
//! `set*id` calls (the runtime has no capabilities and equal real, effective and saved ids, so
//! they can only be no-ops) and the calls that only ever restrict the caller (`seccomp`,
//! `landlock_*`, `mseal`).
//!
//! Three calls are allowed only for some arguments:
//! - `clone`, only without any `CLONE_NEW*` flag: threads and `fork` work, namespaces do not;
//! - `socket`, only for `AF_UNIX`, `AF_INET`, `AF_INET6` and `AF_NETLINK` (the last for
//!   `getifaddrs`): no packet, `vsock`, `AF_ALG`... sockets;
//! - `ioctl`, except `TIOCSTI` and `TIOCLINUX` (pushing input into a terminal).
//!
//! `clone3` returns `ENOSYS` rather than `EPERM`: its flags are in memory, out of the filter's
//! reach, so it cannot be allowed without namespaces, and `ENOSYS` is what makes glibc (threads,
//! `posix_spawn`) and other runtimes fall back to `clone`, as Docker and runc do.
//!
//! # What is denied
//!
//! Everything else, and in particular ([`DENIED`], checked by the tests): namespaces
//! (`unshare`, `setns`, `clone`/`clone3` with `CLONE_NEW*`), mounts (`mount`, `umount2`,
//! `pivot_root`, `chroot`, the new mount API), `io_uring`, `ptrace` and reading other processes
//! (`process_vm_*`, `kcmp`, `pidfd_getfd`), `bpf`, `perf_event_open`, `userfaultfd`, the kernel
//! keyring, modules, `kexec`, `reboot`, swap, clocks, host names, `syslog`, `acct`,
//! `quotactl`, file handles and x86 port I/O and LDT changes.
//!
//! The runtime already runs without root and without capabilities, so the kernel refuses
//! many of these anyway; the filter is a second wall in case a kernel bug opens the first, and
//! the allowlist keeps new or rarely used kernel interfaces out of reach.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp,
    SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// Generic (asm-generic) system call numbers that the `libc` crate does not name for aarch64.
#[cfg(target_arch = "aarch64")]
mod aarch64 {
    pub const RENAMEAT: libc::c_long = 38;
    pub const SYNC_FILE_RANGE: libc::c_long = 84;
    pub const GETRLIMIT: libc::c_long = 163;
    pub const SETRLIMIT: libc::c_long = 164;
    pub const FCHMODAT2: libc::c_long = 452;
}

/// System calls an instance may make whatever their arguments (`clone`, `socket` and `ioctl`
/// are in [`conditional_rules`]).
const ALLOWED: &[libc::c_long] = &[
    // Reading and writing file descriptors.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_sendfile,
    libc::SYS_copy_file_range,
    libc::SYS_splice,
    libc::SYS_tee,
    // File descriptors.
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_dup,
    libc::SYS_dup3,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_dup2,
    libc::SYS_fcntl,
    libc::SYS_flock,
    libc::SYS_pipe2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_pipe,
    libc::SYS_memfd_create,
    // Files: opening, metadata, directories.
    libc::SYS_openat,
    libc::SYS_openat2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_creat,
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_stat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lstat,
    libc::SYS_statx,
    libc::SYS_statfs,
    libc::SYS_fstatfs,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
    libc::SYS_getdents64,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_getdents,
    libc::SYS_getcwd,
    libc::SYS_chdir,
    libc::SYS_fchdir,
    libc::SYS_mkdirat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_mkdir,
    libc::SYS_mknodat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_mknod,
    libc::SYS_unlinkat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_unlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rmdir,
    libc::SYS_renameat2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_renameat,
    #[cfg(target_arch = "aarch64")]
    aarch64::RENAMEAT,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rename,
    libc::SYS_linkat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_link,
    libc::SYS_symlinkat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_symlink,
    libc::SYS_readlinkat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_fchmodat2,
    #[cfg(target_arch = "aarch64")]
    aarch64::FCHMODAT2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chmod,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chown,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lchown,
    libc::SYS_umask,
    libc::SYS_utimensat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_utime,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_utimes,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_futimesat,
    libc::SYS_truncate,
    libc::SYS_ftruncate,
    libc::SYS_fallocate,
    libc::SYS_fadvise64,
    libc::SYS_readahead,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_syncfs,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_sync_file_range,
    #[cfg(target_arch = "aarch64")]
    aarch64::SYNC_FILE_RANGE,
    libc::SYS_getxattr,
    libc::SYS_lgetxattr,
    libc::SYS_fgetxattr,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_flistxattr,
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
    libc::SYS_fremovexattr,
    libc::SYS_inotify_init1,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_inotify_init,
    libc::SYS_inotify_add_watch,
    libc::SYS_inotify_rm_watch,
    // Waiting for events.
    libc::SYS_ppoll,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
    libc::SYS_pselect6,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_select,
    libc::SYS_epoll_create1,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_epoll_create,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_epoll_wait,
    libc::SYS_eventfd2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_eventfd,
    libc::SYS_signalfd4,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_signalfd,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_settime,
    libc::SYS_timerfd_gettime,
    // Sockets (`socket` itself is conditional).
    libc::SYS_socketpair,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_connect,
    libc::SYS_shutdown,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    // Memory.
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_msync,
    libc::SYS_mincore,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    libc::SYS_munlock,
    libc::SYS_mlockall,
    libc::SYS_munlockall,
    libc::SYS_membarrier,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    // Threads and synchronisation (`clone` is conditional).
    libc::SYS_futex,
    libc::SYS_futex_waitv,
    libc::SYS_set_robust_list,
    libc::SYS_set_tid_address,
    libc::SYS_rseq,
    libc::SYS_gettid,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_getparam,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_getattr,
    libc::SYS_sched_get_priority_max,
    libc::SYS_sched_get_priority_min,
    libc::SYS_sched_rr_get_interval,
    libc::SYS_getcpu,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_arch_prctl,
    // Processes.
    #[cfg(target_arch = "x86_64")]
    libc::SYS_fork,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_vfork,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_wait4,
    libc::SYS_waitid,
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_tgkill,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_getpgid,
    libc::SYS_setpgid,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_getpgrp,
    libc::SYS_getsid,
    libc::SYS_setsid,
    libc::SYS_getpriority,
    libc::SYS_setpriority,
    libc::SYS_prctl,
    // Identity: queries, and changes that cannot grant anything without capabilities.
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getresuid,
    libc::SYS_getresgid,
    libc::SYS_getgroups,
    libc::SYS_setuid,
    libc::SYS_setgid,
    libc::SYS_setreuid,
    libc::SYS_setregid,
    libc::SYS_setresuid,
    libc::SYS_setresgid,
    libc::SYS_setfsuid,
    libc::SYS_setfsgid,
    libc::SYS_capget,
    libc::SYS_capset,
    // Signals.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigpending,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_rt_sigqueueinfo,
    libc::SYS_rt_tgsigqueueinfo,
    libc::SYS_sigaltstack,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_pause,
    libc::SYS_restart_syscall,
    // Time (mostly answered by the vDSO; these are the fallbacks) and timers.
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_time,
    libc::SYS_times,
    libc::SYS_getitimer,
    libc::SYS_setitimer,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_alarm,
    libc::SYS_timer_create,
    libc::SYS_timer_settime,
    libc::SYS_timer_gettime,
    libc::SYS_timer_getoverrun,
    libc::SYS_timer_delete,
    // Limits and information about the system.
    libc::SYS_prlimit64,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_getrlimit,
    #[cfg(target_arch = "aarch64")]
    aarch64::GETRLIMIT,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_setrlimit,
    #[cfg(target_arch = "aarch64")]
    aarch64::SETRLIMIT,
    libc::SYS_getrusage,
    libc::SYS_sysinfo,
    libc::SYS_uname,
    libc::SYS_getrandom,
    // SysV IPC, private to the instance (it has its own IPC namespace).
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmdt,
    libc::SYS_shmctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_semctl,
    libc::SYS_msgget,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_msgctl,
    // Calls that only restrict the caller further.
    libc::SYS_seccomp,
    libc::SYS_mseal,
    libc::SYS_landlock_create_ruleset,
    libc::SYS_landlock_add_rule,
    libc::SYS_landlock_restrict_self,
];

/// System calls that are denied on purpose (the families of the module documentation). They
/// are not in the allowlist, and [`filter`] drops them from it should they ever be added; the
/// tests check the filter against this list.
const DENIED: &[libc::c_long] = &[
    // Namespaces (`clone` with `CLONE_NEW*` is refused by its rule).
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_clone3,
    // Mounts.
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    // io_uring.
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // Tracing and reaching into other processes.
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_process_madvise,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    libc::SYS_perf_event_open,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    // The kernel keyring.
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    // The machine.
    libc::SYS_reboot,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_quotactl,
    libc::SYS_vhangup,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_fanotify_init,
    libc::SYS_personality,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_modify_ldt,
];

/// The namespace flags `clone` may not carry. (`CLONE_NEWTIME`, 0x80, lies in the exit-signal
/// byte of `clone`'s flags, so only `clone3` and `unshare` can ask for it; both are denied.)
const CLONE_NEW_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// `ioctl` requests that push input into a terminal (the classic way out of a sandbox that
/// shares one).
const TIOCSTI: u64 = libc::TIOCSTI;
const TIOCLINUX: u64 = 0x541C;

/// Socket families an instance may open.
const SOCKET_FAMILIES: &[libc::c_int] = &[
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
];

/// The longest program the kernel accepts (`BPF_MAXINSNS`).
const BPF_MAX_LEN: usize = 4096;

/// The calls allowed only for some arguments. Flags and requests are compared on their low
/// 32 bits (`Dword`), which is what the kernel reads of them (`clone` takes
/// `lower_32_bits(flags)`, `ioctl`'s request and `socket`'s family are `int`s), so setting the
/// high bits cannot smuggle a value past a rule.
fn conditional_rules() -> Result<Vec<(i64, Vec<SeccompRule>)>, BackendError> {
    let arg = |index, op, value| SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value);
    let clone = SeccompRule::new(vec![arg(0, SeccompCmpOp::MaskedEq(CLONE_NEW_FLAGS), 0)?])?;
    let ioctl = SeccompRule::new(vec![
        arg(1, SeccompCmpOp::Ne, TIOCSTI)?,
        arg(1, SeccompCmpOp::Ne, TIOCLINUX)?,
    ])?;
    let socket = SOCKET_FAMILIES
        .iter()
        .map(|&family| -> Result<SeccompRule, BackendError> {
            SeccompRule::new(vec![arg(0, SeccompCmpOp::Eq, family as u64)?])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(vec![
        (libc::SYS_clone, vec![clone]),
        (libc::SYS_ioctl, vec![ioctl]),
        (libc::SYS_socket, socket),
    ])
}

/// The first instructions of the program: `clone3` fails with `ENOSYS`. They only ever refuse,
/// so running them before the architecture check costs nothing (an i386 `clone3` gets `ENOSYS`
/// instead of the kill that any other i386 call gets).
fn clone3_enosys() -> BpfProgram {
    let insn = |code: u32, jt, jf, k| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    vec![
        // Load `seccomp_data.nr` (offset 0).
        insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        insn(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            libc::SYS_clone3 as u32,
        ),
        insn(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
    ]
}

/// Builds the filter for this machine's architecture.
pub fn filter() -> Result<BpfProgram, String> {
    let err = |e: BackendError| format!("seccomp: {e}");
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&nr| (nr, vec![])).collect();
    rules.extend(conditional_rules().map_err(err)?);
    // A denied call stays denied even if it is ever added to a list above by mistake.
    for nr in DENIED {
        rules.remove(nr);
    }
    let arch: TargetArch = std::env::consts::ARCH.try_into().map_err(err)?;
    let allowlist = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(err)?;
    let allowlist: BpfProgram = allowlist.try_into().map_err(err)?;
    let mut program = clone3_enosys();
    program.extend(allowlist);
    if program.len() > BPF_MAX_LEN {
        return Err(format!(
            "seccomp: the filter has {} instructions, more than {BPF_MAX_LEN}",
            program.len()
        ));
    }
    Ok(program)
}

/// Installs the filter on the calling thread (requires `no_new_privs` or CAP_SYS_ADMIN).
pub fn apply() -> Result<(), String> {
    let program = filter()?;
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;

    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;

    /// Runs `program` the way the kernel does on the call `nr(args)` and returns its verdict.
    /// Knows the instructions seccompiler and [`clone3_enosys`] emit.
    fn verdict_for(program: &[sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        // struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&(nr as i32).to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for a in args {
            data.extend_from_slice(&a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let insn = &program[pc];
            let code = u32::from(insn.code);
            pc += 1;
            match code & 0x07 {
                libc::BPF_LD => {
                    assert_eq!(code, libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, "{insn:?}");
                    let at = insn.k as usize;
                    acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                }
                libc::BPF_ALU => {
                    assert_eq!(
                        code,
                        libc::BPF_ALU | libc::BPF_AND | libc::BPF_K,
                        "{insn:?}"
                    );
                    acc &= insn.k;
                }
                libc::BPF_JMP => {
                    assert_eq!(code & 0x08, libc::BPF_K, "{insn:?}");
                    let taken = match code & 0xf0 {
                        libc::BPF_JA => {
                            pc += insn.k as usize;
                            continue;
                        }
                        libc::BPF_JEQ => acc == insn.k,
                        libc::BPF_JGT => acc > insn.k,
                        libc::BPF_JGE => acc >= insn.k,
                        libc::BPF_JSET => acc & insn.k != 0,
                        _ => panic!("unexpected jump {insn:?}"),
                    };
                    pc += usize::from(if taken { insn.jt } else { insn.jf });
                }
                libc::BPF_RET => {
                    assert_eq!(code, libc::BPF_RET | libc::BPF_K, "{insn:?}");
                    return insn.k;
                }
                _ => panic!("unexpected instruction {insn:?}"),
            }
        }
    }

    fn verdict(nr: i64, args: [u64; 6]) -> u32 {
        verdict_for(&filter().unwrap(), AUDIT_ARCH, nr, args)
    }

    #[test]
    fn filter_compiles_for_this_machine() {
        let program = filter().unwrap();
        assert!(program.len() > ALLOWED.len());
        assert!(program.len() <= BPF_MAX_LEN);
    }

    #[test]
    fn allowlist_has_no_duplicate_and_no_denied_call() {
        let mut seen = std::collections::BTreeSet::new();
        for &nr in ALLOWED {
            assert!(seen.insert(nr), "system call {nr} is listed twice");
        }
        for (nr, _) in conditional_rules().unwrap() {
            assert!(
                seen.insert(nr),
                "system call {nr} is both conditional and allowed"
            );
        }
        for &nr in DENIED {
            assert!(
                !seen.contains(&nr),
                "system call {nr} is both denied and allowed"
            );
        }
    }

    #[test]
    fn listed_calls_are_allowed() {
        let program = filter().unwrap();
        for &nr in ALLOWED {
            assert_eq!(
                verdict_for(&program, AUDIT_ARCH, nr, [0; 6]),
                ALLOW,
                "system call {nr}"
            );
        }
    }

    #[test]
    fn denied_calls_fail_with_eperm_and_clone3_with_enosys() {
        let program = filter().unwrap();
        for &nr in DENIED {
            let expected = if nr == libc::SYS_clone3 {
                ENOSYS
            } else {
                EPERM
            };
            assert_eq!(
                verdict_for(&program, AUDIT_ARCH, nr, [0; 6]),
                expected,
                "system call {nr}"
            );
        }
        // Not listed at all: a number no kernel has yet, and (x86_64) an x32 call.
        assert_eq!(verdict(1000, [0; 6]), EPERM);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(verdict(0x4000_0000 | libc::SYS_read, [0; 6]), EPERM);
        // Another architecture's calls kill the process.
        assert_eq!(
            verdict_for(&program, 0x4000_0003, libc::SYS_read, [0; 6]),
            KILL
        );
    }

    #[test]
    fn clone_is_allowed_without_namespace_flags_only() {
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        let fork = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;
        let vfork = (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64;
        for flags in [thread, fork, vfork, libc::SIGCHLD as u64] {
            assert_eq!(
                verdict(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]),
                ALLOW,
                "{flags:#x}"
            );
        }
        for new in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
        ] {
            let flags = fork | new as u64;
            assert_eq!(
                verdict(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]),
                EPERM,
                "{flags:#x}"
            );
            let high = flags | 1 << 40;
            assert_eq!(
                verdict(libc::SYS_clone, [high, 0, 0, 0, 0, 0]),
                EPERM,
                "{high:#x}"
            );
        }
    }

    #[test]
    fn ioctl_and_socket_rules() {
        for request in [
            libc::FIONBIO as u64,
            libc::TCGETS as u64,
            libc::TIOCGWINSZ as u64,
        ] {
            assert_eq!(verdict(libc::SYS_ioctl, [1, request, 0, 0, 0, 0]), ALLOW);
        }
        for request in [TIOCSTI, TIOCLINUX, TIOCSTI | 1 << 32] {
            assert_eq!(verdict(libc::SYS_ioctl, [0, request, 0, 0, 0, 0]), EPERM);
        }
        for &family in SOCKET_FAMILIES {
            let args = [family as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0];
            assert_eq!(verdict(libc::SYS_socket, args), ALLOW, "family {family}");
        }
        for family in [
            libc::AF_PACKET,
            libc::AF_ALG,
            libc::AF_VSOCK,
            libc::AF_UNSPEC,
        ] {
            let args = [family as u64, libc::SOCK_RAW as u64, 0, 0, 0, 0];
            assert_eq!(verdict(libc::SYS_socket, args), EPERM, "family {family}");
        }
    }

    // The real thing: a forked child installs the filter (after `no_new_privs`, as the runtime
    // does) and reports through its exit code: 0 when the check passed, another value
    // identifying what failed. The program is built before `fork`, so the child only installs
    // it, runs the check and `_exit`s; it never returns into the test harness.

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn in_confined_child(check: fn() -> i32) -> i32 {
        let program = filter().unwrap();
        // SAFETY: the child runs only the code below and ends with `_exit`.
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            0 => {
                let code = std::panic::catch_unwind(|| {
                    // SAFETY: prctl with constant arguments.
                    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                        return 120;
                    }
                    if seccompiler::apply_filter(&program).is_err() {
                        return 121;
                    }
                    check()
                })
                .unwrap_or(122);
                // SAFETY: ends the child without running the parent's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            child => wait_for(child),
        }
    }

    /// Waits for `child`; its exit code, or 200 + the signal that killed it.
    fn wait_for(child: libc::pid_t) -> i32 {
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(child, &mut status, 0) };
            if r == child {
                break;
            }
            assert_eq!(errno(), libc::EINTR, "waitpid");
        }
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            200 + libc::WTERMSIG(status)
        }
    }

    /// Checks that a raw `clone`/`clone3` call failed with `expected`; a child it created
    /// (the filter let it through) exits at once.
    fn refused(ret: libc::c_long, expected: &[i32]) -> i32 {
        match ret {
            // SAFETY: ends the unexpected child at once.
            0 => unsafe { libc::_exit(0) },
            -1 if expected.contains(&errno()) => 0,
            -1 => 2,
            _ => 1,
        }
    }

    #[test]
    fn unshare_is_refused() {
        fn check() -> i32 {
            for (i, flags) in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET]
                .into_iter()
                .enumerate()
            {
                // SAFETY: unshare with constant flags; it is expected to fail.
                if unsafe { libc::unshare(flags) } != -1 || errno() != libc::EPERM {
                    return 1 + i as i32;
                }
            }
            0
        }
        assert_eq!(in_confined_child(check), 0);
    }

    #[test]
    fn clone_with_namespace_flags_is_refused() {
        fn check() -> i32 {
            for (i, new) in [libc::CLONE_NEWNS, libc::CLONE_NEWUSER | libc::CLONE_NEWPID]
                .into_iter()
                .enumerate()
            {
                let flags = (new | libc::SIGCHLD) as libc::c_ulong;
                // SAFETY: a fork-like clone (no CLONE_VM, no new stack); any child exits at once.
                let ret = unsafe {
                    libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize)
                };
                let code = refused(ret, &[libc::EPERM]);
                if code != 0 {
                    return code + 10 * i as i32;
                }
            }
            0
        }
        assert_eq!(in_confined_child(check), 0);
    }

    #[test]
    fn clone3_fails_with_enosys() {
        fn check() -> i32 {
            // struct clone_args (CLONE_ARGS_SIZE_VER2, 88 bytes): only exit_signal = SIGCHLD.
            let mut args = [0u64; 11];
            args[4] = libc::SIGCHLD as u64;
            // SAFETY: a fork-like clone3; any child exits at once.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_clone3,
                    args.as_mut_ptr(),
                    std::mem::size_of_val(&args),
                )
            };
            refused(ret, &[libc::ENOSYS])
        }
        assert_eq!(in_confined_child(check), 0);
    }

    #[test]
    fn io_uring_is_refused() {
        fn check() -> i32 {
            // struct io_uring_params is 120 bytes.
            let mut params = [0u8; 120];
            // SAFETY: a valid, zeroed parameter block.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_io_uring_setup,
                    1 as libc::c_long,
                    params.as_mut_ptr(),
                )
            };
            if ret >= 0 {
                // SAFETY: closing the ring we were given.
                unsafe { libc::close(ret as i32) };
                return 1;
            }
            if [libc::EPERM, libc::ENOSYS].contains(&errno()) {
                0
            } else {
                2
            }
        }
        assert_eq!(in_confined_child(check), 0);
    }

    #[test]
    fn ptrace_keyctl_perf_and_mount_are_refused() {
        fn check() -> i32 {
            // PTRACE_TRACEME needs no privilege at all: only the filter refuses it.
            // SAFETY: the arguments are plain integers.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_ptrace,
                    libc::PTRACE_TRACEME as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                    0 as libc::c_long,
                )
            };
            if ret != -1 || errno() != libc::EPERM {
                return 1;
            }
            // Reading one's own session keyring needs no privilege either.
            const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
            const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
            // SAFETY: the arguments are plain integers.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_keyctl,
                    KEYCTL_GET_KEYRING_ID,
                    KEY_SPEC_SESSION_KEYRING,
                    0 as libc::c_long,
                )
            };
            if ret != -1 || errno() != libc::EPERM {
                return 2;
            }
            // Without the filter a null attribute is EFAULT.
            // SAFETY: the kernel would reject the null pointer itself.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    std::ptr::null::<u8>(),
                    0 as libc::c_long,
                    -1 as libc::c_long,
                    -1 as libc::c_long,
                    0 as libc::c_long,
                )
            };
            if ret != -1 || errno() != libc::EPERM {
                return 3;
            }
            // Without the filter, root gets ENOENT here.
            // SAFETY: valid NUL-terminated strings.
            let ret = unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    c"/nonexistent-fgs-seccomp-test".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            if ret != -1 || errno() != libc::EPERM {
                return 4;
            }
            0
        }
        assert_eq!(in_confined_child(check), 0);
    }

    #[test]
    fn threads_still_start() {
        fn check() -> i32 {
            // glibc tries clone3 first and falls back to clone on ENOSYS.
            match std::thread::spawn(|| 6 * 7).join() {
                Ok(42) => 0,
                _ => 1,
            }
        }
        assert_eq!(in_confined_child(check), 0);
    }

    #[test]
    fn fork_still_works() {
        fn check() -> i32 {
            // SAFETY: the grandchild only `_exit`s.
            match unsafe { libc::fork() } {
                -1 => 1,
                // SAFETY: the grandchild ends at once.
                0 => unsafe { libc::_exit(7) },
                child => {
                    if wait_for(child) == 7 {
                        0
                    } else {
                        2
                    }
                }
            }
        }
        assert_eq!(in_confined_child(check), 0);
    }

    #[test]
    fn a_shell_runs_under_the_filter() {
        fn check() -> i32 {
            // posix_spawn or fork + exec, then the dynamic loader and the shell, all confined.
            let status = std::process::Command::new("/bin/sh")
                .args(["-c", "x=$(echo 3); exit $x"])
                .status();
            match status.map(|s| s.code()) {
                Ok(Some(3)) => 0,
                Ok(_) => 1,
                Err(_) => 2,
            }
        }
        if std::path::Path::new("/bin/sh").exists() {
            assert_eq!(in_confined_child(check), 0);
        }
    }
}
