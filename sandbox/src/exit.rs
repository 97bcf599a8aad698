//! How an instance's process ended, as the kernel reported it.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// The end of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit` with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// The kernel's OOM killer killed it: the instance's cgroup reached its memory limit.
    OutOfMemory,
}

impl Exit {
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(-1),
        }
    }

    /// The signal's name, e.g. `SIGSEGV`, when a signal ended the process.
    pub fn signal_name(self) -> Option<&'static str> {
        match self {
            Exit::Signal(sig) => Some(
                nix::sys::signal::Signal::try_from(sig)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal"),
            ),
            Exit::Code(_) | Exit::OutOfMemory => None,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with code {code}"),
            Exit::Signal(sig) => write!(
                f,
                "killed by signal {} ({sig})",
                self.signal_name().unwrap_or("?")
            ),
            Exit::OutOfMemory => write!(f, "killed by the OOM killer at the memory limit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes_and_signals() {
        assert_eq!(
            Exit::from_status(ExitStatus::from_raw(3 << 8)),
            Exit::Code(3)
        );
        let segv = Exit::from_status(ExitStatus::from_raw(libc::SIGSEGV));
        assert_eq!(segv, Exit::Signal(libc::SIGSEGV));
        assert_eq!(segv.signal_name(), Some("SIGSEGV"));
        assert_eq!(segv.to_string(), "killed by signal SIGSEGV (11)");
    }
}
