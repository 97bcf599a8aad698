//! `fgs apply`: a manifest onto a host, as a plan of create / update / unchanged / delete.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hyper::Method;
use serde_json::Value;

use super::{apply_streams, Client, Target};
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
}

/// One line of the plan and the API calls that carry it out (none when unchanged).
pub(super) struct Action {
    line: String,
    calls: Vec<Call>,
}

pub(super) enum Call {
    Http {
        method: Method,
        path: String,
        body: Option<Value>,
    },
    /// Starts the event stream the call before made (its id is in that call's answer).
    StartCreated { root: String },
}

impl Action {
    pub(super) fn new(verb: &str, what: String, calls: Vec<Call>) -> Self {
        Action {
            line: format!("{verb:<9} {what}"),
            calls,
        }
    }
}

pub(super) fn call(method: Method, path: String, body: Option<Value>) -> Call {
    Call::Http { method, path, body }
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
    let client = args.target.client()?;
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
/// each line of the plan goes to `say`. DIS streams first (DIS triggers read them); per
/// function: the function, then its versions (so an alias can point to a new one), aliases and
/// triggers; then event streams (they deliver to functions). With `prune`, what the manifest
/// no longer names goes last: triggers, aliases, versions, event streams, whole functions,
/// DIS streams.
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
    let (mut plan, dis_pruned) = apply_streams::plan_dis_streams(client, project, manifest).await?;
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
    let mut pruned = Vec::new();
    for d in &desired {
        let exists = existing.contains(&d.name);
        let step = if exists {
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
        plan.push(function_action(&root, d, step));
        let host = if exists {
            Resources::fetch(client, &root, &d.name, d.spec).await?
        } else {
            Resources::default()
        };
        plan_resources(project, d, host, &mut plan, &mut pruned);
    }
    let (mut streams, mut streams_pruned) =
        apply_streams::plan_event_streams(client, project, manifest).await?;
    plan.append(&mut streams);
    if prune {
        plan.append(&mut pruned);
        plan.append(&mut streams_pruned);
        for name in existing
            .iter()
            .filter(|n| !desired.iter().any(|d| &d.name == *n))
        {
            plan.push(Action::new(
                "delete",
                format!("function {name}"),
                vec![call(
                    Method::DELETE,
                    format!("{root}/functions/{name}"),
                    None,
                )],
            ));
        }
        plan.extend(dis_pruned);
    }
    for action in &plan {
        say(&action.line);
    }
    if dry_run {
        return Ok(());
    }
    for action in plan {
        let mut answer = Value::Null;
        for c in action.calls {
            let (method, path, body) = match c {
                Call::Http { method, path, body } => (method, path, body),
                Call::StartCreated { root } => {
                    let id = answer["eventStreamingID"].as_str().unwrap_or_default();
                    let body = serde_json::json!({"operation": "START"});
                    (Method::POST, format!("{root}/operate/{id}"), Some(body))
                }
            };
            answer = client
                .json(method, &path, body.as_ref())
                .await
                .with_context(|| action.line.split_whitespace().collect::<Vec<_>>().join(" "))?;
        }
    }
    Ok(())
}

/// The create or update calls of a function.
fn function_action(root: &str, d: &Desired, step: Step) -> Action {
    let name = &d.name;
    let urn = format!("{root}/functions/{name}");
    // Each call takes its own fields only: the host refuses fields it does not know.
    let pick = |keys: &[&str]| -> Value {
        keys.iter()
            .filter(|k| !d.body[**k].is_null())
            .map(|k| (k.to_string(), d.body[*k].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    match step {
        Step::Create => Action::new(
            "create",
            format!("function {name}"),
            vec![call(
                Method::POST,
                format!("{root}/functions"),
                Some(d.body.clone()),
            )],
        ),
        Step::Unchanged => Action::new("unchanged", format!("function {name}"), vec![]),
        Step::Update { config, code } => {
            let mut calls = Vec::new();
            if code {
                let body = pick(&["code_type", "code_filename", "func_code"]);
                calls.push(call(Method::PUT, format!("{urn}/code"), Some(body)));
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
                calls.push(call(Method::PUT, format!("{urn}/config"), Some(body)));
            }
            let what: Vec<&str> = [(config, "config"), (code, "code")]
                .iter()
                .filter(|(c, _)| *c)
                .map(|(_, w)| *w)
                .collect();
            Action::new(
                "update",
                format!("function {name} ({})", what.join(", ")),
                calls,
            )
        }
    }
}

/// A function's published versions, aliases and triggers on the host (only the kinds its
/// manifest entry manages are fetched).
#[derive(Default)]
struct Resources {
    versions: Vec<String>,
    aliases: Vec<Value>,
    triggers: Vec<Value>,
}

impl Resources {
    async fn fetch(
        client: &Client,
        root: &str,
        name: &str,
        spec: &crate::manifest::Function,
    ) -> anyhow::Result<Self> {
        let mut host = Resources::default();
        let urn = format!("{root}/functions/{name}");
        if spec.versions.is_some() {
            let listed = client
                .json(Method::GET, &format!("{urn}/versions?maxitems=400"), None)
                .await?;
            host.versions = listed["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["version"].as_str())
                .filter(|v| *v != "latest")
                .map(str::to_string)
                .collect();
        }
        let array = |v: Value| v.as_array().cloned().unwrap_or_default();
        if spec.aliases.is_some() {
            host.aliases = array(
                client
                    .json(Method::GET, &format!("{urn}/aliases"), None)
                    .await?,
            );
        }
        if spec.triggers.is_some() {
            host.triggers = array(
                client
                    .json(Method::GET, &format!("{root}/triggers/{name}"), None)
                    .await?,
            );
        }
        Ok(host)
    }
}

/// The actions that bring a function's versions, aliases and triggers to the manifest's;
/// deletions (of what the manifest no longer names) go to `pruned`.
fn plan_resources(
    project: &str,
    d: &Desired,
    host: Resources,
    plan: &mut Vec<Action>,
    pruned: &mut Vec<Action>,
) {
    let name = &d.name;
    let root = &format!("/v2/{project}/fgs");
    let urn = format!("{root}/functions/{name}");
    let mut deletions = Vec::new();
    if let Some(versions) = &d.spec.versions {
        for v in versions {
            if host.versions.contains(v) {
                plan.push(Action::new(
                    "unchanged",
                    format!("version {name}:{v}"),
                    vec![],
                ));
            } else {
                let body = serde_json::json!({"version": v});
                plan.push(Action::new(
                    "create",
                    format!("version {name}:{v}"),
                    vec![call(Method::POST, format!("{urn}/versions"), Some(body))],
                ));
            }
        }
        for v in host.versions.iter().filter(|v| !versions.contains(v)) {
            deletions.push(Action::new(
                "delete",
                format!("version {name}:{v}"),
                // (`name:v` alone would read as package `name`, function `v`.)
                vec![call(
                    Method::DELETE,
                    format!("{root}/functions/{project}:default:{name}:{v}"),
                    None,
                )],
            ));
        }
    }
    if let Some(aliases) = &d.spec.aliases {
        for (alias, spec) in aliases {
            let body = serde_json::json!({
                "name": alias,
                "version": spec.version,
                "description": spec.description.clone().unwrap_or_default(),
                "additional_version_weights": spec.weights,
            });
            let current = host.aliases.iter().find(|a| a["name"] == *alias);
            let action = match current {
                None => Action::new(
                    "create",
                    format!("alias {name}:{alias}"),
                    vec![call(Method::POST, format!("{urn}/aliases"), Some(body))],
                ),
                Some(a) if same_alias(a, &body) => {
                    Action::new("unchanged", format!("alias {name}:{alias}"), vec![])
                }
                Some(_) => Action::new(
                    "update",
                    format!("alias {name}:{alias}"),
                    vec![call(
                        Method::PUT,
                        format!("{urn}/aliases/{alias}"),
                        Some(body),
                    )],
                ),
            };
            plan.push(action);
        }
        for a in &host.aliases {
            let alias = a["name"].as_str().unwrap_or_default();
            if !aliases.contains_key(alias) {
                deletions.push(Action::new(
                    "delete",
                    format!("alias {name}:{alias}"),
                    vec![call(Method::DELETE, format!("{urn}/aliases/{alias}"), None)],
                ));
            }
        }
    }
    if let Some(triggers) = &d.spec.triggers {
        let mut unmatched: Vec<&Value> = host.triggers.iter().collect();
        for t in triggers {
            let label = format!("trigger {name} {}", t.kind);
            let found = unmatched.iter().position(|h| same_trigger(h, t));
            let action = match found.map(|i| unmatched.remove(i)) {
                None => {
                    let mut body = serde_json::json!({
                        "trigger_type_code": t.kind,
                        "trigger_status": t.status,
                        "event_data": t.event,
                    });
                    if let Some(code) = &t.event_type_code {
                        body["event_type_code"] = code.clone().into();
                    }
                    Action::new(
                        "create",
                        label,
                        vec![call(
                            Method::POST,
                            format!("{root}/triggers/{name}"),
                            Some(body),
                        )],
                    )
                }
                Some(h) if h["trigger_status"] == *t.status => {
                    Action::new("unchanged", label, vec![])
                }
                Some(h) => {
                    let body = serde_json::json!({"trigger_status": t.status});
                    Action::new(
                        "update",
                        format!("{label} ({})", t.status),
                        vec![call(Method::PUT, trigger_path(root, name, h), Some(body))],
                    )
                }
            };
            plan.push(action);
        }
        // Triggers go before the aliases and versions they may be attached to.
        let mut trigger_deletions: Vec<Action> = unmatched
            .into_iter()
            .map(|h| {
                Action::new(
                    "delete",
                    format!(
                        "trigger {name} {} {}",
                        h["trigger_type_code"].as_str().unwrap_or_default(),
                        h["trigger_id"].as_str().unwrap_or_default()
                    ),
                    vec![call(Method::DELETE, trigger_path(root, name, h), None)],
                )
            })
            .collect();
        pruned.append(&mut trigger_deletions);
    }
    // Aliases go before the versions they point to.
    deletions.reverse();
    pruned.append(&mut deletions);
}

fn trigger_path(root: &str, name: &str, host: &Value) -> String {
    format!(
        "{root}/triggers/{name}/{}/{}",
        host["trigger_type_code"].as_str().unwrap_or_default(),
        host["trigger_id"].as_str().unwrap_or_default()
    )
}

/// Whether the host's alias points where the manifest's does.
fn same_alias(host: &Value, desired: &Value) -> bool {
    let weights = |v: &Value| v.as_object().cloned().unwrap_or_default();
    host["version"] == desired["version"]
        && host["description"].as_str().unwrap_or("")
            == desired["description"].as_str().unwrap_or("")
        && weights(&host["additional_version_weights"])
            == weights(&desired["additional_version_weights"])
}

/// Whether the host's trigger is the manifest's (its status aside): the same type, and each
/// field of the manifest's event as the host has it. A field the host does not show (a
/// password) counts as the same: a change to it alone is not seen.
fn same_trigger(host: &Value, t: &crate::manifest::TriggerSpec) -> bool {
    host["trigger_type_code"] == *t.kind
        && t.event
            .iter()
            .all(|(k, v)| host["event_data"].get(k).is_none_or(|h| h == v))
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
