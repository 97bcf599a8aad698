//! A Kafka record as the CloudEvents 1.0 envelope a stream delivers.
//!
//! The envelope (fgs's choice; EventGrid does not document it):
//! `{"specversion": "1.0", "id": "<topic>-<partition>-<offset>", "source": "HC.Kafka",
//! "type": "kafka:message", "subject": "<topic>", "time": "<record timestamp, RFC 3339>",
//! "datacontenttype": "application/json", "data": {"topic", "partition", "offset", "key",
//! "value" (JSON when it parses, else a string), "timestamp" (ms)}}`.

use rdkafka::message::BorrowedMessage;
use rdkafka::Message;
use serde_json::{json, Value};

/// One consumed record: where it came from (to commit it), its key, value and timestamp.
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
}

impl Record {
    pub fn from_message(m: &BorrowedMessage<'_>) -> Self {
        Record {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
        }
    }

    /// The record's CloudEvents envelope.
    pub fn envelope(&self) -> Value {
        let value = self.value.as_deref().map(|p| {
            serde_json::from_slice(p).unwrap_or_else(|_| json!(String::from_utf8_lossy(p)))
        });
        let key = self.key.as_deref().map(|k| String::from_utf8_lossy(k));
        let time = chrono::DateTime::from_timestamp_millis(self.timestamp_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        json!({
            "specversion": "1.0",
            "id": format!("{}-{}-{}", self.topic, self.partition, self.offset),
            "source": "HC.Kafka",
            "type": "kafka:message",
            "subject": self.topic,
            "time": time,
            "datacontenttype": "application/json",
            "data": {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                     "key": key, "value": value, "timestamp": self.timestamp_ms},
        })
    }
}
