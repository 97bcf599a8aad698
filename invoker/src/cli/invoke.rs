//! `fgs invoke`: one invocation, its result alone on stdout.

use anyhow::{bail, Context};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::{fss_error, Target};

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

/// The trigger events `--event-template` knows: FunctionGraph's documented example events.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Template {
    Apig,
    Timer,
    Kafka,
    Dis,
    Obs,
    Smn,
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
            Template::Obs => json!({
                "Records": [{
                    "eventVersion": "2.0",
                    "eventSource": "aws:s3",
                    "awsRegion": "cn-north-4",
                    "eventTime": "2018-01-09T07:50:50.028Z",
                    "eventName": "ObjectCreated:Put",
                    "userIdentity": {"principalId": "9bf43789b1ff4b679040f35cc4f0dc05"},
                    "requestParameters": {"sourceIPAddress": "103.218.216.125"},
                    "responseElements": {"x-amz-request-id": "4e788bb2744a49a1ab04148b47bf51dc",
                                         "x-amz-id-2": "s7A0rE7V5QL/mQEYrVUdcFPrBcb1wrieHbjrAs4Gy9J09f2uLOC9deJSIhmXKGET"},
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "UK1DGFPYUKUZFHNQ00000160CC0B471D101ED30CE24DF4DB",
                        "bucket": {"name": "functionstorage-template", "arn": "arn:aws:s3:::functionstorage-template",
                                   "ownerIdentity": {"PrincipalId": "0ed1b73473f24134a478962e631651eb"}},
                        "object": {"key": "job.png", "eTag": "9d377b10ce778c4938b3c7e2c63a229a", "size": 777835,
                                   "versionId": "null", "sequencer": "00000000160D9E681484D6B4C0000000"}
                    }
                }]
            }),
            Template::Smn => json!({
                "record": [{
                    "event_version": "1.0",
                    "smn": {
                        "topic_urn": "urn:smn:cn-north-4:0162c0f220284698b77a3d264376343a:smn-test",
                        "timestamp": "2018-01-09T07:11:40Z",
                        "message_attributes": null,
                        "message": "this is smn message content",
                        "type": "notification",
                        "message_id": "a51671f77d4a479cacb09e2cd591a983",
                        "subject": "this is smn message subject"
                    },
                    "event_subscription_urn": "urn:fss:cn-north-4:0162c0f220284698b77a3d264376343a:function:default:read-smn-message:latest",
                    "event_source": "smn"
                }],
                "functionname": "test",
                "requestId": "7c307f6a-cf68-4e65-8be0-4c77405a1b2c",
                "timestamp": "Wed Nov 15 2017 12:00:00 GMT+0800 (CST)"
            }),
        }
    }
}

/// `fgs invoke NAME --data JSON`: the function's result alone on stdout (so it pipes into
/// `jq`); request id and log tail on stderr; a function error exits 1 with the error on
/// stderr. `--async`: the request id on stdout.
pub async fn invoke(args: InvokeArgs) -> anyhow::Result<bool> {
    let client = args.target.client()?;
    let data = match (args.event_template, args.data.strip_prefix('@')) {
        (Some(template), _) => template.event().to_string().into_bytes(),
        (None, Some(file)) => std::fs::read(file).with_context(|| format!("--data @{file}"))?,
        (None, None) => args.data.clone().into_bytes(),
    };
    serde_json::from_slice::<Value>(&data).context("--data is not JSON")?;
    let root = args.target.function_path(&args.function);
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
