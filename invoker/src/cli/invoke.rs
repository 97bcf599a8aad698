//! `fgs invoke`: one invocation, its result alone on stdout.

use anyhow::{bail, Context};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::{fss_error, Client, Target};

#[derive(clap::Args)]
pub struct InvokeArgs {
    /// The function: `NAME`, `NAME:VERSION` or `NAME:!ALIAS`, or a URN.
    pub function: String,
    /// The event: JSON, or `@FILE`.
    #[arg(long, default_value = "{}")]
    pub data: String,
    /// A trigger's documented event instead of --data (research notes §6).
    #[arg(long, value_enum, conflicts_with = "data")]
    pub event_template: Option<Template>,
    /// Invoke asynchronously: the request id on stdout.
    #[arg(long = "async")]
    pub asynchronous: bool,
    /// Print the tail of the invocation's log on stderr.
    #[arg(long)]
    pub log: bool,
    #[command(flatten)]
    pub target: Target,
}

/// The trigger events `--event-template` knows (OBS and SMN: not yet).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Template {
    Apig,
    Timer,
    Kafka,
    Dis,
}

impl Template {
    fn event(self) -> Value {
        match self {
            Template::Apig => json!({
                "body": "eyJ0ZXN0IjoiYm9keSJ9",
                "requestContext": {"apiId": "bc1dcffd-aa35-474d-897c-d53425a4c08e",
                                   "requestId": "11cdcdcf33949dc6d722640a13091c77", "stage": "RELEASE"},
                "queryStringParameters": {"responseType": "html"},
                "httpMethod": "GET",
                "pathParameters": {"path": "value"},
                "headers": {"x-forwarded-for": "103.218.216.98", "host": "localhost",
                            "user-agent": "fgs", "x-real-ip": "103.218.216.98"},
                "path": "/apig-event-template",
                "isBase64Encoded": true
            }),
            Template::Timer => json!({
                "version": "v1.0", "time": "2018-06-01T08:30:00+08:00", "trigger_type": "TIMER",
                "trigger_name": "Timer_001", "user_event": "Additional information you entered"
            }),
            Template::Kafka => json!({
                "event_version": "v1.0", "event_time": 1576737962, "trigger_type": "KAFKA",
                "region": "cn-north-4", "instance_id": "81335d56-b9fe-4679-ba95-7030949cc76b",
                "records": [{"messages": ["kafka message1", "kafka message2", "kafka message3"],
                             "topic_id": "topic-test"}]
            }),
            Template::Dis => json!({
                "ShardID": "shardId-0000000000",
                "Message": {
                    "next_partition_cursor": "eyJnZXRJdGVyYXRvclBhcmFtIjp7fX0",
                    "records": [
                        {"partition_key": "shardId_0000000000", "data": "d2VsY29tZQ==", "sequence_number": "0"},
                        {"partition_key": "shardId_0000000000", "data": "dXNpbmc=", "sequence_number": "1"}
                    ],
                    "millis_behind_latest": ""
                },
                "Tag": "latest",
                "StreamName": "dis-swtest"
            }),
        }
    }
}

/// `fgs invoke NAME --data JSON`: the function's result alone on stdout (so it pipes into
/// `jq`); request id and log tail on stderr; a function error exits 1 with the error on
/// stderr. `--async`: the request id on stdout.
pub async fn invoke(args: InvokeArgs) -> anyhow::Result<bool> {
    let client = Client::new(&args.target.endpoint)?;
    let project = args.target.project();
    let data = match (args.event_template, args.data.strip_prefix('@')) {
        (Some(template), _) => template.event().to_string().into_bytes(),
        (None, Some(file)) => std::fs::read(file).with_context(|| format!("--data @{file}"))?,
        (None, None) => args.data.clone().into_bytes(),
    };
    serde_json::from_slice::<Value>(&data).context("--data is not JSON")?;
    let root = format!("/v2/{project}/fgs/functions/{}", args.function);
    if args.asynchronous {
        let (status, body) = client
            .call(
                Method::POST,
                &format!("{root}/invocations-async"),
                Some(data),
                &[],
            )
            .await?;
        if !status.is_success() {
            bail!("{}", fss_error(status, &body));
        }
        let answer: Value = serde_json::from_slice(&body).context("the answer is not JSON")?;
        println!("{}", answer["request_id"].as_str().unwrap_or_default());
        return Ok(true);
    }
    let mut headers = vec![("X-Cff-Request-Version", "v1")];
    if args.log {
        headers.push(("X-Cff-Log-Type", "tail"));
    }
    let (status, response_headers, body) = client
        .call_with_headers(
            Method::POST,
            &format!("{root}/invocations"),
            Some(data),
            &headers,
        )
        .await?;
    if !status.is_success() && status != StatusCode::INTERNAL_SERVER_ERROR {
        bail!("{}", fss_error(status, &body));
    }
    let answer: Value = serde_json::from_slice(&body).context("the answer is not JSON")?;
    // The invoke summary (FunctionGraph's header) says how long the function ran.
    let duration = response_headers
        .get("X-Cff-Invoke-Summary")
        .and_then(|v| serde_json::from_slice::<Value>(v.as_bytes()).ok())
        .and_then(|s| s["duration"].as_f64());
    if let Some(id) = answer["request_id"].as_str() {
        match duration {
            Some(ms) => eprintln!("request id {id}, duration {ms:.3} ms"),
            None => eprintln!("request id {id}"),
        }
    }
    if let Some(log) = answer["log"].as_str().filter(|l| !l.is_empty()) {
        eprint!("{log}");
        if !log.ends_with('\n') {
            eprintln!();
        }
    }
    let result = answer["result"].as_str().unwrap_or_default();
    if answer["status"].as_i64().unwrap_or(200) != 200 || !status.is_success() {
        eprintln!("function error: {result}");
        return Ok(false);
    }
    println!("{result}");
    Ok(true)
}
