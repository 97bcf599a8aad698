//! DIS triggers that fire: one task per ACTIVE trigger polls its stream on this host every
//! `polling_interval` seconds. Each partition is read from the trigger's position (the
//! LATEST or TRIM_HORIZON of its first look, then its checkpoint), up to `batch_size`
//! records and `max_fetch_bytes`, and each batch becomes FunctionGraph's DIS event, run as a
//! synchronous invocation through the one invocation path. The position is committed (as
//! the LAST_READ checkpoint of the trigger's DIS app, `fgs-trigger-<id>`) only after the
//! function ran: a batch is never lost, and one a host was killed in the middle of is
//! delivered again once, after the restart. A partition's batches go one at a time, in
//! order; a batch the host could not run (no capacity, no instance) is retried, one the
//! function failed on is counted as delivered and kept as the trigger's last error.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use fgs_dis::consumer::Start;
use fgs_dis::records::Fetched;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::api::App;
use crate::invocation;
use crate::registry::Trigger;

/// The running DIS triggers.
#[derive(Default)]
pub struct DisTriggers(super::Running);

/// The DIS app that holds a trigger's positions.
fn app_name(trigger: &Trigger) -> String {
    format!("fgs-trigger-{}", trigger.trigger_id)
}

impl DisTriggers {
    /// Starts the poller of `trigger` if it is ACTIVE (after stopping any running one).
    pub fn sync(&self, app: &Arc<App>, trigger: &Arc<Trigger>) {
        let (app, t) = (app.clone(), trigger.clone());
        self.0.start(trigger, move |stopped| poll(app, t, stopped));
    }

    /// Stops a deleted trigger and deletes its DIS app (with its positions).
    pub fn forget(&self, app: &App, trigger: &Trigger) {
        self.0.stop(&trigger.trigger_id);
        if trigger.kind() == Some(crate::registry::triggers::Kind::Dis) {
            let _ = app.dis.delete_app(&trigger.project_id, &app_name(trigger));
        }
    }
}

/// The trigger's settings, as validated when it was stored.
struct Settings {
    stream: String,
    batch_size: usize,
    max_bytes: u64,
    interval: Duration,
    start: Start,
}

impl Settings {
    fn of(trigger: &Trigger) -> Self {
        let data = &trigger.event_data;
        let number = |k: &str, default: u64| data.get(k).and_then(Value::as_u64).unwrap_or(default);
        Self {
            stream: data["stream_name"].as_str().unwrap_or_default().to_string(),
            batch_size: number("batch_size", 100) as usize,
            max_bytes: number("max_fetch_bytes", 1024 * 1024),
            interval: Duration::from_secs(number("polling_interval", 30)),
            start: match data["sharditerator_type"].as_str() {
                Some("LATEST") => Start::Latest,
                _ => Start::TrimHorizon,
            },
        }
    }
}

/// Runs blocking DIS work off the async workers.
async fn dis<T: Send + 'static>(
    app: &Arc<App>,
    op: impl FnOnce(&fgs_dis::Dis) -> Result<T, fgs_dis::DisError> + Send + 'static,
) -> Result<T, String> {
    let dis = app.dis.clone();
    tokio::task::spawn_blocking(move || op(&dis))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("DIS: {e}"))
}

