//! Code packages: validated, content-addressed and unpacked once.
//!
//! The store keeps each package's original bytes under `blobs/<digest>` and its unpacked
//! tree under `trees/<digest>/`. The digest (SHA-512, hex) is the package's address and the
//! function's `digest` field; identical code is stored once, and a tree, once written, never
//! changes, so running instances keep a stable view while new code lands beside it. Trees are
//! unpacked into a temporary directory and renamed into place, so a crash never leaves a
//! half-written tree under a valid address.

mod extract;

use std::fs;
use std::path::{Path, PathBuf};

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
            let tmp = self
                .root
                .join("trees")
                .join(format!(".tmp-{digest}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(&tmp)?;
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
            let tmp = blob.with_extension("tmp");
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

#[cfg(test)]
mod tests {
    use super::*;

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
