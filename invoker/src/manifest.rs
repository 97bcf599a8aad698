//! The project manifest (`fgs.yaml`): the functions a project should have, as files next to
//! it, with their published versions, aliases and triggers, and the project's DIS streams and
//! event streams. Parsing reports the line and column of what is wrong; a key fgs does not know
//! is refused by name.
//!
//! ```yaml
//! project: my-project        # optional; else --project / FGS_PROJECT, else `default`
//! functions:
//!   hello:
//!     runtime: Python3.9
//!     handler: index.handler
//!     code: ./hello            # a directory (zipped by fgs) or a .zip file, relative to the manifest
//!     memory: 128              # MB (default 128)
//!     timeout: 3               # seconds (default 3)
//!     environment: {GREETING: Hello}
//!     description: optional
//!     initializer: {handler: index.init, timeout: 3}
//!     versions: [v1]           # published (from the code as applied) when missing
//!     aliases:
//!       prod: {version: v1, weights: {latest: 10}}
//!     triggers:
//!       - {type: TIMER, status: ACTIVE, event: {name: hourly, schedule_type: Rate, schedule: 1h}}
//! dis_streams:
//!   clicks: {partitions: 2, type: COMMON, retention_hours: 24, data_type: BLOB}
//! event_streams:
//!   orders: {source: {...}, sink: {...}, rule_config: {...}, option: {...}, running: true}
//! ```
//!
//! `versions`, `aliases`, `triggers`, `dis_streams` and `event_streams` left out mean "not
//! managed": apply leaves the host's alone, even with `--prune`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub project: Option<String>,
    #[serde(default)]
    pub functions: BTreeMap<String, Function>,
    /// DIS streams, by name (made before the functions, whose DIS triggers read them). Left
    /// out: not managed (`--prune` deletes none).
    pub dis_streams: Option<BTreeMap<String, DisStream>>,
    /// EventGrid event streams, by name (made after the functions they deliver to). Left out:
    /// not managed.
    pub event_streams: Option<BTreeMap<String, EventStream>>,
}

/// A DIS stream: its partitions can change; its type, retention and data type cannot.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisStream {
    #[serde(default = "one")]
    pub partitions: u32,
    /// `COMMON` (the default) or `ADVANCED`.
    #[serde(rename = "type", default = "common")]
    pub kind: String,
    /// Hours (24 to 72 in DIS, more in fgs; default 24).
    #[serde(default = "day")]
    pub retention_hours: u32,
    /// `BLOB` (the default), `JSON` or `CSV`.
    #[serde(default = "blob")]
    pub data_type: String,
}

fn one() -> u32 {
    1
}
fn common() -> String {
    "COMMON".into()
}
fn day() -> u32 {
    24
}
fn blob() -> String {
    "BLOB".into()
}

/// An event stream in EventGrid's API shape (`source`, `sink`, `rule_config`, `option`, as
/// `POST /v1/{project_id}/eventstreamings` takes them), and whether it should run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventStream {
    pub description: Option<String>,
    pub source: Value,
    pub sink: Value,
    #[serde(default)]
    pub rule_config: Option<Value>,
    #[serde(default)]
    pub option: Option<Value>,
    /// Started after it is made or changed (the default), or paused.
    #[serde(default = "yes")]
    pub running: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Function {
    pub runtime: String,
    pub handler: String,
    pub code: PathBuf,
    #[serde(default = "default_memory")]
    pub memory: i64,
    #[serde(default = "default_timeout")]
    pub timeout: i64,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    pub description: Option<String>,
    pub initializer: Option<Initializer>,
    /// Published versions the function should have.
    pub versions: Option<Vec<String>>,
    pub aliases: Option<BTreeMap<String, AliasSpec>>,
    pub triggers: Option<Vec<TriggerSpec>>,
}