/// Polls until the trigger is stopped: every partition drained in turn, then a pause of
/// `polling_interval`.
async fn poll(app: Arc<App>, trigger: Arc<Trigger>, mut stop: watch::Receiver<bool>) {
    let settings = Arc::new(Settings::of(&trigger));
    let consumer = app_name(&trigger);
    let project = trigger.project_id.clone();
    loop {
        if let Err(reason) = drain(&app, &trigger, &settings, &consumer, &mut stop).await {
            if !*stop.borrow() {
                app.triggers.failed(&trigger, reason);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            tracing::debug!(trigger = %trigger.trigger_id, %project, "DIS trigger stopped");
            return;
        }
    }
}

/// Delivers every partition's records up to its end.
async fn drain(
    app: &Arc<App>,
    trigger: &Arc<Trigger>,
    settings: &Arc<Settings>,
    consumer: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let project = trigger.project_id.clone();
    let (p, s, c) = (
        project.clone(),
        settings.stream.clone(),
        consumer.to_string(),
    );
    let partitions = dis(app, move |d| {
        d.ensure_app(&p, &c)?;
        d.readable_partitions(&p, &s)
    })
    .await?;
    for partition in partitions {
        let (p, s, c, start) = (
            project.clone(),
            settings.stream.clone(),
            consumer.to_string(),
            settings.start,
        );
        let mut next = dis(app, move |d| d.position(&p, &c, &s, partition, start)).await?;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let (p, s, set) = (project.clone(), settings.stream.clone(), settings.clone());
            let fetched = dis(app, move |d| {
                d.fetch(&p, &s, partition, next, set.max_bytes, set.batch_size)
            })
            .await?;
            if fetched.records.is_empty() {
                break;
            }
            let full = fetched.records.len() == settings.batch_size;
            deliver(app, trigger, settings, partition, &fetched, stop).await?;
            next = fetched.next;
            let (p, s, c) = (
                project.clone(),
                settings.stream.clone(),
                consumer.to_string(),
            );
            dis(app, move |d| d.commit(&p, &c, &s, partition, next)).await?;
            if !full {
                break;
            }
        }
    }
    Ok(())
}

/// Runs one batch until the host ran it (retrying what the host could not run, with a
/// doubling pause up to 30 s), or the trigger is stopped.
async fn deliver(
    app: &Arc<App>,
    trigger: &Trigger,
    settings: &Settings,
    partition: u32,
    fetched: &Fetched,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let body = event(trigger, &settings.stream, partition, fetched);
    let mut pause = app.async_settings.retry_delay;
    loop {
        let outcome =
            invocation::invoke(app, &trigger.project_id, &trigger.function(), body.clone()).await;
        let failure = match outcome {
            Ok((_, outcome)) => match outcome.result {
                Ok(_) => None,
                Err(f) if f.is_function_error() => {
                    // The function saw the batch: delivered, and its error kept.
                    app.triggers.fired(
                        app,
                        trigger,
                        Err(format!(
                            "the function failed: code {}: {}",
                            f.code(),
                            String::from_utf8_lossy(&f.payload())
                        )),
                    );
                    return Ok(());
                }
                Err(f) => Some(format!(
                    "code {}: {}",
                    f.code(),
                    String::from_utf8_lossy(&f.payload())
                )),
            },
            Err(e) => Some(e.to_string()),
        };
        let Some(reason) = failure else {
            app.triggers.fired(app, trigger, Ok(()));
            return Ok(());
        };
        app.triggers.fired(app, trigger, Err(reason));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return Err("stopped before the batch ran".into()),
        }
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

/// FunctionGraph's DIS event: `ShardID`, `Message` (`next_partition_cursor`, `records` with
/// base64 `data`, `millis_behind_latest`), `Tag` (the version or alias) and `StreamName`.
fn event(trigger: &Trigger, stream: &str, partition: u32, fetched: &Fetched) -> bytes::Bytes {
    let records: Vec<Value> = fetched
        .records
        .iter()
        .map(|r| {
            json!({
                "partition_key": r.key.clone().unwrap_or_default(),
                "data": STANDARD.encode(&r.data),
                "sequence_number": r.sequence.to_string(),
                "timestamp": r.timestamp,
                "timestamp_type": "CreateTime",
            })
        })
        .collect();
    json!({
        "ShardID": fgs_dis::streams::partition_name(partition),
        "Message": {
            "next_partition_cursor": fetched.next_cursor,
            "records": records,
            "millis_behind_latest": fetched.millis_behind_latest.to_string(),
        },
        "Tag": trigger.qualifier,
        "StreamName": stream,
    })
    .to_string()
    .into()
}
