//! Where a stream delivers: a function of this host (`HC.FunctionGraph`) or a Kafka topic
//! (`HC.Kafka`, through a target connection).
//!
//! A FunctionGraph sink receives one event as the event when the stream's batches hold one
//! (`batch_window.count`, or a RocketMQ source's `consumer_batch_max_size`, is 1), else a JSON
//! array of the batch's events. A Kafka sink writes one record per event: the transformed
//! event as the value (a string as its text, anything else as JSON) and a key from the first
//! `keyTransform` rule: `NONE` (or none given) no key, `ORIGINAL` the source record's key,
//! `CONSTANT` its value, `VARIABLE` its template filled from the event.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde_json::Value;

use super::{kafka, FunctionSink};
use crate::store::StreamStore;
use crate::Transform;

/// A stream's sink, ready to deliver.
pub enum Sink {
    Function {
        host: Arc<dyn FunctionSink>,
        project_id: String,
        urn: String,
        sync: bool,
        batched: bool,
    },
    Kafka {
        producer: FutureProducer,
        topic: String,
        key: Key,
    },
}

/// How a Kafka sink keys its records.
pub enum Key {
    None,
    Original,
    Rule(Transform),
}

impl Key {
    fn of(&self, original: &Value) -> Option<String> {
        let text = |v: Value| match v {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        };
        match self {
            Key::None => None,
            Key::Original => original["data"]["key"].as_str().map(str::to_string),
            Key::Rule(rule) => text(rule.apply(original).into_owned()),
        }
    }
}

impl Sink {
    /// The sink of a stream's normalized definition (`json`) whose batches hold up to `batch`
    /// events, connecting a Kafka sink's producer through its connection in `store`.
    pub fn new(
        json: &Value,
        batch: usize,
        project_id: &str,
        host: &Arc<dyn FunctionSink>,
        store: &StreamStore,
    ) -> Result<Self, String> {
        let sink = &json["sink"];
        match sink["name"].as_str() {
            Some("HC.FunctionGraph") => Ok(Sink::Function {
                host: host.clone(),
                project_id: project_id.to_string(),
                urn: sink["sink_fg"]["urn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                sync: sink["sink_fg"]["invoke_type"] == "SYNC",
                batched: batch != 1,
            }),
            Some("HC.Kafka") => {
                let target = &sink["sink_kafka"];
                let id = target["connectionId"].as_str().unwrap_or_default();
                let connection = store
                    .connection(project_id, id)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("the sink's connection {id} does not exist"))?;
                let rule = target["keyTransform"]
                    .get(0)
                    .cloned()
                    .unwrap_or(Value::Null);
                let key = match rule["type"].as_str() {
                    None | Some("NONE") => Key::None,
                    Some("ORIGINAL") => Key::Original,
                    Some(_) => {
                        Key::Rule(Transform::parse(&rule, false).map_err(|e| e.to_string())?)
                    }
                };
                Ok(Sink::Kafka {
                    producer: kafka::producer(&connection.detail["kafka_detail"])?,
                    topic: target["topic"].as_str().unwrap_or_default().to_string(),
                    key,
                })
            }
            other => Err(format!("sink {other:?} cannot run")),
        }
    }

    /// Delivers a batch: `events` are the transformed events, `originals` the envelopes they
    /// came from. Succeeds only when all of it was accepted.
    pub async fn deliver(
        &self,
        events: &[Cow<'_, Value>],
        originals: &[&Value],
    ) -> Result<(), String> {
        match self {
            Sink::Function {
                host,
                project_id,
                urn,
                sync,
                batched,
            } => {
                let payload = if *batched {
                    serde_json::to_vec(events)
                } else {
                    serde_json::to_vec(events.first().map_or(&Value::Null, |e| e.as_ref()))
                }
                .map_err(|e| e.to_string())?;
                host.deliver(project_id, urn, payload, *sync).await
            }
            Sink::Kafka {
                producer,
                topic,
                key,
            } => {
                let mut pending = Vec::with_capacity(events.len());
                for (event, original) in events.iter().zip(originals) {
                    let value = match event.as_ref() {
                        Value::String(s) => s.clone().into_bytes(),
                        other => other.to_string().into_bytes(),
                    };
                    let key = key.of(original);
                    let delivery =
                        enqueue(producer, topic, key.as_deref(), &value, &mut pending).await?;
                    pending.push(delivery);
                }
                for delivery in pending {
                    wait(delivery).await?;
                }
                Ok(())
            }
        }
    }
}

/// Enqueues one record; when the producer's queue is full, first waits for what is in flight.
async fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    key: Option<&str>,
    value: &[u8],
    in_flight: &mut Vec<DeliveryFuture>,
) -> Result<DeliveryFuture, String> {
    loop {
        let mut record = FutureRecord::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                if in_flight.is_empty() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                for delivery in in_flight.drain(..) {
                    wait(delivery).await?;
                }
            }
            Err((e, _)) => return Err(format!("Kafka sink: {e}")),
        }
    }
}

async fn wait(delivery: DeliveryFuture) -> Result<(), String> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(format!("Kafka sink: {e}")),
        Err(_) => Err("Kafka sink: the producer stopped".into()),
    }
}
