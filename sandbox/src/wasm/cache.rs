//! The on-disk cache of compiled components.
//!
//! An artifact is valid only for the engine settings it was compiled with, so its name holds
//! both the code package's digest and a hash of the engine's compatibility settings.

use std::hash::{Hash, Hasher};
use std::path::Path;

use wasmtime::component::Component;
use wasmtime::Engine;

use super::WasmError;

/// Loads the compiled form of the component at `path` (with code digest `digest`) from the
/// cache, or compiles it and stores the result.
pub fn load_or_compile(
    engine: &Engine,
    cache_dir: &Path,
    path: &Path,
    digest: &str,
) -> Result<Component, WasmError> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let artifact = cache_dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()));
    if artifact.is_file() {
        // SAFETY: the artifact was written by `Component::serialize` of an engine with the
        // same compatibility hash, into fgs's own cache directory.
        match unsafe { Component::deserialize_file(engine, &artifact) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(artifact = %artifact.display(), error = %e, "recompiling unusable cached component")
            }
        }
    }
    let bytes = std::fs::read(path)?;
    let component = Component::new(engine, &bytes)
        .map_err(|e| WasmError::InvalidComponent(format!("{e:#}")))?;
    let serialized = component
        .serialize()
        .map_err(|e| WasmError::InvalidComponent(e.to_string()))?;
    let tmp = artifact.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, serialized)?;
    std::fs::rename(&tmp, &artifact)?;
    Ok(component)
}
