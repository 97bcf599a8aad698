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

/// One consumed record: where it came from in the stream's topic (to commit it) and its
/// envelope.
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub event: Value,
}

impl Record {
    pub fn from_message(m: &BorrowedMessage<'_>) -> Self {
        let value = m.payload().map(|p| {
            serde_json::from_slice(p).unwrap_or_else(|_| json!(String::from_utf8_lossy(p)))
        });
        let key = m.key().map(|k| String::from_utf8_lossy(k).into_owned());
        let ms = m.timestamp().to_millis().unwrap_or(0);
        let time = chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let event = json!({
            "specversion": "1.0",
            "id": format!("{}-{}-{}", m.topic(), m.partition(), m.offset()),
            "source": "HC.Kafka",
            "type": "kafka:message",
            "subject": m.topic(),
            "time": time,
            "datacontenttype": "application/json",
            "data": {"topic": m.topic(), "partition": m.partition(), "offset": m.offset(), "key": key, "value": value, "timestamp": ms},
        });
        Record {
            partition: m.partition(),
            offset: m.offset(),
            event,
        }
    }
}
