//! The on-disk cache of compiled components.
//!
//! A cached artifact is native code that wasmtime maps without checking it, so only files
//! that this host wrote may ever be loaded:
//!
//! - an artifact is named by the SHA-256 of the component file itself (not of the package it
//!   came in: two `.wasm` files of one package are two artifacts) and by the engine's
//!   compatibility hash, since it is valid only for the settings it was compiled with;
//! - its first [`TAG_LEN`] bytes are the host key's MAC over the rest, bound to the name, and
//!   an artifact whose MAC does not verify is recompiled, never deserialized;
//! - it is written to a unique temporary file and renamed into place, so a reader sees a
//!   whole artifact or none.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use fgs_secrets::{HostKey, TAG_LEN};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use super::WasmError;

/// Loads the compiled form of the component file at `path` from the cache, or compiles it and
/// stores the result.
pub fn load_or_compile(
    engine: &Engine,
    key: &HostKey,
    cache_dir: &Path,
    path: &Path,
) -> Result<Component, WasmError> {
    let bytes = std::fs::read(path)?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let name = format!(
        "{}-{:016x}.cwasm",
        hex::encode(Sha256::digest(&bytes)),
        hasher.finish()
    );
    let artifact = cache_dir.join(&name);
    if let Ok(stored) = std::fs::read(&artifact) {
        match stored.split_at_checked(TAG_LEN) {
            Some((tag, code)) if key.verify(name.as_bytes(), code, tag) => {
                // SAFETY: the MAC proves this host's key wrote these bytes under this name,
                // and it writes only what `Component::serialize` of an engine with the same
                // compatibility hash produced.
                match unsafe { Component::deserialize(engine, code) } {
                    Ok(component) => return Ok(component),
                    Err(e) => {
                        tracing::warn!(artifact = %artifact.display(), error = %e, "recompiling an unusable cached component")
                    }
                }
            }
            _ => {
                tracing::warn!(artifact = %artifact.display(), "cached component not written by this host; recompiling")
            }
        }
    }
    let component = Component::new(engine, &bytes)
        .map_err(|e| WasmError::InvalidComponent(format!("{e:#}")))?;
    let code = component
        .serialize()
        .map_err(|e| WasmError::InvalidComponent(e.to_string()))?;
    let mut stored = key.tag(name.as_bytes(), &code).to_vec();
    stored.extend_from_slice(&code);
    write_atomically(&artifact, &stored)?;
    Ok(component)
}

/// Writes `bytes` to a temporary file unique to this call, then renames it to `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
