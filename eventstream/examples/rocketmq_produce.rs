//! A test and benchmark tool: sends numbered JSON messages to a RocketMQ topic, with the
//! same client fgs consumes with.
//!
//! `rocketmq_produce --namesrv 127.0.0.1:9876 --topic T --count 10000 [--start 0]
//! [--tags TagA,TagB] [--batch 100] [--access-key AK --secret-key SK]`
//!
//! Message `i` has the body `{"i": i}`, the key `k<i>` and the `i mod n`-th of the `n` tags;
//! messages go in batches (each to one queue, in order). Prints `{"sent": N, "seconds": S}`.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use rocketmq_client_rust::{
    AclClientRPCHook, ClientRuntime, ClientRuntimeConfig, DefaultMQProducer, SessionCredentials,
};
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    namesrv: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// The number of the first message.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Tags, comma-separated, given to the messages in turn.
    #[arg(long, default_value = "TagA")]
    tags: String,
    /// Messages per send.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    #[arg(long, requires = "secret_key")]
    access_key: Option<String>,
    #[arg(long)]
    secret_key: Option<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let owner = RuntimeOwner::plan(RuntimeConfig::for_parallelism("produce", 2))?.build()?;
    let telemetry = rocketmq_observability::TelemetryRuntimeGuard::noop();
    let runtime: Arc<ClientRuntime> = ClientRuntime::try_new(
        owner.root_context().component("produce"),
        ClientRuntimeConfig::default(),
        telemetry.handle(),
    )?;
    owner.block_on(async move {
        let mut builder = DefaultMQProducer::builder(runtime)
            .producer_group("fgs_test_producer")
            .name_server_addr(args.namesrv.as_str());
        if let (Some(ak), Some(sk)) = (&args.access_key, &args.secret_key) {
            builder = builder.rpc_hook(Arc::new(AclClientRPCHook::new(
                SessionCredentials::with_keys(ak.as_str(), sk.as_str()),
            )));
        }
        let mut producer = builder.build();
        producer.start().await?;
        let tags: Vec<&str> = args.tags.split(',').collect();
        let began = Instant::now();
        let end = args.start + args.count;
        let mut i = args.start;
        while i < end {
            let upto = (i + args.batch.max(1)).min(end);
            let messages: Vec<Message> = (i..upto)
                .map(|n| {
                    Message::builder()
                        .topic(args.topic.as_str())
                        .tags(tags[(n % tags.len() as u64) as usize])
                        .key(format!("k{n}"))
                        .body_slice(format!("{{\"i\": {n}}}").as_bytes())
                        .build_unchecked()
                })
                .collect();
            producer.send_batch_with_timeout(messages, 10_000).await?;
            i = upto;
        }
        println!(
            "{{\"sent\": {}, \"seconds\": {:.3}}}",
            args.count,
            began.elapsed().as_secs_f64()
        );
        producer.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
