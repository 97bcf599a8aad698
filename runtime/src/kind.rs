//! Language runtimes: which FunctionGraph `runtime` values fgs runs, and how.
//!
//! Every runtime is driven through the custom-runtime API. `Custom` runs the package's own
//! `bootstrap`; Python and Node.js run a bootstrap that fgs ships (in `runtime/bootstraps/`),
//! which implements FunctionGraph's programming model on top of that API. Python runtimes use
//! the host's `python3` and Node.js runtimes the host's `node`, whatever their version: the
//! version in the runtime name is accepted for compatibility, not emulated.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use fgs_limits::LimitError;

use crate::RuntimeError;

const PYTHON_BOOTSTRAP: &str = include_str!("../bootstraps/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../bootstraps/nodejs/bootstrap.js");

/// The languages fgs can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    NodeJs,
    Custom,
    /// A WebAssembly component (runtime `WASM`, an fgs extension).
    Wasm,
    /// An HTTP function (runtime `http`): its `bootstrap` (a shell command line) starts a web
    /// server on 127.0.0.1:8000, to which the gateway forwards requests.
    Http,
}

/// FunctionGraph runtime names fgs runs.
const SUPPORTED: &[(&str, Language)] = &[
    ("Python3.6", Language::Python),
    ("Python3.9", Language::Python),
    ("Python3.10", Language::Python),
    ("Python3.12", Language::Python),
    ("Node.js6.10", Language::NodeJs),
    ("Node.js8.10", Language::NodeJs),
    ("Node.js10.16", Language::NodeJs),
    ("Node.js12.13", Language::NodeJs),
    ("Node.js14.18", Language::NodeJs),
    ("Node.js16.17", Language::NodeJs),
    ("Node.js18.15", Language::NodeJs),
    ("Node.js20.15", Language::NodeJs),
    ("Custom", Language::Custom),
    ("WASM", Language::Wasm),
    ("http", Language::Http),
];

/// FunctionGraph runtime names that are valid but that fgs does not run (yet).
const KNOWN_UNSUPPORTED: &[&str] = &[
    "Java8",
    "Java11",
    "Java17",
    "Java21",
    "Python2.7",
    "Go1.8",
    "Go1.x",
    "C#(.NET Core 2.0)",
    "C#(.NET Core 2.1)",
    "C#(.NET Core 3.1)",
    "C#(.NET Core 6.0)",
    "PHP7.3",
    "PHP8.3",
    "Cangjie1.0",
    "Custom Image",
];

