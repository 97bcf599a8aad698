//! `fgs serve --manifest fgs.yaml --watch`: hot reload. The manifest's directory is watched
//! (inotify, through `notify`); a burst of saves is gathered for `DEBOUNCE`, then the
//! manifest is applied again, which packages every function's code and updates only the
//! functions whose code or configuration changed (the host retires their warm instances, so
//! the next invocation runs the new code). Each change is logged in one line; a manifest
//! that no longer parses is logged and the host keeps serving what it has.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::cli::{apply_manifest, Client};
use crate::manifest::Manifest;

/// How long after a change more changes are waited for before applying.
const DEBOUNCE: Duration = Duration::from_millis(30);

/// Watches `manifest`'s directory until the host stops.
pub fn spawn(manifest: PathBuf, base: PathBuf, project: String, api: String) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = tx.send(event.paths);
            }
        }
    })?;
    watcher.watch(&base, RecursiveMode::Recursive)?;
    tracing::info!(dir = %base.display(), "watching for changes (hot reload)");
    tokio::spawn(async move {
        let _watcher = watcher; // dropped, and the watch ends, with the task
        let client = match Client::signed(&api, crate::cli::env_credentials()) {
            Ok(c) => c,
            Err(e) => return tracing::error!(error = %e, "hot reload"),
        };
        while let Some(first) = rx.recv().await {
            let started = Instant::now();
            let mut paths = first;
            // Gather the rest of a burst (an editor writes, renames and touches).
            while let Ok(Some(more)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                paths.extend(more);
            }
            if paths.iter().all(|p| ignored(p)) {
                continue;
            }
            reload(&client, &manifest, &base, &project, started).await;
        }
    });
    Ok(())
}

/// Editor droppings that are not code.
fn ignored(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || path.components().any(|c| c.as_os_str() == "__pycache__")
}

async fn reload(client: &Client, path: &Path, base: &Path, project: &str, started: Instant) {
    let manifest = match Manifest::load(path) {
        Ok(m) => m,
        Err(e) => {
            return tracing::warn!(error = %e, "hot reload: the manifest does not parse; keeping what runs")
        }
    };
    let changed = std::sync::Mutex::new(Vec::new());
    let say = |line: &str| {
        if !line.starts_with("unchanged") {
            changed
                .lock()
                .unwrap()
                .push(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    };
    match apply_manifest(client, project, &manifest, base, false, false, &say).await {
        Ok(()) => {
            let changed = changed.into_inner().unwrap();
            if !changed.is_empty() {
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    "hot reload: {}",
                    changed.join("; ")
                );
            }
        }
        Err(e) => tracing::warn!(
            error = format!("{e:#}"),
            "hot reload failed; keeping what runs"
        ),
    }
}