/// An alias: the version it points to, and others taking a share of its invocations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasSpec {
    pub version: String,
    pub description: Option<String>,
    /// Version → percent (`additional_version_weights`).
    #[serde(default)]
    pub weights: BTreeMap<String, i64>,
}

/// A trigger of the function (its `latest`), as the trigger API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// `trigger_type_code`: TIMER, APIG, KAFKA, DIS, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `trigger_status`: ACTIVE (the default) or DISABLED.
    #[serde(default = "active")]
    pub status: String,
    pub event_type_code: Option<String>,
    /// `event_data`.
    #[serde(default)]
    pub event: serde_json::Map<String, Value>,
}

fn active() -> String {
    "ACTIVE".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Initializer {
    pub handler: String,
    #[serde(default = "default_timeout")]
    pub timeout: i64,
}

fn default_memory() -> i64 {
    128
}

fn default_timeout() -> i64 {
    3
}

/// A manifest that cannot be used, with where (`file:line:column: …`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

/// A function as the API should have it: its create body and the digest of its code.
pub struct Desired<'m> {
    pub name: String,
    pub body: Value,
    pub digest: String,
    /// The function as the manifest declares it (its versions, aliases and triggers).
    pub spec: &'m Function,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ManifestError(format!("{}: {e}", path.display())))?;
        let manifest: Manifest = serde_yaml::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{}:{}:{}", path.display(), l.line(), l.column()))
                .unwrap_or_else(|| path.display().to_string());
            ManifestError(format!("{at}: {e}"))
        })?;
        for name in manifest.functions.keys() {
            let ok = name.len() <= 60
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(ManifestError(format!(
                    "{}: functions.{name}: a function name is 1 to 60 letters, digits, '_' or '-', starting with a letter",
                    path.display()
                )));
            }
        }
        Ok(manifest)
    }

    /// The functions as create bodies, their code packaged (paths relative to `base`, the
    /// manifest's directory).
    pub fn desired(&self, base: &Path) -> Result<Vec<Desired<'_>>, ManifestError> {
        self.functions
            .iter()
            .map(|(name, f)| {
                let code = base.join(&f.code);
                let zip = package(&code).map_err(|e| {
                    ManifestError(format!("functions.{name}.code: {}: {e}", f.code.display()))
                })?;
                let digest = hex::encode(Sha512::digest(&zip));
                use base64::Engine;
                let mut body = json!({
                    "func_name": name,
                    "package": "default",
                    "runtime": f.runtime,
                    "handler": f.handler,
                    "memory_size": f.memory,
                    "timeout": f.timeout,
                    "code_type": "zip",
                    "code_filename": format!("{name}.zip"),
                    "func_code": {"file": base64::engine::general_purpose::STANDARD.encode(&zip)},
                    "user_data": serde_json::to_string(&f.environment).expect("a map serializes"),
                    "description": f.description.clone().unwrap_or_default(),
                });
                if let Some(init) = &f.initializer {
                    body["initializer_handler"] = json!(init.handler);
                    body["initializer_timeout"] = json!(init.timeout);
                }
                Ok(Desired {
                    name: name.clone(),
                    body,
                    digest,
                    spec: f,
                })
            })
            .collect()
    }
}

/// A function's code as a zip: a `.zip` file as it is, a directory zipped the same way every
/// time (sorted entries, fixed times, the files' modes), so unchanged code has the same digest.
pub fn package(path: &Path) -> std::io::Result<Vec<u8>> {
    package_with(path, &mut |_| {})
}

/// How far [`package_with`] is: the bytes of the files to zip, once known, then those zipped.
pub enum Packing {
    Total(u64),
    Zipped(u64),
}

