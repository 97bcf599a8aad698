//! TIMER triggers that fire: one task per ACTIVE timer, sleeping until its next tick and then
//! submitting the documented timer event as an async invocation (durable in the journal, with
//! the version's retries and destinations) through the one invocation path.
//!
//! A tick is computed strictly after the previous one, so a tick fires at most once; a tick
//! that fell while the host was down (or the timer DISABLED) is not replayed. `Rate` and
//! `@every` count from when the timer became active (created, enabled, or the host started).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::api::App;
use crate::invocation;
use crate::registry::Trigger;
use crate::schedule::Schedule;

/// The running timers, by trigger id.
#[derive(Default)]
pub struct Timers {
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Timers {
    /// Makes the timer of `trigger` run if it is an ACTIVE TIMER, and stops it otherwise (or
    /// restarts it, counting from now).
    pub fn sync(&self, app: &Arc<App>, trigger: &Arc<Trigger>) {
        self.stop(&trigger.trigger_id);
        if !trigger.is_active() {
            return;
        }
        let Some(schedule) = trigger.schedule() else {
            tracing::error!(trigger = %trigger.trigger_id, "stored timer has no valid schedule");
            return;
        };
        let task = tokio::spawn(run(app.clone(), trigger.clone(), schedule));
        self.tasks
            .lock()
            .unwrap()
            .insert(trigger.trigger_id.clone(), task);
    }

    /// Stops the timer of trigger `id`, if one runs.
    pub fn stop(&self, id: &str) {
        if let Some(task) = self.tasks.lock().unwrap().remove(id) {
            task.abort();
        }
    }
}

async fn run(app: Arc<App>, trigger: Arc<Trigger>, schedule: Schedule) {
    let anchor = Utc::now();
    let mut previous = anchor;
    loop {
        let after = previous.max(Utc::now());
        let Some(tick) = schedule.next(anchor, after) else {
            tracing::warn!(trigger = %trigger.trigger_id, "timer has no further tick");
            return;
        };
        let wait = (tick - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        fire(&app, &trigger, tick).await;
        previous = tick;
    }
}

/// Submits the timer event of `tick` to the trigger's version or alias.
async fn fire(app: &App, trigger: &Trigger, tick: DateTime<Utc>) {
    let event = json!({
        "version": "v1.0",
        "time": tick.with_timezone(&region_offset(app.registry.region())).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "trigger_type": "TIMER",
        "trigger_name": trigger.name(),
        "user_event": trigger.event_data.get("user_event").and_then(|v| v.as_str()).unwrap_or_default(),
    });
    let submitted = invocation::submit_to(
        app,
        &trigger.project_id,
        &trigger.function(),
        event.to_string().into_bytes(),
    )
    .await
    .map(drop);
    if let Err(e) = &submitted {
        tracing::warn!(trigger = %trigger.trigger_id, error = %e, "timer tick not submitted");
    }
    app.triggers
        .fired(app, trigger, submitted.map_err(|e| e.to_string()));
}

/// The UTC offset the timer event's `time` is written in: the region's (fgs knows Huawei
/// Cloud's Chinese and Asia-Pacific regions at +08:00, Bangkok +07:00, Johannesburg +02:00;
/// elsewhere UTC).
fn region_offset(region: &str) -> FixedOffset {
    let hours = match region {
        r if r.starts_with("cn-") => 8,
        "ap-southeast-1" | "ap-southeast-3" => 8,
        "ap-southeast-2" => 7,
        "af-south-1" => 2,
        _ => 0,
    };
    FixedOffset::east_opt(hours * 3600).expect("a valid offset")
}
