//! `fgs logs NAME [--follow] [--since 10m] [--request-id ID]`: a function's invocation logs
//! through `GET /v2/{project_id}/fgs/functions/{function_urn}/logs`.

use anyhow::{bail, Context};
use hyper::Method;
use serde_json::Value;

use super::{Output, Target};

#[derive(clap::Args)]
pub struct LogsArgs {
    /// The function: `NAME`, `NAME:VERSION` or `NAME:!ALIAS` (that version's logs), or a URN.
    pub function: String,
    /// Keep printing new logs as invocations finish (until interrupted).
    #[arg(long, short)]
    pub follow: bool,
    /// Only invocations that started since then: a duration back from now (`10m`, `2h`) or
    /// an RFC 3339 time.
    #[arg(long, value_parser = parse_since)]
    pub since: Option<i64>,
    /// Only this invocation's log.
    #[arg(long)]
    pub request_id: Option<String>,
    /// The newest this many logs (at most 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// `table` prints the logs as the function wrote them, framed by the start and finish
    /// lines; `json` one JSON object per invocation and line.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub target: Target,
}

/// A `--since` value as ms since the epoch.
fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    let back = humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is neither a duration (10m) nor an RFC 3339 time: {e}"))?;
    Ok(chrono::Utc::now().timestamp_millis() - back.as_millis() as i64)
}

/// Prints the logs asked for; with `--follow` keeps waiting for new ones.
pub async fn logs(args: LogsArgs) -> anyhow::Result<bool> {
    let client = args.target.client()?;
    let root = format!("{}/logs", args.target.function_path(&args.function));
    let mut filters = vec![format!("limit={}", args.limit)];
    if let Some(since) = args.since {
        filters.push(format!("since={since}"));
    }
    if let Some(id) = &args.request_id {
        filters.push(format!(
            "request_id={}",
            form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        ));
    }
    let mut marker: Option<i64> = None;
    loop {
        let mut query = filters.clone();
        if let Some(m) = marker {
            // Followers wait on the host for the next log rather than polling.
            query.extend([format!("marker={m}"), "wait=20".into()]);
        }
        let answer = client
            .json(Method::GET, &format!("{root}?{}", query.join("&")), None)
            .await?;
        let Some(logs) = answer["logs"].as_array() else {
            bail!("the answer has no logs: {answer}");
        };
        for log in logs {
            print(args.output, log)?;
        }
        if !args.follow {
            return Ok(true);
        }
        marker = Some(
            answer["next_marker"]
                .as_i64()
                .context("the answer has no next_marker")?,
        );
    }
}

fn print(output: Output, log: &Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => writeln!(out, "{log}")?,
        Output::Table => write!(out, "{}", log["log"].as_str().unwrap_or_default())?,
    }
    // A follower's reader (a pipe into grep) sees each log as it comes.
    out.flush()?;
    Ok(())
}
