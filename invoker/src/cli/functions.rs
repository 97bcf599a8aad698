//! `fgs functions list|show|delete`, `fgs deploy DIR` and `fgs streams list|show`.

use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use hyper::Method;
use serde_json::{json, Value};

use super::{Output, Target};
use crate::manifest::{package_with, Packing};

/// Code from this size on gets a progress bar (zipping) and a spinner (uploading).
const PROGRESS_FROM: u64 = 4 * 1024 * 1024;

#[derive(clap::Args)]
pub struct FunctionsArgs {
    #[command(subcommand)]
    pub command: FunctionsCommand,
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Subcommand)]
pub enum FunctionsCommand {
    /// The project's functions.
    List,
    /// One function's configuration.
    Show { name: String },
    /// Delete a function (all its versions).
    Delete { name: String },
}

#[derive(clap::Args)]
pub struct StreamsArgs {
    #[command(subcommand)]
    pub command: StreamsCommand,
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Subcommand)]
pub enum StreamsCommand {
    /// The project's event streams.
    List,
    /// One event stream, by id.
    Show { id: String },
}

#[derive(clap::Args)]
pub struct DeployArgs {
    /// The code: a directory (zipped) or a .zip file.
    pub dir: PathBuf,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub runtime: String,
    #[arg(long)]
    pub handler: String,
    #[arg(long, default_value_t = 128)]
    pub memory: i64,
    #[arg(long, default_value_t = 3)]
    pub timeout: i64,
    #[command(flatten)]
    pub target: Target,
}

/// Prints rows under a header, columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A listing: as JSON, or a table of the `keys` of each item under `header`.
fn print_list(items: &Value, output: Output, header: &[&str], keys: &[&str]) {
    let items = items.as_array().cloned().unwrap_or_default();
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&items).expect("JSON prints")
        ),
        Output::Table => {
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|item| keys.iter().map(|k| text(&item[*k])).collect())
                .collect();
            table(header, &rows);
        }
    }
}

fn print_object(v: &Value, output: Output) {
    match (output, v.as_object()) {
        (Output::Table, Some(map)) => {
            let rows: Vec<Vec<String>> = map
                .iter()
                .filter(|(k, _)| *k != "func_code")
                .map(|(k, v)| vec![k.clone(), text(v)])
                .collect();
            table(&["FIELD", "VALUE"], &rows);
        }
        _ => println!("{}", serde_json::to_string_pretty(v).expect("JSON prints")),
    }
}

pub async fn functions(args: FunctionsArgs) -> anyhow::Result<bool> {
    let client = args.target.client()?;
    let root = format!("/v2/{}/fgs/functions", args.target.project());
    match args.command {
        FunctionsCommand::List => {
            let listed = client
                .json(Method::GET, &format!("{root}?maxitems=400"), None)
                .await?;
            let functions = listed["functions"].as_array().cloned().unwrap_or_default();
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&functions)?),
                Output::Table => {
                    let rows: Vec<Vec<String>> = functions
                        .iter()
                        .map(|f| {
                            [
                                "func_name",
                                "runtime",
                                "memory_size",
                                "timeout",
                                "last_modified",
                            ]
                            .iter()
                            .map(|k| text(&f[*k]))
                            .collect()
                        })
                        .collect();
                    table(&["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "MODIFIED"], &rows);
                }
            }
        }
        FunctionsCommand::Show { name } => {
            let config = client
                .json(Method::GET, &format!("{root}/{name}/config"), None)
                .await?;
            print_object(&config, args.output);
        }
        FunctionsCommand::Delete { name } => {
            client
                .json(Method::DELETE, &format!("{root}/{name}"), None)
                .await?;
            eprintln!("deleted function {name}");
        }
    }
    Ok(true)
}

pub async fn streams(args: StreamsArgs) -> anyhow::Result<bool> {
    let client = args.target.client()?;
    let root = format!("/v1/{}/eventstreamings", args.target.project());
    match args.command {
        StreamsCommand::List => {
            let listed = client
                .json(Method::GET, &format!("{root}?limit=1000"), None)
                .await?;
            print_list(
                &listed["items"],
                args.output,
                &["ID", "NAME", "STATUS", "UPDATED"],
                &["id", "name", "status", "updated_time"],
            );
        }
        StreamsCommand::Show { id } => {
            let stream = client
                .json(Method::GET, &format!("{root}/{id}"), None)
                .await?;
            print_object(&stream, args.output);
        }
    }
    Ok(true)
}

/// `fgs deploy DIR --name --runtime --handler`: creates the function, or updates its code
/// (and memory, timeout, runtime, handler) when it exists.
pub async fn deploy(args: DeployArgs) -> anyhow::Result<bool> {
    let client = args.target.client()?;
    let root = format!("/v2/{}/fgs/functions", args.target.project());
    let bar = indicatif::ProgressBar::hidden();
    let zip = package_with(&args.dir, &mut |step| match step {
        // Only a package worth waiting for gets a bar (and only on a terminal: indicatif
        // draws nothing to a pipe).
        Packing::Total(bytes) if bytes >= PROGRESS_FROM => {
            bar.set_length(bytes);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "zipping {bar:30} {binary_bytes}/{binary_total_bytes} {eta}",
                )
                .expect("a valid template"),
            );
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        Packing::Total(_) => {}
        Packing::Zipped(bytes) => bar.inc(bytes),
    })
    .with_context(|| format!("{}", args.dir.display()))?;
    bar.finish_and_clear();
    let upload = (zip.len() as u64 >= PROGRESS_FROM).then(|| {
        let spinner = indicatif::ProgressBar::new_spinner()
            .with_message(format!("uploading {} KB", zip.len() / 1024));
        spinner.enable_steady_tick(std::time::Duration::from_millis(100));
        spinner
    });
    let code = json!({
        "code_type": "zip",
        "code_filename": format!("{}.zip", args.name),
        "func_code": {"file": base64::engine::general_purpose::STANDARD.encode(&zip)},
    });
    let config = json!({
        "func_name": args.name,
        "runtime": args.runtime,
        "handler": args.handler,
        "memory_size": args.memory,
        "timeout": args.timeout,
    });
    let (status, _) = client
        .call(
            Method::GET,
            &format!("{root}/{}/config", args.name),
            None,
            &[],
        )
        .await?;
    let done = if status.is_success() {
        client
            .json(
                Method::PUT,
                &format!("{root}/{}/code", args.name),
                Some(&code),
            )
            .await?;
        client
            .json(
                Method::PUT,
                &format!("{root}/{}/config", args.name),
                Some(&config),
            )
            .await?;
        "updated"
    } else {
        let mut body = config;
        body["package"] = json!("default");
        for (k, v) in code.as_object().expect("an object") {
            body[k] = v.clone();
        }
        client.json(Method::POST, &root, Some(&body)).await?;
        "created"
    };
    if let Some(spinner) = upload {
        spinner.finish_and_clear();
    }
    eprintln!(
        "{done} function {} ({} bytes of code)",
        args.name,
        zip.len()
    );
    Ok(true)
}
