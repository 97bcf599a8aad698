//! Triggers that fire: what makes a stored trigger run (a timer task, a route on the gateway)
//! and what it did last. Every trigger invokes through the one invocation path
//! ([`crate::invocation`]); none keeps a copy of admission, journaling or metrics.

mod dis;
mod kafka;
mod timer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::api::App;
use crate::gateway::Routes;
use crate::registry::triggers::Kind;
use crate::registry::Trigger;

/// The triggers running on this host.
#[derive(Default)]
pub struct Triggers {
    timers: timer::Timers,
    kafka: kafka::KafkaTriggers,
    dis: dis::DisTriggers,
    /// The APIs the gateway serves.
    pub routes: Routes,
    /// The last failure of each trigger (when, why), shown by show_function_trigger.
    last_errors: Mutex<HashMap<String, LastError>>,
}

/// The triggers whose consumer runs (Kafka, DIS), by trigger id: how to stop each.
#[derive(Default)]
pub struct Running {
    stops: Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
}

impl Running {
    /// Runs the consumer `run` makes for `trigger` if it is ACTIVE, after stopping any
    /// running one; the consumer ends when its receiver says so.
    pub fn start<F>(
        &self,
        trigger: &Trigger,
        run: impl FnOnce(tokio::sync::watch::Receiver<bool>) -> F,
    ) where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.stop(&trigger.trigger_id);
        if !trigger.is_active() {
            return;
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        self.stops
            .lock()
            .unwrap()
            .insert(trigger.trigger_id.clone(), stop);
        tokio::spawn(run(stopped));
    }

    /// Stops the consumer of trigger `id`, if one runs.
    pub fn stop(&self, id: &str) {
        if let Some(stop) = self.stops.lock().unwrap().remove(id) {
            let _ = stop.send(true);
        }
    }
}

/// A trigger's last failure.
#[derive(Debug, Clone)]
pub struct LastError {
    pub time: String,
    pub message: String,
}

impl Triggers {
    /// Makes `trigger` run as stored (ACTIVE) or stop (DISABLED); a changed trigger restarts.
    pub fn sync(&self, app: &Arc<App>, trigger: &Arc<Trigger>) {
        match trigger.kind() {
            Some(Kind::Timer) => self.timers.sync(app, trigger),
            Some(Kind::Apig | Kind::DedicatedGateway) => self.routes.sync(trigger),
            Some(Kind::Kafka | Kind::OpenSourceKafka) => self.kafka.sync(app, trigger),
            Some(Kind::Dis) => self.dis.sync(app, trigger),
            None => {
                tracing::error!(trigger = %trigger.trigger_id, kind = %trigger.trigger_type_code, "stored trigger of a type fgs does not serve")
            }
        }
    }

    /// Stops a deleted trigger and forgets it.
    pub fn stop(&self, app: &App, trigger: &Trigger) {
        app.metrics
            .forget_trigger(&trigger.trigger_type_code, &trigger.trigger_id);
        app.metrics.forget_kafka_trigger(&trigger.trigger_id);
        self.timers.stop(&trigger.trigger_id);
        self.routes.remove(&trigger.trigger_id);
        self.kafka.stop(&trigger.trigger_id);
        self.dis.forget(app, trigger);
        self.last_errors.lock().unwrap().remove(&trigger.trigger_id);
    }

    /// Records one firing of `trigger`: counted in the metrics; a failure is kept as its last
    /// error.
    pub fn fired(&self, app: &App, trigger: &Trigger, result: Result<(), String>) {
        app.metrics.trigger_fired(
            &trigger.trigger_type_code,
            &trigger.trigger_id,
            result.is_ok(),
        );
        if let Err(message) = result {
            self.failed(trigger, message);
        }
    }

    /// Keeps `message` as the last error of `trigger` (a firing that failed, or a source
    /// that cannot be read).
    pub fn failed(&self, trigger: &Trigger, message: String) {
        tracing::warn!(trigger = %trigger.trigger_id, kind = %trigger.trigger_type_code, %message, "trigger failed");
        let time = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S+00:00")
            .to_string();
        self.last_errors
            .lock()
            .unwrap()
            .insert(trigger.trigger_id.clone(), LastError { time, message });
    }

    /// The last failure of trigger `id`, if it failed since the host started.
    pub fn last_error(&self, id: &str) -> Option<LastError> {
        self.last_errors.lock().unwrap().get(id).cloned()
    }
}
