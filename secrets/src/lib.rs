//! The host key and what it protects.
//!
//! fgs keeps secrets that callers hand it — a function's `encrypted_user_data`, a stream's or
//! a connection's broker password — and files whose bytes it later trusts, such as compiled
//! WebAssembly, which is loaded as native code. Both are tied to one random 256-bit key per
//! host, kept in a file only root can read (`--secret-key-file`, created `0600` on first
//! start):
//!
//! - [`HostKey::seal`] encrypts a secret with AES-256-GCM under a fresh nonce, so the SQLite
//!   files hold `fgs-sealed:v1:…` instead of the clear text; [`HostKey::open`] refuses anything
//!   altered or sealed under another key.
//! - [`HostKey::tag`] / [`HostKey::verify`] are an HMAC-SHA256 over a file's contents, so a
//!   file that fgs did not write (or that changed since) is never loaded.
//!
//! The two uses take separate keys derived from the host key, so a MAC can never be replayed
//! as a ciphertext or the other way round.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a sealed value starts with, so sealed and clear values can never be confused.
const SEALED_PREFIX: &str = "fgs-sealed:v1:";
const NONCE_LEN: usize = 12;
/// The length of a [`HostKey::tag`].
pub const TAG_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("host key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("host key file {path} must hold exactly 32 bytes (it holds {len})")]
    BadKeyFile { path: String, len: usize },
    #[error("host key file {path} is readable by group or others (mode {mode:o}); make it 0600")]
    KeyFileMode { path: String, mode: u32 },
    #[error("a sealed secret was altered or sealed under another host key")]
    Tampered,
    #[error("not a sealed secret")]
    NotSealed,
}

/// A host's 256-bit key, and the two keys derived from it.
pub struct HostKey {
    seal: Aes256Gcm,
    mac_key: [u8; 32],
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostKey(..)")
    }
}

impl HostKey {
    /// Reads the key at `path`, or creates it (32 random bytes, mode `0600`) when absent.
    /// A key file that others may read is refused rather than trusted.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let io = |source| SecretError::Io {
            path: path.display().to_string(),
            source,
        };
        match fs::read(path) {
            Ok(bytes) => {
                let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SecretError::KeyFileMode {
                        path: path.display().to_string(),
                        mode,
                    });
                }
                let key: [u8; 32] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| SecretError::BadKeyFile {
                            path: path.display().to_string(),
                            len: bytes.len(),
                        })?;
                Ok(Self::from_bytes(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir).map_err(io)?;
                }
                let mut key = [0u8; 32];
                getrandom::getrandom(&mut key)
                    .map_err(|e| io(std::io::Error::other(e.to_string())))?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                file.write_all(&key).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(Self::from_bytes(&key))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A key from its 32 bytes (tests, and hosts that share a key).
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let seal_key = derive(b"fgs host key: seal v1");
        Self {
            seal: Aes256Gcm::new((&seal_key).into()),
            mac_key: derive(b"fgs host key: file mac v1"),
        }
    }

    /// Encrypts `secret`; the result is printable and starts with `fgs-sealed:v1:`.
    pub fn seal(&self, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).expect("the kernel's random source");
        let ciphertext = self
            .seal
            .encrypt(Nonce::from_slice(&nonce), secret.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        )
    }

    /// Decrypts a value made by [`HostKey::seal`] with this key.
    pub fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretError::NotSealed)?;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| SecretError::Tampered)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Tampered);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let clear = self
            .seal
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretError::Tampered)?;
        String::from_utf8(clear).map_err(|_| SecretError::Tampered)
    }

    /// Whether `value` is a sealed secret (as opposed to a clear one).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(SEALED_PREFIX)
    }

    /// An HMAC-SHA256 of `data`, bound to `context` (what the bytes are, e.g. the engine).
    pub fn tag(&self, context: &[u8], data: &[u8]) -> [u8; TAG_LEN] {
        self.file_mac(context, data).finalize().into_bytes().into()
    }

    /// Whether `tag` is this host's [`HostKey::tag`] of `data` in `context` (constant time).
    pub fn verify(&self, context: &[u8], data: &[u8], tag: &[u8]) -> bool {
        self.file_mac(context, data).verify_slice(tag).is_ok()
    }

    fn file_mac(&self, context: &[u8], data: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).expect("any key length");
        mac.update(&(context.len() as u64).to_be_bytes());
        mac.update(context);
        mac.update(data);
        mac
    }
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ (for
/// comparing secrets and signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_detects_tampering() {
        let key = HostKey::from_bytes(&[7; 32]);
        let sealed = key.seal("password=hunter2");
        assert!(HostKey::is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, key.seal("password=hunter2"), "fresh nonce per seal");
        assert_eq!(key.open(&sealed).unwrap(), "password=hunter2");

        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(matches!(key.open(&altered), Err(SecretError::Tampered)));
        let other = HostKey::from_bytes(&[8; 32]);
        assert!(matches!(other.open(&sealed), Err(SecretError::Tampered)));
        assert!(matches!(key.open("clear"), Err(SecretError::NotSealed)));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn tags_bind_the_context_and_the_key() {
        let key = HostKey::from_bytes(&[1; 32]);
        let tag = key.tag(b"engine-a", b"bytes");
        assert!(key.verify(b"engine-a", b"bytes", &tag));
        assert!(!key.verify(b"engine-b", b"bytes", &tag));
        assert!(!key.verify(b"engine-a", b"bytez", &tag));
        assert!(!HostKey::from_bytes(&[2; 32]).verify(b"engine-a", b"bytes", &tag));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/host.key");
        let a = HostKey::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = HostKey::load_or_create(&path).unwrap();
        assert_eq!(b.open(&a.seal("x")).unwrap(), "x");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            HostKey::load_or_create(&path),
            Err(SecretError::KeyFileMode { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            HostKey::load_or_create(&path),
            Err(SecretError::BadKeyFile { len: 5, .. })
        ));
    }
}
