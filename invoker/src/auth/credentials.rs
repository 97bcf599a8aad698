//! The credentials a host accepts (`--credentials FILE`): access keys with their secret keys,
//! the projects each may act on, whether it may only read, and optionally a user name and
//! password with which it can ask for a token.
//!
//! ```json
//! {"credentials": [
//!   {"access_key": "AK1", "secret_key": "SK1", "projects": ["0a1b…"], "read_only": false,
//!    "user_name": "alice", "password": "…"},
//!   {"access_key": "OPS", "secret_key": "…", "projects": ["*"]}
//! ]}
//! ```
//!
//! The file holds secrets in clear, so, like the host key, it must not be readable by group or
//! others. `"*"` allows every project (and `/metrics`, which spans projects).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use fgs_secrets::constant_time_eq;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub access_key: String,
    pub secret_key: String,
    pub projects: Vec<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

impl Credential {
    /// Whether this credential may act on `project_id`.
    pub fn allows(&self, project_id: &str) -> bool {
        self.projects.iter().any(|p| p == "*" || p == project_id)
    }

    /// Whether this credential may act on every project.
    pub fn allows_all(&self) -> bool {
        self.projects.iter().any(|p| p == "*")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    credentials: Vec<Credential>,
}

/// The accepted credentials, by access key.
#[derive(Debug, Default)]
pub struct Credentials {
    by_access_key: HashMap<String, Credential>,
}

impl Credentials {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{} holds secret keys and is readable by group or others (mode {mode:o}); make it 0600",
            path.display()
        );
        let file: File = serde_json::from_slice(&std::fs::read(path)?)?;
        Self::new(file.credentials)
    }

    pub fn new(list: Vec<Credential>) -> anyhow::Result<Self> {
        let mut by_access_key = HashMap::new();
        for c in list {
            anyhow::ensure!(
                !c.access_key.is_empty() && !c.secret_key.is_empty(),
                "a credential needs an access_key and a secret_key"
            );
            anyhow::ensure!(
                !c.projects.is_empty(),
                "credential {} allows no project",
                c.access_key
            );
            let ak = c.access_key.clone();
            anyhow::ensure!(
                by_access_key.insert(ak.clone(), c).is_none(),
                "access key {ak} appears twice"
            );
        }
        Ok(Self { by_access_key })
    }

    pub fn access_keys(&self) -> impl Iterator<Item = &str> {
        self.by_access_key.keys().map(String::as_str)
    }

    pub fn user_names(&self) -> impl Iterator<Item = &str> {
        self.by_access_key
            .values()
            .filter_map(|c| c.user_name.as_deref())
    }

    pub fn get(&self, access_key: &str) -> Option<&Credential> {
        self.by_access_key.get(access_key)
    }

    /// The credential whose user name and password these are.
    pub fn by_password(&self, user_name: &str, password: &str) -> Option<&Credential> {
        self.by_access_key.values().find(|c| {
            c.user_name.as_deref() == Some(user_name)
                && c.password
                    .as_deref()
                    .is_some_and(|p| constant_time_eq(p.as_bytes(), password.as_bytes()))
        })
    }
}
