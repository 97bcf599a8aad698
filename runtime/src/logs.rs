//! Capture of an instance's stdout and stderr as invocation logs.
//!
//! Both streams of an instance go into one pipe. A background task appends what arrives to
//! the buffer of the invocation in progress. When an invocation ends, [`LogPipe::take`]
//! first drains the pipe itself, under the same lock the task reads with, so every byte the
//! function wrote before answering is in that invocation's log and none leaks into the next.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// At most this much of one invocation's output is kept (the newest part).
const MAX_KEPT: usize = 256 * 1024;

/// The read end of an instance's output pipe and the log collected from it.
pub(crate) struct LogPipe {
    inner: Mutex<Inner>,
}

struct Inner {
    fd: Arc<AsyncFd<OwnedFd>>,
    buf: Vec<u8>,
    eof: bool,
}

impl LogPipe {
    /// Creates the pipe; returns the collector and the write end for the instance.
    pub fn new() -> std::io::Result<(Arc<Self>, OwnedFd)> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        // SAFETY: `read` is an open pipe end owned by the AsyncFd for its whole life.
        let fd = unsafe { AsyncFd::register_with_interest(read, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        let fd = Arc::new(fd);
        let pipe = Arc::new(LogPipe {
            inner: Mutex::new(Inner {
                fd: fd.clone(),
                buf: Vec::new(),
                eof: false,
            }),
        });
        let collector = Arc::downgrade(&pipe);
        tokio::spawn(async move {
            loop {
                let Ok(mut guard) = fd.readable().await else {
                    return;
                };
                let Some(pipe) = collector.upgrade() else {
                    return;
                };
                let eof = pipe.drain();
                guard.clear_ready();
                if eof {
                    return;
                }
            }
        });
        Ok((pipe, write))
    }

    /// Reads everything available now; returns true at end of file.
    fn drain(&self) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if inner.eof {
                return true;
            }
            // SAFETY: reading into a local buffer from a file descriptor we own.
            let n = unsafe {
                libc::read(
                    inner.fd.get_ref().as_raw_fd(),
                    chunk.as_mut_ptr().cast(),
                    chunk.len(),
                )
            };
            match n {
                0 => inner.eof = true,
                n if n > 0 => {
                    inner.buf.extend_from_slice(&chunk[..n as usize]);
                    let excess = inner.buf.len().saturating_sub(MAX_KEPT);
                    if excess > 0 {
                        inner.buf.drain(..excess);
                    }
                }
                _ => {
                    let err = std::io::Error::last_os_error();
                    if err.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return false;
                }
            }
        }
    }

    /// Everything written since the last call, including what is still in the pipe.
    pub fn take(&self) -> Vec<u8> {
        self.drain();
        std::mem::take(&mut self.inner.lock().unwrap().buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn take_includes_unread_bytes_and_resets() {
        let (pipe, write) = LogPipe::new().unwrap();
        let mut w = std::fs::File::from(write);
        w.write_all(b"first\n").unwrap();
        assert_eq!(pipe.take(), b"first\n");
        w.write_all(b"second\n").unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(pipe.take(), b"second\n");
        assert_eq!(pipe.take(), b"");
    }
}
