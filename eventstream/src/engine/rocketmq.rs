//! The RocketMQ source of a running stream, one for EventGrid's three flavours (community,
//! DMS and mobile RocketMQ, read into [`RocketMqSettings`]).
//!
//! It is a lite pull consumer of rocketmq-rust's client (`rocketmq-client-rust`) in the
//! stream's group, subscribed to its topic with its tag expression, in CLUSTERING (the
//! group's members share the queues; offsets on the broker) or BROADCASTING (every member
//! reads every message; offsets in the host's data dir) mode. Auto-commit is off: the
//! consumption commits the offsets of delivered batches only ([`Source::commit`]), persisted
//! to the broker at once, so a host killed at any moment delivers a batch again but never
//! skips one. A group new to the topic starts at the first message.
//!
//! The client runs on a runtime of its own (rocketmq-rust's `RuntimeOwner`, two workers),
//! made when the host starts its first RocketMQ stream. Each consumer is a client instance
//! named after its stream (`fgs-<stream id>`), so two streams of one group are two members;
//! a new start of a stream waits until the consumer of its previous start has shut down.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use prometheus::IntGauge;
use rocketmq_client_rust::{
    AclClientRPCHook, ClientRuntime, ClientRuntimeConfig, DefaultLitePullConsumer,
    SessionCredentials,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::STRING_HASH_SET;
use rocketmq_model::message::MessageQueue;
use rocketmq_protocol::protocol::heartbeat::message_model::MessageModel;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use serde_json::{Map, Value};
use tokio::sync::OwnedMutexGuard;

use super::envelope::{Record, RocketMqFacts};
use super::source::{Source, SourceFuture};
use crate::definition::RocketMqSettings;

/// How long one poll waits for messages before it asks again.
const POLL_TIMEOUT_MS: u64 = 1000;
/// Messages a pull asks a broker for (the client's default is 10). A broker answers at most
/// its `maxTransferCountOnMessageInMemory` (32 by default) from memory; one that allows more
/// serves a busy stream with fewer pulls.
const PULL_BATCH: i32 = 128;
/// How often a consumer that polls nothing checks that the topic's route can be read (a
/// name server or broker down is the stream's ERROR).
const ROUTE_CHECK: Duration = Duration::from_secs(5);
/// How often the lag gauge is refreshed.
const LAG_INTERVAL: Duration = Duration::from_secs(1);

/// Where the RocketMQ client keeps BROADCASTING offsets (an environment variable the host sets
/// to a directory of its data dir before it starts threads).
pub const LOCAL_OFFSETS_DIR: &str = "rocketmq.client.localOffsetStoreDir";

/// The host's name: the client id's first part (with the stream's instance name), stable over
/// restarts, so a BROADCASTING consumer finds its offsets again. (The client's own choice, an
/// address of the machine, changes with the interfaces up when the host starts.)
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The host's RocketMQ client runtime, made at the first use and kept for the process.
struct Client {
    _owner: RuntimeOwner,
    runtime: Arc<ClientRuntime>,
}

static CLIENT: OnceLock<Result<Client, String>> = OnceLock::new();

fn client_runtime() -> Result<Arc<ClientRuntime>, String> {
    let client = CLIENT.get_or_init(|| {
        let owner = RuntimeOwner::plan(RuntimeConfig::for_parallelism("fgs-rocketmq", 2))
            .map_err(|e| format!("RocketMQ client runtime: {e}"))?
            .build()
            .map_err(|e| format!("RocketMQ client runtime: {e}"))?;
        let telemetry = rocketmq_observability::TelemetryRuntimeGuard::noop();
        let runtime = ClientRuntime::try_new(
            owner.root_context().component("fgs-eventstream"),
            ClientRuntimeConfig::default(),
            telemetry.handle(),
        )
        .map_err(|e| format!("RocketMQ client runtime: {e}"))?;
        Ok(Client {
            _owner: owner,
            runtime,
        })
    });
    client
        .as_ref()
        .map(|c| c.runtime.clone())
        .map_err(Clone::clone)
}

/// One lease per client instance name: held by a consumer until it has shut down, so the
/// next start of its stream does not meet it in the group.
static LEASES: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

async fn lease(instance: &str) -> OwnedMutexGuard<()> {
    let lock = LEASES
        .lock()
        .unwrap()
        .entry(instance.to_string())
        .or_default()
        .clone();
    lock.lock_owned().await
}

/// A started stream's RocketMQ consumer.
pub struct RocketMqSource {
    consumer: Arc<DefaultLitePullConsumer>,
    source: &'static str,
    topic: String,
    /// Polled messages not yet handed out.
    polled: tokio::sync::Mutex<VecDeque<Record>>,
    lag_task: tokio::task::JoinHandle<()>,
    lease: Mutex<Option<OwnedMutexGuard<()>>>,
}

impl RocketMqSource {
    /// Starts the consumer of `settings` (its name servers `addr`, resolved) for the stream
    /// `instance` names, reporting its lag to `lag`.
    pub async fn start(
        instance: &str,
        settings: &RocketMqSettings,
        addr: &str,
        lag: IntGauge,
    ) -> Result<Self, String> {
        let runtime = client_runtime()?;
        let lease = lease(instance).await;
        let model = if settings.broadcasting {
            MessageModel::Broadcasting
        } else {
            MessageModel::Clustering
        };
        let mut builder = DefaultLitePullConsumer::builder(runtime)
            .consumer_group(settings.group.as_str())
            .name_server_addr(addr)
            .client_ip(host_name())
            .instance_name(instance)
            .message_model(model)
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .auto_commit(false)
            .poll_timeout_millis(POLL_TIMEOUT_MS)
            .pull_batch_size(PULL_BATCH);
        if let Some((ak, sk)) = &settings.credentials {
            builder = builder.rpc_hook(Arc::new(AclClientRPCHook::new(
                SessionCredentials::with_keys(ak.as_str(), sk.as_str()),
            )));
        }
        let consumer = builder
            .build()
            .map_err(|e| format!("cannot create the RocketMQ consumer: {e}"))?;
        let consumer = Arc::new(consumer);
        let started = async {
            consumer
                .subscribe_with_expression(&settings.topic, &settings.tag)
                .await?;
            consumer.start().await
        };
        if let Err(e) = started.await {
            consumer.shutdown().await;
            return Err(format!("cannot start the RocketMQ consumer: {e}"));
        }
        if settings.broadcasting {
            // rocketmq-client-rust 1.0.0 writes `<dir>/<client id>/<group>/offsets.json` without
            // making its directory: made here, before the first commit.
            if let Some(root) = std::env::var_os(LOCAL_OFFSETS_DIR) {
                let client_id = consumer.client_config().build_mq_client_id();
                let dir = std::path::Path::new(&root)
                    .join(client_id)
                    .join(&settings.group);
                if let Err(e) = std::fs::create_dir_all(&dir) {
                    consumer.shutdown().await;
                    return Err(format!("cannot make {}: {e}", dir.display()));
                }
            }
        }
        let lag_task = tokio::spawn(report_lag(consumer.clone(), lag));
        Ok(RocketMqSource {
            consumer,
            source: settings.source,
            topic: settings.topic.clone(),
            polled: tokio::sync::Mutex::new(VecDeque::new()),
            lag_task,
            lease: Mutex::new(Some(lease)),
        })
    }

    /// Whether the topic can be read: its route from the name servers, then a queue's offsets
    /// from its broker (which refuses a consumer whose ACL credentials it does not accept).
    async fn check(&self) -> Result<(), String> {
        let failed = |e| format!("RocketMQ source: {e}");
        let queues = self
            .consumer
            .fetch_message_queues(&self.topic)
            .await
            .map_err(failed)?;
        if let Some(queue) = queues.first() {
            self.consumer.max_offset(queue).await.map_err(failed)?;
        }
        Ok(())
    }

    fn record(&self, m: &MessageExt) -> Record {
        let inner = m.message_inner();
        let properties: Map<String, Value> = m
            .properties()
            .iter()
            .filter(|(k, _)| !STRING_HASH_SET.contains(k.as_str()))
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        Record {
            topic: m.topic().to_string(),
            partition: m.queue_id(),
            offset: m.queue_offset(),
            key: inner.property("KEYS").map(|k| k.as_bytes().to_vec()),
            value: m.body().map(|b| b.to_vec()),
            timestamp_ms: m.store_timestamp(),
            rocketmq: Some(Box::new(RocketMqFacts {
                source: self.source,
                broker: m.broker_name().to_string(),
                msg_id: m.msg_id().to_string(),
                tags: m.get_tags().map(|t| t.to_string()),
                properties,
                born_ms: m.born_timestamp(),
            })),
        }
    }
}

impl Source for RocketMqSource {
    fn recv(&self) -> SourceFuture<'_, Record> {
        Box::pin(async move {
            let mut polled = self.polled.lock().await;
            let mut checked = tokio::time::Instant::now();
            loop {
                if let Some(record) = polled.pop_front() {
                    return Ok(record);
                }
                let messages = self.consumer.poll_with_timeout(POLL_TIMEOUT_MS).await;
                if messages.is_empty() && checked.elapsed() >= ROUTE_CHECK {
                    checked = tokio::time::Instant::now();
                    self.check().await?;
                }
                polled.extend(messages.iter().map(|m| self.record(m)));
            }
        })
    }

    fn commit<'a>(&'a self, batch: &'a [Record]) -> SourceFuture<'a, ()> {
        Box::pin(async move {
            let offsets: HashMap<MessageQueue, i64> = Record::next_offsets(batch)
                .into_iter()
                .map(|((topic, broker, queue), offset)| {
                    (MessageQueue::from_parts(topic, broker, queue), offset)
                })
                .collect();
            self.consumer.commit_sync_with_map(offsets, true).await;
            Ok(())
        })
    }
}

impl Drop for RocketMqSource {
    /// Shuts the consumer down (it leaves its group) and then lets the stream start again.
    fn drop(&mut self) {
        self.lag_task.abort();
        let consumer = self.consumer.clone();
        let lease = self.lease.lock().unwrap().take();
        tokio::spawn(async move {
            consumer.shutdown().await;
            drop(lease);
            // Forget the leases no start holds or waits for (one per stream ever started
            // would otherwise stay).
            LEASES
                .lock()
                .unwrap()
                .retain(|_, lock| Arc::strong_count(lock) > 1);
        });
    }
}

/// Every [`LAG_INTERVAL`]: the messages of the assigned queues after the committed offsets.
async fn report_lag(consumer: Arc<DefaultLitePullConsumer>, lag: IntGauge) {
    loop {
        tokio::time::sleep(LAG_INTERVAL).await;
        let queues: HashSet<MessageQueue> = consumer.assignment().await.unwrap_or_default();
        let mut total = 0;
        for queue in &queues {
            let (Ok(max), Ok(committed)) = (
                consumer.max_offset(queue).await,
                consumer.committed(queue).await,
            ) else {
                continue;
            };
            total += (max - committed.max(0)).max(0);
        }
        lag.set(total);
    }
}
