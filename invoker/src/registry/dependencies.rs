//! Dependency packages: zips of libraries, each version unpacked once into the code store
//! (content-addressed, so identical packages share one tree) and shown read-only to every
//! instance of every function that names it in `depend_version_list`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::RegistryError;

/// Most dependency packages one function version may name (FunctionGraph documents none;
/// fgs's choice).
pub const MAX_PER_FUNCTION: usize = 20;

/// One version of a dependency package, as stored. Versions are immutable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DependencyVersion {
    /// The version's id: what `depend_version_list` names.
    pub id: String,
    /// The dependency's id, shared by its versions.
    pub dep_id: String,
    pub project_id: String,
    pub name: String,
    /// 1, 2, … per dependency.
    pub version: u32,
    pub runtime: String,
    pub description: String,
    /// SHA-512 of the zip: where its tree is in the code store.
    pub digest: String,
    /// MD5 of the zip (`etag`).
    pub etag: String,
    pub size: u64,
    pub file_name: String,
    /// Milliseconds since the Unix epoch.
    pub last_modified: i64,
}

/// Checks a dependency name: a letter first, a letter or digit last, letters, digits, `_`, `.`
/// and `-` between, at most 96 characters (as documented).
pub fn validate_name(name: &str) -> Result<(), RegistryError> {
    let b = name.as_bytes();
    let valid = !b.is_empty()
        && b.len() <= 96
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(RegistryError::InvalidDependency(format!(
            "name {name:?}: 1 to 96 letters, digits, _, . and -, starting with a letter and ending with a letter or digit"
        )))
    }
}

/// The dependency versions `ids` names, for a function of `runtime` in `project_id`: each must
/// exist in the project and be built for the function's runtime, none twice, at most
/// [`MAX_PER_FUNCTION`].
pub fn resolve(
    table: &[Arc<DependencyVersion>],
    project_id: &str,
    runtime: &str,
    ids: &[String],
) -> Result<Vec<Arc<DependencyVersion>>, RegistryError> {
    if ids.len() > MAX_PER_FUNCTION {
        return Err(RegistryError::InvalidDependency(format!(
            "{} dependencies named; at most {MAX_PER_FUNCTION}",
            ids.len()
        )));
    }
    let mut found: Vec<Arc<DependencyVersion>> = Vec::with_capacity(ids.len());
    for id in ids {
        let dependency = table
            .iter()
            .find(|d| d.id == *id && d.project_id == project_id)
            .ok_or_else(|| RegistryError::DependencyNotFound(id.clone()))?;
        if dependency.runtime != runtime {
            return Err(RegistryError::InvalidDependency(format!(
                "{} version {} is for {}, the function runs {runtime}",
                dependency.name, dependency.version, dependency.runtime
            )));
        }
        if found.iter().any(|d| d.id == *id) {
            return Err(RegistryError::InvalidDependency(format!(
                "{id} is named twice"
            )));
        }
        found.push(dependency.clone());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, project: &str, runtime: &str) -> Arc<DependencyVersion> {
        Arc::new(DependencyVersion {
            id: id.into(),
            dep_id: "d".into(),
            project_id: project.into(),
            name: "lib".into(),
            version: 1,
            runtime: runtime.into(),
            description: String::new(),
            digest: String::new(),
            etag: String::new(),
            size: 0,
            file_name: "lib.zip".into(),
            last_modified: 0,
        })
    }

    #[test]
    fn resolves_within_project_and_runtime() {
        let table = vec![
            version("a", "p1", "Python3.9"),
            version("b", "p2", "Python3.9"),
            version("c", "p1", "Node.js18.15"),
        ];
        let ok = resolve(&table, "p1", "Python3.9", &["a".into()]).unwrap();
        assert_eq!(ok[0].id, "a");
        // Another project's dependency does not exist for this one.
        assert!(matches!(
            resolve(&table, "p1", "Python3.9", &["b".into()]),
            Err(RegistryError::DependencyNotFound(_))
        ));
        assert!(matches!(
            resolve(&table, "p1", "Python3.9", &["c".into()]),
            Err(RegistryError::InvalidDependency(_))
        ));
        assert!(matches!(
            resolve(&table, "p1", "Python3.9", &["a".into(), "a".into()]),
            Err(RegistryError::InvalidDependency(_))
        ));
    }

    #[test]
    fn names() {
        assert!(validate_name("numpy-1.2_x").is_ok());
        for bad in ["", "1lib", "lib-", "a/b", &"a".repeat(97)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
