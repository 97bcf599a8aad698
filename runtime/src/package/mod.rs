//! Code packages: validated, content-addressed and unpacked once.
//!
//! The store keeps each package's original bytes under `blobs/<digest>` and its unpacked
//! tree under `trees/<digest>/`. The digest (SHA-512, hex) is the package's address and the
//! function's `digest` field; identical code is stored once, and a tree, once written, never
//! changes, so running instances keep a stable view while new code lands beside it. Every
//! upload unpacks into a temporary directory of its own and renames it into place, so neither
//! a crash nor a concurrent upload of the same package ever leaves a partial tree under a
//! valid address.

mod extract;

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fgs_limits::PayloadLimits;
use sha2::{Digest, Sha512};

pub use extract::extract_zip;

use crate::RuntimeError;

/// Where a stored package lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// SHA-512 of the package, hex: its address in the store.
    pub digest: String,
    /// Size of the package as uploaded, bytes.
    pub size: u64,
    /// The unpacked tree: the function's code root.
    pub dir: PathBuf,
}

/// A content-addressed store of code packages on local disk.
#[derive(Debug, Clone)]
pub struct CodeStore {
    root: PathBuf,
    limits: PayloadLimits,
}

impl CodeStore {
    pub fn open(root: impl Into<PathBuf>, limits: PayloadLimits) -> Result<Self, RuntimeError> {
        let root = root.into();
        fs::create_dir_all(root.join("blobs"))?;
        fs::create_dir_all(root.join("trees"))?;
        // Leftovers of an extraction interrupted by a crash.
        for entry in fs::read_dir(root.join("trees"))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        Ok(Self { root, limits })
    }

    /// Stores a zip package after checking its size and every entry.
    pub fn put_zip(&self, zip: &[u8]) -> Result<StoredCode, RuntimeError> {
        self.limits.check_zip_package(zip.len())?;
        let digest = hex::encode(Sha512::digest(zip));
        let max = self.limits.unzipped_package;
        self.put(&digest, zip, |dir| extract_zip(zip, dir, max).map(drop))
    }

    /// Stores inline source code as the single file `filename` of its package.
    pub fn put_inline(&self, filename: &str, source: &[u8]) -> Result<StoredCode, RuntimeError> {
        self.limits.check_inline_code(source.len())?;
        if !is_plain_file_name(filename) {
            return Err(RuntimeError::InvalidPackage(format!(
                "{filename:?} is not a plain file name"
            )));
        }
        let mut hasher = Sha512::new();
        hasher.update(filename.as_bytes());
        hasher.update([0]);
        hasher.update(source);
        let digest = hex::encode(hasher.finalize());
        self.put(&digest, source, |dir| {
            let path = dir.join(filename);
            fs::write(&path, source)?;
            if filename == "bootstrap" {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            }
            Ok(())
        })
    }

    /// The package's bytes as uploaded.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>, RuntimeError> {
        Ok(fs::read(self.blob_path(digest))?)
    }

    /// Whether `digest` is one this store could have made (128 lowercase hex digits): a
    /// digest read back from a database is checked before it becomes a path.
    pub fn is_digest(digest: &str) -> bool {
        digest.len() == 128
            && digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// The unpacked tree of a stored package.
    pub fn tree(&self, digest: &str) -> PathBuf {
        self.root.join("trees").join(digest)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs").join(digest)
    }

    fn put(
        &self,
        digest: &str,
        bytes: &[u8],
        unpack: impl FnOnce(&Path) -> Result<(), RuntimeError>,
    ) -> Result<StoredCode, RuntimeError> {
        let tree = self.tree(digest);
        if !tree.is_dir() {
            let tmp = self.root.join("trees").join(unique_tmp_name(digest));
            fs::create_dir(&tmp)?;
            if let Err(e) = unpack(&tmp) {
                let _ = fs::remove_dir_all(&tmp);
                return Err(e);
            }
            if fs::rename(&tmp, &tree).is_err() {
                // Another writer stored the same package first.
                let _ = fs::remove_dir_all(&tmp);
            }
        }
        let blob = self.blob_path(digest);
        if !blob.is_file() {
            let tmp = self.root.join("blobs").join(unique_tmp_name(digest));
            fs::write(&tmp, bytes)?;
            fs::rename(&tmp, &blob)?;
        }
        Ok(StoredCode {
            digest: digest.to_string(),
            size: bytes.len() as u64,
            dir: tree,
        })
    }
}

/// A temporary name no other upload (in this process or another) is using.
fn unique_tmp_name(digest: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        ".tmp-{digest}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `name` is one ordinary path component (no separator, `.`, `..` or NUL).
fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(components.next(), Some(Component::Normal(_)))
        && components.next().is_none()
        && !name.contains(['/', '\\', '\0'])
}

/// The file `name` at the top of the code tree `root`, if `name` is a plain file name and the
/// file, with every symlink resolved, is still inside `root`.
pub fn file_in(root: &Path, name: &str) -> Option<PathBuf> {
    if !is_plain_file_name(name) {
        return None;
    }
    let path = root.join(name);
    let real = fs::canonicalize(&path).ok()?;
    real.starts_with(fs::canonicalize(root).ok()?)
        .then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_in_stays_inside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("echo.wasm"), b"x").unwrap();
        fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink("../secret", root.join("out.wasm")).unwrap();
        assert_eq!(file_in(&root, "echo.wasm"), Some(root.join("echo.wasm")));
        for bad in ["out.wasm", "../secret", "", ".", "..", "a/b", "missing"] {
            assert_eq!(file_in(&root, bad), None, "{bad}");
        }
    }

    #[test]
    fn concurrent_uploads_of_one_package_each_publish_a_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path(), PayloadLimits::default()).unwrap();
        let source = vec![b'#'; 8000];
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let stored = store.put_inline("index.py", &source).unwrap();
                    assert_eq!(fs::read(stored.dir.join("index.py")).unwrap(), source);
                });
            }
        });
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("trees"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn inline_file_names_cannot_leave_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path(), PayloadLimits::default()).unwrap();
        for bad in ["../../runtimes/bootstrap.py", "a/b.py", "..", "/etc/x.py"] {
            assert!(
                matches!(
                    store.put_inline(bad, b"x"),
                    Err(RuntimeError::InvalidPackage(_))
                ),
                "{bad}"
            );
        }
        assert!(!dir.path().join("runtimes").exists());
    }

    #[test]
    fn stores_inline_once_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path(), PayloadLimits::default()).unwrap();
        let a = store
            .put_inline("index.py", b"def handler(e, c): return 1\n")
            .unwrap();
        let b = store
            .put_inline("index.py", b"def handler(e, c): return 1\n")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.digest.len(), 128);
        assert_eq!(
            fs::read(a.dir.join("index.py")).unwrap(),
            b"def handler(e, c): return 1\n"
        );
        assert_eq!(
            store.blob(&a.digest).unwrap(),
            b"def handler(e, c): return 1\n"
        );
    }

    #[test]
    fn refuses_oversized_inline_code() {
        let dir = tempfile::tempdir().unwrap();
        let store = CodeStore::open(dir.path(), PayloadLimits::default()).unwrap();
        let err = store
            .put_inline("index.py", &vec![b'#'; 10 * 1024 + 1])
            .unwrap_err();
        assert!(matches!(err, RuntimeError::Limit(_)));
    }
}
