//! A running instance process and its end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;

use crate::Exit;

/// A started instance: the leader of its own process group.
///
/// A monitor task reaps the process and publishes its [`Exit`]; when the leader ends, the
/// rest of its group is killed too, so no helper process outlives the instance. Dropping a
/// `Process` kills the group.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    exited: Arc<AtomicBool>,
    exit: watch::Receiver<Option<Exit>>,
}

impl Process {
    /// Takes ownership of a spawned child whose process group id equals its pid.
    pub(crate) fn monitor(mut child: tokio::process::Child) -> Self {
        let pid = child.id().expect("a just-spawned child has a pid");
        let exited = Arc::new(AtomicBool::new(false));
        let (tx, rx) = watch::channel(None);
        let flag = exited.clone();
        tokio::spawn(async move {
            let exit = match child.wait().await {
                Ok(status) => Exit::from_status(status),
                Err(_) => Exit::Code(-1),
            };
            // Kill what is left of the group before the pid can be reused.
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            flag.store(true, Ordering::SeqCst);
            let _ = tx.send(Some(exit));
        });
        Process {
            pid,
            exited,
            exit: rx,
        }
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

    /// Waits until the process has ended.
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
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
