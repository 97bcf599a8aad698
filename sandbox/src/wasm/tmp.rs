//! Each instance's `/tmp`: a directory of its own, mounted as a 512 MB tmpfs when fgs runs
//! as root, so the kernel caps it; otherwise a plain directory (uncapped).

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use fgs_limits::instance::TMP_BYTES;

/// Creates `dir`, removes what a previous host left in it, and tells whether instances can
/// get a tmpfs (fgs runs as root).
pub fn prepare(dir: &Path) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let private = nix::unistd::geteuid().is_root();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if private {
            let _ = umount2(&path, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&path);
    }
    Ok(private)
}

/// One instance's `/tmp`, removed (and unmounted) on drop.
pub struct TmpDir {
    path: PathBuf,
    mounted: bool,
}

impl TmpDir {
    pub fn create(parent: &Path, id: u64, tmpfs: bool) -> std::io::Result<Self> {
        let path = parent.join(format!("i{}-{id}", std::process::id()));
        std::fs::create_dir(&path)?;
        let mut dir = TmpDir {
            path,
            mounted: false,
        };
        if tmpfs {
            let opts = format!("size={TMP_BYTES},mode=1777");
            mount(
                Some("tmpfs"),
                &dir.path,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(opts.as_str()),
            )
            .map_err(std::io::Error::from)?;
            dir.mounted = true;
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
