//! A consumed record (of Kafka or RocketMQ) as the CloudEvents 1.0 envelope a stream delivers.
//!
//! The envelopes (fgs's choice; EventGrid does not document them):
//! - Kafka: `{"specversion": "1.0", "id": "<topic>-<partition>-<offset>", "source": "HC.Kafka",
//!   "type": "kafka:message", "subject": "<topic>", "time": "<record timestamp, RFC 3339>",
//!   "datacontenttype": "application/json", "data": {"topic", "partition", "offset", "key",
//!   "value" (JSON when it parses, else a string), "timestamp" (ms)}}`.
//! - RocketMQ: `{"specversion": "1.0", "id": "<message id>", "source": "<the stream's source
//!   name, e.g. HC.COMMUNITY_ROCKETMQ>", "type": "rocketmq:message", "subject": "<topic>",
//!   "time": "<store time>", "datacontenttype": "application/json", "data": {"topic",
//!   "broker", "queue_id", "queue_offset", "msg_id", "tags", "keys", "properties" (the user
//!   properties), "body" (JSON when it parses, else a string), "born_timestamp",
//!   "store_timestamp" (ms)}}`.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// One consumed record: where it came from (to commit it), its key, value and timestamp.
pub struct Record {
    pub topic: String,
    /// The Kafka partition, or the RocketMQ queue id.
    pub partition: i32,
    /// The offset in the partition or queue.
    pub offset: i64,
    /// The Kafka key, or the RocketMQ keys.
    pub key: Option<Vec<u8>>,
    /// The Kafka value, or the RocketMQ body.
    pub value: Option<Vec<u8>>,
    /// When the broker stored it (ms since the epoch).
    pub timestamp_ms: i64,
    /// What a RocketMQ message has besides (`None` for Kafka records).
    pub rocketmq: Option<Box<RocketMqFacts>>,
}

/// The parts of a RocketMQ message a Kafka record does not have.
pub struct RocketMqFacts {
    /// The stream's source name (`HC.COMMUNITY_ROCKETMQ`, …), the envelope's `source`.
    pub source: &'static str,
    /// The broker holding the queue (a queue is named by topic, broker and id).
    pub broker: String,
    pub msg_id: String,
    pub tags: Option<String>,
    /// The user properties.
    pub properties: Map<String, Value>,
    pub born_ms: i64,
}

impl Record {
    /// The record's CloudEvents envelope.
    pub fn envelope(&self) -> Value {
        let value = self.value.as_deref().map(|p| {
            serde_json::from_slice(p).unwrap_or_else(|_| json!(String::from_utf8_lossy(p)))
        });
        let key = self.key.as_deref().map(|k| String::from_utf8_lossy(k));
        let time = rfc3339(self.timestamp_ms);
        match &self.rocketmq {
            None => json!({
                "specversion": "1.0",
                "id": format!("{}-{}-{}", self.topic, self.partition, self.offset),
                "source": "HC.Kafka",
                "type": "kafka:message",
                "subject": self.topic,
                "time": time,
                "datacontenttype": "application/json",
                "data": {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                         "key": key, "value": value, "timestamp": self.timestamp_ms},
            }),
            Some(m) => json!({
                "specversion": "1.0",
                "id": m.msg_id,
                "source": m.source,
                "type": "rocketmq:message",
                "subject": self.topic,
                "time": time,
                "datacontenttype": "application/json",
                "data": {"topic": self.topic, "broker": m.broker, "queue_id": self.partition,
                         "queue_offset": self.offset, "msg_id": m.msg_id, "tags": m.tags,
                         "keys": key, "properties": m.properties, "body": value,
                         "born_timestamp": m.born_ms, "store_timestamp": self.timestamp_ms},
            }),
        }
    }

    /// The broker of a RocketMQ record ("" for Kafka).
    pub fn broker(&self) -> &str {
        self.rocketmq.as_ref().map_or("", |m| &m.broker)
    }

    /// Per partition or queue of `batch` (topic, broker, number), the offset after its last
    /// record: what committing the batch records.
    pub fn next_offsets(batch: &[Record]) -> HashMap<(&str, &str, i32), i64> {
        let mut next = HashMap::new();
        for r in batch {
            let e = next
                .entry((r.topic.as_str(), r.broker(), r.partition))
                .or_insert(0);
            *e = (*e).max(r.offset + 1);
        }
        next
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