impl Language {
    /// Resolves a FunctionGraph `runtime` value.
    pub fn from_runtime(runtime: &str) -> Result<Self, RuntimeError> {
        if let Some((_, lang)) = SUPPORTED.iter().find(|(name, _)| *name == runtime) {
            return Ok(*lang);
        }
        if KNOWN_UNSUPPORTED.contains(&runtime) {
            return Err(RuntimeError::UnsupportedRuntime(runtime.to_string()));
        }
        Err(LimitError::Runtime(format!(
            "{runtime:?} is not a FunctionGraph runtime; fgs runs {}",
            SUPPORTED
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into())
    }

    /// The file inline code is stored as: the handler's module with the language's
    /// extension, or `bootstrap` for custom runtimes.
    pub fn inline_filename(self, handler: &str) -> String {
        let module = handler.rsplit_once('.').map(|(m, _)| m).unwrap_or(handler);
        match self {
            Language::Python => format!("{module}.py"),
            Language::NodeJs => format!("{module}.js"),
            Language::Custom | Language::Http => "bootstrap".into(),
            Language::Wasm => handler.to_string(),
        }
    }
}

/// An interpreter found on this host.
#[derive(Debug, Clone)]
struct Interpreter {
    /// The real executable (not a wrapper such as a pyenv shim).
    executable: PathBuf,
    /// Its installation prefix, which an instance must see to run it.
    prefix: PathBuf,
}

/// Where the interpreters and shipped bootstraps are on this host. The interpreters are
/// looked up once, on a thread of their own from the start: asking `python3` where it is
/// means running it (through a pyenv shim, ~40 ms), which a host's start must not wait for.
#[derive(Debug, Clone)]
pub struct RuntimeLayout {
    python: Arc<OnceLock<Option<Interpreter>>>,
    node: Arc<OnceLock<Option<Interpreter>>>,
    bootstrap_dir: PathBuf,
}

impl RuntimeLayout {
    /// Finds `python3` and `node` and writes the shipped bootstraps under `dir`.
    pub fn install(dir: &Path) -> Result<Self, RuntimeError> {
        fs::create_dir_all(dir)?;
        fs::write(dir.join("bootstrap.py"), PYTHON_BOOTSTRAP)?;
        fs::write(dir.join("bootstrap.js"), NODE_BOOTSTRAP)?;
        let layout = Self {
            python: Arc::default(),
            node: Arc::default(),
            bootstrap_dir: dir.into(),
        };
        let lookup = layout.clone();
        std::thread::spawn(move || {
            lookup.python();
            lookup.node();
        });
        Ok(layout)
    }

    fn python(&self) -> &Option<Interpreter> {
        self.python.get_or_init(find_python)
    }

    fn node(&self) -> &Option<Interpreter> {
        self.node.get_or_init(find_node)
    }

    /// Where the shipped bootstraps are on the host.
    pub fn root(&self) -> &Path {
        &self.bootstrap_dir
    }

    /// The program and arguments that start an instance of `language`, with the code and the
    /// bootstraps at `code_root` and `runtime_root` as the instance sees them.
    pub fn command(
        &self,
        language: Language,
        code_root: &Path,
        runtime_root: &Path,
    ) -> Result<(PathBuf, Vec<String>), RuntimeError> {
        let script = |file: &str| runtime_root.join(file).to_string_lossy().into_owned();
        Ok(match language {
            Language::Python => (
                self.interpreter(self.python(), "python3")?
                    .executable
                    .clone(),
                vec!["-u".into(), script("bootstrap.py")],
            ),
            Language::NodeJs => (
                self.interpreter(self.node(), "node")?.executable.clone(),
                vec![script("bootstrap.js")],
            ),
            Language::Custom => (code_root.join("bootstrap"), vec![]),
            // FunctionGraph's HTTP bootstrap is a command line, executable or not.
            Language::Http => (
                PathBuf::from("/bin/sh"),
                vec![code_root.join("bootstrap").to_string_lossy().into_owned()],
            ),
            Language::Wasm => {
                return Err(RuntimeError::UnsupportedRuntime(
                    "WASM runs in-process, not as a command".into(),
                ))
            }
        })
    }

    /// Host directories an instance of `language` needs to see (the interpreter's prefix;
    /// both interpreters for an HTTP function, whose bootstrap may start either).
    pub fn ro_paths(&self, language: Language) -> Vec<PathBuf> {
        let found: Vec<&Interpreter> = match language {
            Language::Python => self.python().iter().collect(),
            Language::NodeJs => self.node().iter().collect(),
            Language::Http => self.python().iter().chain(self.node().iter()).collect(),
            Language::Custom | Language::Wasm => Vec::new(),
        };
        found.iter().map(|i| i.prefix.clone()).collect()
    }

    fn interpreter<'a>(
        &self,
        found: &'a Option<Interpreter>,
        name: &str,
    ) -> Result<&'a Interpreter, RuntimeError> {
        found.as_ref().ok_or_else(|| {
            RuntimeError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name} is not installed on this host"),
            ))
        })
    }
}

/// Asks `python3` where it really is (`python3` on `PATH` may be a wrapper script).
fn find_python() -> Option<Interpreter> {
    let out = std::process::Command::new(find_on_path("python3")?)
        .args([
            "-c",
            "import sys; print(sys.executable); print(sys.base_prefix)",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let executable = fs::canonicalize(lines.next()?).ok()?;
    let prefix = PathBuf::from(lines.next()?);
    Some(Interpreter { executable, prefix })
}

fn find_node() -> Option<Interpreter> {
    let executable = fs::canonicalize(find_on_path("node")?).ok()?;
    let prefix = executable.parent()?.parent()?.to_path_buf();
    Some(Interpreter { executable, prefix })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_runtimes() {
        assert_eq!(
            Language::from_runtime("Python3.9").unwrap(),
            Language::Python
        );
        assert_eq!(
            Language::from_runtime("Node.js18.15").unwrap(),
            Language::NodeJs
        );
        assert_eq!(Language::from_runtime("Custom").unwrap(), Language::Custom);
        assert!(matches!(
            Language::from_runtime("Java8"),
            Err(RuntimeError::UnsupportedRuntime(_))
        ));
        assert!(matches!(
            Language::from_runtime("Cobol"),
            Err(RuntimeError::Limit(LimitError::Runtime(_)))
        ));
    }

    #[test]
    fn inline_filenames() {
        assert_eq!(
            Language::Python.inline_filename("index.handler"),
            "index.py"
        );
        assert_eq!(Language::NodeJs.inline_filename("app.main"), "app.js");
        assert_eq!(Language::Custom.inline_filename("x.y"), "bootstrap");
    }
}
