//! The `fgs` commands that talk to a running host through its public REST API, the calls the
//! SDK makes: `apply` (a manifest, idempotently, with a plan) and `invoke`. They speak plain
//! HTTP to `--endpoint` (a host with `--auth none`; request signing is not in the CLI yet).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use crate::manifest::{Desired, Manifest};

/// Where the host is and which project to act in.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The host's API (`http://HOST:PORT`).
    #[arg(long, env = "FGS_ENDPOINT", default_value = "http://127.0.0.1:8000")]
    pub endpoint: String,
    /// The project to act in (default: the manifest's `project:`, else `default`).
    #[arg(long, env = "FGS_PROJECT")]
    pub project: Option<String>,
}

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

#[derive(clap::Args)]
pub struct InvokeArgs {
    /// The function: `NAME`, `NAME:VERSION` or `NAME:!ALIAS`, or a URN.
    pub function: String,
    /// The event: JSON, or `@FILE`.
    #[arg(long, default_value = "{}")]
    pub data: String,
    #[command(flatten)]
    pub target: Target,
}

/// A host's API.
pub struct Client {
    address: String,
    host: String,
}

impl Client {
    pub fn new(endpoint: &str) -> anyhow::Result<Self> {
        let Some(rest) = endpoint.strip_prefix("http://") else {
            bail!("--endpoint {endpoint:?}: an http://HOST:PORT address");
        };
        let host = rest.trim_end_matches('/').to_string();
        if host.is_empty() || host.contains('/') {
            bail!("--endpoint {endpoint:?}: an http://HOST:PORT address");
        }
        let address = if host.contains(':') {
            host.clone()
        } else {
            format!("{host}:80")
        };
        Ok(Self { address, host })
    }

    /// One request; answers the status and the body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let stream = tokio::net::TcpStream::connect(&self.address)
            .await
            .with_context(|| format!("cannot reach fgs at http://{}", self.host))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", &self.host)
            .header("Content-Type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }

    /// A FunctionGraph call that must succeed: its JSON, or the FSS error as the message.
    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, bytes) = self
            .call(method, path, body.map(|b| b.to_string().into_bytes()), &[])
            .await?;
        if !status.is_success() {
            bail!("{}", fss_error(status, &bytes));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// `FSS.xxxx message` of an error answer (or the status and body when it is not one).
fn fss_error(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v["error_code"].is_string() => format!(
            "{} {} ({})",
            v["error_code"].as_str().unwrap_or_default(),
            v["error_msg"].as_str().unwrap_or_default(),
            status.as_u16()
        ),
        _ => format!(
            "HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(body)
        ),
    }
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
        && env(&current["user_data"]) == env(&d.body["user_data"]));
    let code = current["digest"].as_str() != Some(d.digest.as_str());
    if config || code {
        Step::Update { config, code }
    } else {
        Step::Unchanged
    }
}

/// `fgs invoke NAME --data JSON`: the function's result alone on stdout; request id and
/// duration on stderr; a function error exits 1 with the error on stderr.
pub async fn invoke(args: InvokeArgs) -> anyhow::Result<bool> {
    let client = Client::new(&args.target.endpoint)?;
    let project = args.target.project.unwrap_or_else(|| "default".into());
    let data = match args.data.strip_prefix('@') {
        Some(file) => std::fs::read(file).with_context(|| format!("--data @{file}"))?,
        None => args.data.into_bytes(),
    };
    serde_json::from_slice::<Value>(&data).context("--data is not JSON")?;
    let function = &args.function;
    let path = format!("/v2/{project}/fgs/functions/{function}/invocations");
    let (status, body) = client
        .call(
            Method::POST,
            &path,
            Some(data),
            &[("X-Cff-Request-Version", "v1")],
        )
        .await?;
    if !status.is_success() && status != StatusCode::INTERNAL_SERVER_ERROR {
        bail!("{}", fss_error(status, &body));
    }
    let answer: Value = serde_json::from_slice(&body).context("the answer is not JSON")?;
    if let Some(id) = answer["request_id"].as_str() {
        eprintln!("request id {id}");
    }
    let result = answer["result"].as_str().unwrap_or_default();
    if answer["status"].as_i64().unwrap_or(200) != 200 || !status.is_success() {
        eprintln!("function error: {result}");
        return Ok(false);
    }
    println!("{result}");
    Ok(true)
}
