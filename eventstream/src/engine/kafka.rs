//! The Kafka clients of a running stream: the source's consumer, which reports its lag, and a
//! Kafka sink's producer.

use prometheus::IntGauge;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, Statistics, TopicPartitionList};
use serde_json::Value;

use super::envelope::Record;
use super::source::{Source, SourceFuture};

/// How often librdkafka reports statistics (the lag gauge's refresh period).
const STATISTICS_INTERVAL_MS: &str = "1000";

/// The source consumer's context: turns librdkafka's statistics into the stream's lag, the
/// records of its assigned partitions after the committed offsets.
pub struct SourceContext {
    lag: IntGauge,
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|(partition, _)| **partition >= 0)
            .map(|(_, p)| p.consumer_lag.max(0))
            .sum();
        self.lag.set(lag);
    }
}

impl ConsumerContext for SourceContext {}

/// A stream's (or a Kafka trigger's) source consumer.
pub struct KafkaSource(StreamConsumer<SourceContext>);

impl Source for KafkaSource {
    fn recv(&self) -> SourceFuture<'_, Record> {
        Box::pin(async move {
            let m = self
                .0
                .recv()
                .await
                .map_err(|e| format!("Kafka source: {e}"))?;
            Ok(record(&m))
        })
    }

    /// Commits asynchronously: the consumer sends the offsets in the background.
    fn commit<'a>(&'a self, batch: &'a [Record]) -> SourceFuture<'a, ()> {
        Box::pin(async move {
            let mut list = TopicPartitionList::new();
            for ((topic, _, partition), offset) in Record::next_offsets(batch) {
                list.add_partition_offset(topic, partition, Offset::Offset(offset))
                    .map_err(|e| e.to_string())?;
            }
            self.0
                .commit(&list, CommitMode::Async)
                .map_err(|e| e.to_string())
        })
    }
}

fn record(m: &BorrowedMessage<'_>) -> Record {
    Record {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
        rocketmq: None,
    }
}

/// The settings every client of a Kafka instance shares: its addresses and SASL.
fn client_config(kafka: &Value) -> ClientConfig {
    let text = |k: &str| kafka.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", text("addr"));
    if kafka
        .get("enable_sasl_ssl")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        let mechanism = kafka
            .get("sasl_mechanism")
            .and_then(Value::as_str)
            .unwrap_or("PLAIN");
        config
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", mechanism)
            .set("sasl.username", text("user_name"))
            .set("sasl.password", text("password"));
    }
    config
}

/// A consumer of `topics` of the Kafka instance `source` (`addr`, SASL settings) in its
/// `group`, starting at `seek_to` where the group has no offset, committing nothing by itself
/// (its user commits what it delivered) and reporting its lag to `lag`.
///
/// The consumer is a static member of its group (`group.instance.id` = `member`): when its
/// user starts again, after a pause, an error or a crash of the host, it takes its partitions
/// back at once instead of waiting for the broker to time the old member out.
pub fn consumer(
    member: &str,
    source: &Value,
    topics: &[String],
    lag: IntGauge,
) -> Result<KafkaSource, String> {
    let text = |k: &str| source.get(k).and_then(Value::as_str).unwrap_or_default();
    let consumer: StreamConsumer<SourceContext> = client_config(source)
        .set("group.id", text("group"))
        .set("group.instance.id", member)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", text("seek_to"))
        .set("session.timeout.ms", "10000")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .create_with_context(SourceContext { lag })
        .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    Ok(KafkaSource(consumer))
}

/// A producer for a Kafka sink's connection (`kafka_detail`), with its `acks`.
pub fn producer(kafka: &Value) -> Result<FutureProducer, String> {
    client_config(kafka)
        .set(
            "acks",
            kafka.get("acks").and_then(Value::as_str).unwrap_or("all"),
        )
        .set("message.timeout.ms", "10000")
        .create()
        .map_err(|e| format!("cannot create the Kafka producer: {e}"))
}
