//! `fgs apply`: a manifest onto a host, as a plan of create / update / unchanged / delete.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hyper::Method;
use serde_json::Value;

use super::{Client, Target};
use crate::manifest::{Desired, Manifest};

#[derive(clap::Args)]
pub struct ApplyArgs {
    /// The manifest.
    #[arg(short = 'f', long = "file", default_value = "fgs.yaml")]
    pub file: PathBuf,
    /// Delete the project's functions the manifest does not name.
    #[arg(long)]
    pub prune: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: Target,
}

/// What apply does to one function.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Create,
    Update { config: bool, code: bool },
    Unchanged,
    Delete,
}

/// `fgs apply -f fgs.yaml`: prints the plan, then carries it out.
pub async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.file)?;
    let project = args
        .target
        .project
        .clone()
        .or(manifest.project.clone())
        .unwrap_or_else(|| "default".into());
    let client = Client::new(&args.target.endpoint)?;
    let say = |line: &str| println!("{line}");
    apply_manifest(
        &client,
        &project,
        &manifest,
        &base_of(&args.file),
        args.prune,
        args.dry_run,
        &say,
    )
    .await
}

fn base_of(file: &Path) -> PathBuf {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Plans and applies `manifest` to `project` (also `fgs serve --manifest`, against itself);
/// each line of the plan goes to `say`.
pub async fn apply_manifest(
    client: &Client,
    project: &str,
    manifest: &Manifest,
    base: &Path,
    prune: bool,
    dry_run: bool,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<()> {
    let desired = manifest.desired(base)?;
    let root = format!("/v2/{project}/fgs");
    let listed = client
        .json(Method::GET, &format!("{root}/functions?maxitems=400"), None)
        .await?;
    let existing: Vec<String> = listed["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["func_name"].as_str().map(str::to_string))
        .collect();
    let mut plan = Vec::new();
    for d in &desired {
        let step = if existing.contains(&d.name) {
            let current = client
                .json(
                    Method::GET,
                    &format!("{root}/functions/{}/config", d.name),
                    None,
                )
                .await?;
            compare(d, &current)
        } else {
            Step::Create
        };
        plan.push((d.name.clone(), step));
    }
    if prune {
        for name in existing
            .iter()
            .filter(|n| !desired.iter().any(|d| &d.name == *n))
        {
            plan.push((name.clone(), Step::Delete));
        }
    }
    for (name, step) in &plan {
        let line = match step {
            Step::Create => format!("create    function {name}"),
            Step::Update { config, code } => format!(
                "update    function {name} ({})",
                [(*config, "config"), (*code, "code")]
                    .iter()
                    .filter(|(c, _)| *c)
                    .map(|(_, w)| *w)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Step::Unchanged => format!("unchanged function {name}"),
            Step::Delete => format!("delete    function {name}"),
        };
        say(&line);
    }
    if dry_run {
        return Ok(());
    }
    for (name, step) in plan {
        let d = desired.iter().find(|d| d.name == name);
        let urn = format!("{root}/functions/{name}");
        match (step, d) {
            (Step::Create, Some(d)) => {
                client
                    .json(Method::POST, &format!("{root}/functions"), Some(&d.body))
                    .await
                    .with_context(|| format!("creating function {name}"))?;
            }
            (Step::Update { config, code }, Some(d)) => {
                // Each call takes its own fields only: the host refuses fields it does not know.
                let pick = |keys: &[&str]| -> Value {
                    keys.iter()
                        .filter(|k| !d.body[**k].is_null())
                        .map(|k| (k.to_string(), d.body[*k].clone()))
                        .collect::<serde_json::Map<_, _>>()
                        .into()
                };
                if code {
                    let body = pick(&["code_type", "code_filename", "func_code"]);
                    client
                        .json(Method::PUT, &format!("{urn}/code"), Some(&body))
                        .await
                        .with_context(|| format!("updating the code of {name}"))?;
                }
                if config {
                    let body = pick(&[
                        "func_name",
                        "runtime",
                        "handler",
                        "memory_size",
                        "timeout",
                        "user_data",
                        "description",
                        "initializer_handler",
                        "initializer_timeout",
                    ]);
                    client
                        .json(Method::PUT, &format!("{urn}/config"), Some(&body))
                        .await
                        .with_context(|| format!("updating the configuration of {name}"))?;
                }
            }
            (Step::Delete, _) => {
                client
                    .json(Method::DELETE, &urn, None)
                    .await
                    .with_context(|| format!("deleting function {name}"))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// What differs between a desired function and its configuration on the host.
fn compare(d: &Desired, current: &Value) -> Step {
    let same = |k: &str| current[k] == d.body[k];
    let env = |v: &Value| -> Value {
        serde_json::from_str(v.as_str().unwrap_or("{}")).unwrap_or(Value::Null)
    };
    let config = !(same("runtime")
        && same("handler")
        && same("memory_size")
        && same("timeout")
        && current["description"].as_str().unwrap_or("")
            == d.body["description"].as_str().unwrap_or("")
        && current["initializer_handler"].as_str().unwrap_or("")
            == d.body["initializer_handler"].as_str().unwrap_or("")
        && (d.body["initializer_handler"].is_null() || same("initializer_timeout"))
        && env(&current["user_data"]) == env(&d.body["user_data"]));
    let code = current["digest"].as_str() != Some(d.digest.as_str());
    if config || code {
        Step::Update { config, code }
    } else {
        Step::Unchanged
    }
}
