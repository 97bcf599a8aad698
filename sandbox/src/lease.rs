//! Numbers an instance must hold alone on the machine (its subnet, its host uid), handed out
//! from a block this host takes for its lifetime.
//!
//! Several fgs hosts may share one machine (tests start dozens), so each takes the first free
//! block of a kind with an `flock` on `/run/fgs/<kind>-block-<n>` (released by the kernel when
//! the holder exits, however it exits), then leases the block's numbers to its instances.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A block of `size` numbers this host holds on the machine, and those not leased.
pub struct Block {
    number: u32,
    free: Arc<Mutex<VecDeque<u32>>>,
    /// Held for the life of the process: no other host takes this block.
    _lock: File,
}

/// One number of a [`Block`], reserved until dropped; then it goes to the back of the queue,
/// so it is reused last.
pub struct Lease {
    index: u32,
    free: Arc<Mutex<VecDeque<u32>>>,
}

impl Block {
    /// The first of `blocks` blocks of `kind` no other fgs on this machine holds.
    pub fn take(kind: &str, blocks: u32, size: u32) -> Result<Self, String> {
        let dir = PathBuf::from("/run/fgs");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for number in 0..blocks {
            let file = File::create(dir.join(format!("{kind}-block-{number}")))
                .map_err(|e| format!("cannot create a block lock: {e}"))?;
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Self {
                    number,
                    free: Arc::new(Mutex::new((0..size).collect())),
                    _lock: file,
                });
            }
        }
        Err(format!("every {kind} block is taken by other fgs hosts"))
    }

    /// Which block this host holds.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// A number of the block no live instance holds, or `None` when all are leased.
    pub fn lease(&self) -> Option<Lease> {
        let index = self.free.lock().unwrap().pop_front()?;
        Some(Lease {
            index,
            free: self.free.clone(),
        })
    }
}

impl Lease {
    /// The leased number, `0..size` of its block.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.free.lock().unwrap().push_back(self.index);
    }
}
