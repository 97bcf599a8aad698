//! Assigning code to a prewarmed instance.
//!
//! A prewarmed instance is built without code: its interpreter starts in the sandbox (cgroup,
//! namespaces, root, `/tmp`) and waits, with an empty directory at the code root. When a
//! function takes it, the host makes the function's code (and dependency packages) visible
//! there read-only: it clones each host directory as a detached mount (`open_tree`), makes the
//! clone read-only, and passes its descriptor over the instance's control socket to the
//! instance's PID 1, which alone may mount in the instance's mount namespace and attaches it
//! (`move_mount`). The function's processes never hold those descriptors, and PID 1 takes
//! exactly one assignment: a prewarmed instance serves one function for its life.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use serde::{Deserialize, Serialize};

/// The most directories one assignment mounts (the code and its dependency packages).
const MAX_MOUNTS: usize = 64;
/// How long the host waits for PID 1 to mount an assignment.
const ASSIGN_TIMEOUT: Duration = Duration::from_secs(5);

/// What PID 1 is told: where to attach each descriptor sent with the message, in order.
#[derive(Serialize, Deserialize)]
struct Assignment {
    targets: Vec<PathBuf>,
}

/// The host's end of a prewarmed instance's control socket.
#[derive(Debug)]
pub struct Control {
    socket: UnixStream,
}

impl Control {
    pub(crate) fn new(socket: UnixStream) -> Self {
        Self { socket }
    }

    /// Shows the function's code read-only at the code root, and its dependency packages at
    /// theirs, and waits until PID 1 has mounted them all. Blocking (a few system calls;
    /// milliseconds).
    pub fn assign(&self, code_dir: &Path, dependency_dirs: &[PathBuf]) -> std::io::Result<()> {
        let mut binds = vec![(code_dir.to_path_buf(), PathBuf::from(super::CODE_ROOT))];
        binds.extend(
            dependency_dirs
                .iter()
                .cloned()
                .zip(super::dependency_roots(dependency_dirs.len())),
        );
        if binds.len() > MAX_MOUNTS {
            return Err(std::io::Error::other(format!(
                "an instance takes at most {MAX_MOUNTS} packages"
            )));
        }
        let trees = binds
            .iter()
            .map(|(dir, _)| read_only_tree(dir))
            .collect::<std::io::Result<Vec<OwnedFd>>>()?;
        let message = serde_json::to_vec(&Assignment {
            targets: binds.iter().map(|(_, at)| at.clone()).collect(),
        })
        .map_err(std::io::Error::other)?;
        let fds: Vec<RawFd> = trees.iter().map(|t| t.as_raw_fd()).collect();
        let rights = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            self.socket.as_raw_fd(),
            &[IoSlice::new(&message)],
            &rights,
            MsgFlags::empty(),
            None,
        )?;
        self.socket.set_read_timeout(Some(ASSIGN_TIMEOUT))?;
        let mut answer = [0u8; 512];
        let n = std::io::Read::read(&mut &self.socket, &mut answer)?;
        match &answer[..n] {
            b"ok" => Ok(()),
            [] => Err(std::io::Error::other(
                "the instance ended before its code was mounted",
            )),
            why => Err(std::io::Error::other(format!(
                "cannot mount the code: {}",
                String::from_utf8_lossy(why)
            ))),
        }
    }
}

/// A detached, read-only, nosuid, nodev clone of the host directory `dir`.
fn read_only_tree(dir: &Path) -> std::io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(std::io::Error::other)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE;
    // SAFETY: open_tree with a valid C string; the result is a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty = c"";
    // SAFETY: mount_setattr on our descriptor with a correctly sized attribute struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            (libc::AT_EMPTY_PATH as libc::c_uint) | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tree)
}

/// PID 1's side: waits for the one assignment on `socket`, mounts it and answers. Runs on a
/// thread of PID 1 (the runtime is already running). Returns when done or when the host hung
/// up.
pub(super) fn serve(socket: OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; MAX_MOUNTS]);
    let received = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map(|msg| {
            let fds: Vec<OwnedFd> = msg
                .cmsgs()
                .into_iter()
                .flatten()
                .filter_map(|c| match c {
                    // SAFETY: descriptors the kernel just installed in this process.
                    ControlMessageOwned::ScmRights(fds) => Some(
                        fds.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                })
                .flatten()
                .collect();
            (msg.bytes, fds)
        })
    };
    let (len, trees) = match received {
        Ok((0, _)) | Err(_) => return,
        Ok(got) => got,
    };
    let answer = match serde_json::from_slice::<Assignment>(&buf[..len]) {
        Ok(assignment) if assignment.targets.len() == trees.len() => {
            attach(&assignment.targets, &trees)
        }
        Ok(_) => Err("as many mounts as targets expected".into()),
        Err(e) => Err(format!("invalid assignment: {e}")),
    };
    let reply = match &answer {
        Ok(()) => "ok".to_string(),
        Err(why) => why.clone(),
    };
    let _ = nix::unistd::write(&socket, reply.as_bytes());
}

/// Attaches each tree at its target: the read-only root is made writable for the moment it
/// takes to create the mount points (only root could write to it anyway).
fn attach(targets: &[PathBuf], trees: &[OwnedFd]) -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    if let Some(bad) = targets.iter().find(|t| !t.starts_with(super::MOUNT_ROOT)) {
        return Err(format!(
            "{} is not under {}",
            bad.display(),
            super::MOUNT_ROOT
        ));
    }
    let none: Option<&str> = None;
    let base = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let missing: Vec<&PathBuf> = targets.iter().filter(|t| !t.is_dir()).collect();
    if !missing.is_empty() {
        mount(none, "/", none, base, none).map_err(|e| format!("remount / writable: {e}"))?;
        let made = missing.iter().try_for_each(|t| {
            std::fs::create_dir_all(t).map_err(|e| format!("mkdir {}: {e}", t.display()))
        });
        mount(none, "/", none, base | MsFlags::MS_RDONLY, none)
            .map_err(|e| format!("remount / read-only: {e}"))?;
        made?;
    }
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    for (target, tree) in targets.iter().zip(trees) {
        let to = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
            .map_err(|e| e.to_string())?;
        let empty = c"";
        // SAFETY: move_mount of our detached tree onto an existing directory.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                empty.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if rc < 0 {
            return Err(format!(
                "mount at {}: {}",
                target.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}
