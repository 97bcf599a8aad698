//! KAFKA and OPENSOURCEKAFKA triggers that fire: one consumer per ACTIVE trigger (the event
//! stream engine's Kafka consumption, [`fgs_eventstream::engine::source`]), in a consumer group
//! of its own (`fgs-trigger-<trigger id>`, starting at the earliest offset the first time).
//! Each batch of up to `batch_size` records becomes FunctionGraph's Kafka event and is submitted
//! as an async invocation, durably in the journal, before its offsets are committed: a host
//! killed at any moment delivers a batch again (at least once) but never loses one. A batch the
//! host cannot accept (its async queue is full) is retried until it is. DISABLED stops the
//! consumer; ACTIVE resumes from the committed offsets.

use std::sync::Arc;
use std::time::Duration;

use fgs_eventstream::engine::envelope::Record;
use fgs_eventstream::engine::kafka;
use fgs_eventstream::engine::source::{
    Backoff, Consumption, Deliver, Health, SourceCounters, Window,
};
use fgs_eventstream::engine::SinkFuture;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::api::App;
use crate::invocation;
use crate::registry::Trigger;

/// The running Kafka triggers.
#[derive(Default)]
pub struct KafkaTriggers(super::Running);

impl KafkaTriggers {
    /// Starts the consumer of `trigger` if it is ACTIVE (after stopping any running one).
    pub fn sync(&self, app: &Arc<App>, trigger: &Arc<Trigger>) {
        let (app, t) = (app.clone(), trigger.clone());
        self.0
            .start(trigger, move |stopped| consume(app, t, stopped));
    }

    /// Stops the consumer of trigger `id`, if one runs.
    pub fn stop(&self, id: &str) {
        self.0.stop(id);
    }
}

/// The consumer settings of a trigger, in the form the event stream engine reads.
fn source_settings(trigger: &Trigger) -> Value {
    let data = &trigger.event_data;
    json!({
        "addr": data["kafka_connect_address"],
        "enable_sasl_ssl": data["kafka_ssl_enable"],
        "user_name": data["kafka_user"],
        "password": data["kafka_password"],
        "group": format!("fgs-trigger-{}", trigger.trigger_id),
        "seek_to": "earliest",
    })
}

/// One run of a trigger's consumer, until it is stopped. A consumer that cannot be made, or
/// that ends, leaves the reason as the trigger's last error.
async fn consume(app: Arc<App>, trigger: Arc<Trigger>, stop: watch::Receiver<bool>) {
    let topics: Vec<String> = trigger.event_data["topic_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let counters = app.metrics.kafka_trigger(&trigger.trigger_id);
    let member = format!("fgs-trigger-{}", trigger.trigger_id);
    let source = match kafka::consumer(
        &member,
        &source_settings(&trigger),
        &topics,
        counters.lag.clone(),
    ) {
        Ok(source) => source,
        Err(reason) => return app.triggers.failed(&trigger, reason),
    };
    let batch_size = trigger.event_data["batch_size"].as_u64().unwrap_or(100) as usize;
    let consumption = Consumption {
        name: format!("trigger {}", trigger.trigger_id),
        source: Arc::new(source),
        window: Window {
            count: batch_size.max(1),
            interval: Duration::ZERO,
            retries: None,
        },
        threads: 1,
        backoff: Backoff::Doubling(app.async_settings.retry_delay),
        timeout: None,
        counters: SourceCounters {
            consumed: counters.consumed,
            retries: counters.retries,
            lag: counters.lag,
        },
    };
    let delivery = Arc::new(TriggerDelivery {
        app: app.clone(),
        trigger: trigger.clone(),
    });
    let health = |health| {
        if let Health::Failing(reason) = health {
            app.triggers.failed(&trigger, reason);
        }
    };
    if let Err(reason) = consumption.run(delivery, stop, health).await {
        app.triggers.failed(&trigger, reason);
    }
}

/// A trigger's delivery of a batch: the Kafka event, submitted durably.
struct TriggerDelivery {
    app: Arc<App>,
    trigger: Arc<Trigger>,
}

impl Deliver for TriggerDelivery {
    fn deliver<'a>(&'a self, batch: &'a [Record], _attempt: u64) -> SinkFuture<'a> {
        Box::pin(async move {
            let event = event(&self.trigger, self.app.registry.region(), batch);
            let app = &self.app;
            let trigger = &self.trigger;
            let submitted =
                invocation::submit_to(app, &trigger.project_id, &trigger.function(), event)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string());
            app.triggers.fired(app, &self.trigger, submitted.clone());
            submitted
        })
    }
}

/// FunctionGraph's Kafka trigger event of `batch`: `event_version`, `event_time` (epoch
/// seconds), `trigger_type`, `region`, `instance_id` and `records`, one per topic in the order
/// the topics first appear, each with the values of its messages as text.
fn event(trigger: &Trigger, region: &str, batch: &[Record]) -> Vec<u8> {
    let mut records: Vec<(&str, Vec<String>)> = Vec::new();
    for record in batch {
        let message =
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
        match records.iter_mut().find(|(topic, _)| *topic == record.topic) {
            Some((_, messages)) => messages.push(message),
            None => records.push((&record.topic, vec![message])),
        }
    }
    let records: Vec<Value> = records
        .into_iter()
        .map(|(topic, messages)| json!({"messages": messages, "topic_id": topic}))
        .collect();
    json!({
        "event_version": "v1.0",
        "event_time": chrono::Utc::now().timestamp(),
        "trigger_type": trigger.trigger_type_code,
        "region": region,
        "instance_id": trigger.event_data["instance_id"],
        "records": records,
    })
    .to_string()
    .into_bytes()
}