/// [`package`], telling `progress` how far it is (`fgs deploy`'s progress bar).
pub fn package_with(path: &Path, progress: &mut dyn FnMut(Packing)) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return std::fs::read(path);
    }
    let mut files = Vec::new();
    collect(path, path, &mut files)?;
    files.sort();
    let mut entries = Vec::with_capacity(files.len());
    for relative in files {
        let meta = std::fs::metadata(path.join(&relative))?;
        entries.push((relative, meta.len(), meta.permissions().mode() & 0o777));
    }
    progress(Packing::Total(entries.iter().map(|(_, len, _)| len).sum()));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (relative, len, mode) in entries {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode);
        zip.start_file(relative.to_string_lossy(), options)
            .map_err(std::io::Error::other)?;
        zip.write_all(&std::fs::read(path.join(&relative))?)?;
        progress(Packing::Zipped(len));
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &entry.path(), out)?;
        } else if kind.is_file() {
            out.push(
                entry
                    .path()
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_path_buf(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fgs.yaml");
        std::fs::write(&path, text).unwrap();
        Manifest::load(&path)
    }

    #[test]
    fn the_minimal_form_parses_and_mistakes_say_where() {
        let m = parse(
            "functions:\n  hello:\n    runtime: Python3.9\n    handler: index.handler\n    code: ./hello\n    memory: 128\n    timeout: 3\n    environment: {GREETING: Hello}\n",
        )
        .unwrap();
        assert_eq!(m.functions["hello"].environment["GREETING"], "Hello");
        let e = parse("functions:\n  hello:\n    runtime: Python3.9\n    handler: h\n    code: .\n    memroy: 1\n").unwrap_err();
        assert!(
            e.0.contains("fgs.yaml:6:5") && e.0.contains("memroy"),
            "{e}"
        );
        let e = parse("streams: {}\n").unwrap_err();
        assert!(e.0.contains("streams"), "{e}");
        let m = parse("dis_streams:\n  clicks: {partitions: 3}\nevent_streams:\n  es: {source: {name: HC.Kafka}, sink: {name: HC.FunctionGraph}}\n").unwrap();
        let clicks = &m.dis_streams.as_ref().unwrap()["clicks"];
        assert_eq!((clicks.partitions, clicks.kind.as_str()), (3, "COMMON"));
        assert!(m.event_streams.as_ref().unwrap()["es"].running);
        let e = parse("dis_streams:\n  clicks: {partition: 3}\n").unwrap_err();
        assert!(
            e.0.contains("fgs.yaml:2:") && e.0.contains("partition"),
            "{e}"
        );
        let m = parse(
            "functions:\n  f:\n    runtime: Python3.9\n    handler: h\n    code: .\n    versions: [v1]\n    aliases: {prod: {version: v1, weights: {latest: 10}}}\n    triggers:\n      - {type: TIMER, event: {name: t, schedule: 1h}}\n",
        )
        .unwrap();
        let f = &m.functions["f"];
        assert_eq!(f.aliases.as_ref().unwrap()["prod"].weights["latest"], 10);
        let t = &f.triggers.as_ref().unwrap()[0];
        assert_eq!((t.kind.as_str(), t.status.as_str()), ("TIMER", "ACTIVE"));
        assert_eq!(t.event["schedule"], "1h");
        let e = parse("functions:\n  f:\n    runtime: Python3.9\n    handler: h\n    code: .\n    triggers:\n      - {kind: TIMER}\n").unwrap_err();
        assert!(e.0.contains("fgs.yaml:7:") && e.0.contains("kind"), "{e}");
        let e = parse("functions:\n  1bad:\n    runtime: Python3.9\n    handler: h\n    code: .\n")
            .unwrap_err();
        assert!(e.0.contains("functions.1bad"), "{e}");
    }

    #[test]
    fn a_directory_zips_the_same_every_time() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.py"), "x = 1\n").unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/util.py"), "y = 2\n").unwrap();
        let a = package(dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(dir.path().join("index.py"), "x = 1\n").unwrap();
        assert_eq!(a, package(dir.path()).unwrap());
        std::fs::write(dir.path().join("index.py"), "x = 2\n").unwrap();
        assert_ne!(a, package(dir.path()).unwrap());
    }
}
