//! Prometheus metrics, served at `/metrics`.

use fgs_runtime::{InvokeOutcome, LaneStats};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    invocations: IntCounterVec,
    cold_starts: IntCounterVec,
    cold_start_seconds: HistogramVec,
    prewarm_ready: IntGaugeVec,
    prewarm_hits: IntCounterVec,
    prewarm_misses: IntCounterVec,
    duration: HistogramVec,
    instances: IntGauge,
    starting: IntGauge,
    peak_starting: IntGauge,
    async_waiting: IntGauge,
    trigger_fires: IntCounterVec,
    trigger_records: IntCounterVec,
    trigger_retries: IntCounterVec,
    trigger_lag: IntGaugeVec,
}

/// The consumer counters of one Kafka trigger.
pub struct KafkaTriggerCounters {
    pub consumed: IntCounter,
    pub retries: IntCounter,
    pub lag: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let invocations = IntCounterVec::new(
            Opts::new(
                "fgs_invocations_total",
                "Invocations by function and result (0 = success, else the runtime error code).",
            ),
            &["function", "code"],
        )
        .expect("valid metric");
        let cold_starts = IntCounterVec::new(
            Opts::new(
                "fgs_cold_starts_total",
                "Invocations that started a new instance.",
            ),
            &["function"],
        )
        .expect("valid metric");
        let cold_start_seconds = HistogramVec::new(
            HistogramOpts::new(
                "fgs_cold_start_seconds",
                "From an invocation finding no idle instance to a new instance taking it (a start slot, the sandbox, the runtime's boot and initializer), by runtime and whether a prewarmed sandbox was taken.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
                2.5, 5.0, 10.0, 30.0,
            ]),
            &["runtime", "pooled"],
        )
        .expect("valid metric");
        let prewarm_ready = IntGaugeVec::new(
            Opts::new(
                "fgs_prewarm_pool_size",
                "Prewarmed sandboxes ready now, by runtime.",
            ),
            &["runtime"],
        )
        .expect("valid metric");
        let prewarm_hits = IntCounterVec::new(
            Opts::new(
                "fgs_prewarm_hits_total",
                "Cold starts that took a prewarmed sandbox, by runtime.",
            ),
            &["runtime"],
        )
        .expect("valid metric");
        let prewarm_misses = IntCounterVec::new(
            Opts::new(
                "fgs_prewarm_misses_total",
                "Cold starts that could have taken a prewarmed sandbox but found none ready, by runtime.",
            ),
            &["runtime"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new("fgs_invocation_duration_seconds", "Handler execution time.")
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ]),
            &["function"],
        )
        .expect("valid metric");
        let instances = IntGauge::new("fgs_instances", "Function instances alive (idle and busy).")
            .expect("valid metric");
        let starting = IntGauge::new(
            "fgs_instance_starts_in_progress",
            "Instances starting now (at most --max-concurrent-starts).",
        )
        .expect("valid metric");
        let peak_starting = IntGauge::new(
            "fgs_instance_starts_peak",
            "The most instances that were starting at once since the host started.",
        )
        .expect("valid metric");
        let async_waiting = IntGauge::new(
            "fgs_async_waiting",
            "Async requests waiting to run (including retries).",
        )
        .expect("valid metric");
        let trigger_fires = IntCounterVec::new(
            Opts::new(
                "fgs_trigger_fires_total",
                "Trigger firings by trigger type, trigger id and result (ok: the invocation was accepted or, for a gateway, answered by the function).",
            ),
            &["type", "trigger", "result"],
        )
        .expect("valid metric");
        let trigger_records = IntCounterVec::new(
            Opts::new(
                "fgs_trigger_records_total",
                "Records a Kafka trigger read from its topics.",
            ),
            &["trigger"],
        )
        .expect("valid metric");
        let trigger_retries = IntCounterVec::new(
            Opts::new(
                "fgs_trigger_retries_total",
                "Retries of a Kafka trigger's batches the host could not accept.",
            ),
            &["trigger"],
        )
        .expect("valid metric");
        let trigger_lag = IntGaugeVec::new(
            Opts::new(
                "fgs_trigger_lag",
                "Records of a Kafka trigger's partitions after its committed offsets.",
            ),
            &["trigger"],
        )
        .expect("valid metric");
        for m in [
            Box::new(invocations.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(cold_starts.clone()),
            Box::new(cold_start_seconds.clone()),
            Box::new(prewarm_ready.clone()),
            Box::new(prewarm_hits.clone()),
            Box::new(prewarm_misses.clone()),
            Box::new(duration.clone()),
            Box::new(instances.clone()),
            Box::new(starting.clone()),
            Box::new(peak_starting.clone()),
            Box::new(async_waiting.clone()),
            Box::new(trigger_fires.clone()),
            Box::new(trigger_records.clone()),
            Box::new(trigger_retries.clone()),
            Box::new(trigger_lag.clone()),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Self {
            registry,
            invocations,
            cold_starts,
            cold_start_seconds,
            prewarm_ready,
            prewarm_hits,
            prewarm_misses,
            duration,
            instances,
            starting,
            peak_starting,
            async_waiting,
            trigger_fires,
            trigger_records,
            trigger_retries,
            trigger_lag,
        }
    }

    /// The counters of Kafka trigger `id`'s consumer.
    pub fn kafka_trigger(&self, id: &str) -> KafkaTriggerCounters {
        KafkaTriggerCounters {
            consumed: self.trigger_records.with_label_values(&[id]),
            retries: self.trigger_retries.with_label_values(&[id]),
            lag: self.trigger_lag.with_label_values(&[id]),
        }
    }

    /// Drops the consumer counters of a deleted Kafka trigger.
    pub fn forget_kafka_trigger(&self, id: &str) {
        let _ = self.trigger_records.remove_label_values(&[id]);
        let _ = self.trigger_retries.remove_label_values(&[id]);
        let _ = self.trigger_lag.remove_label_values(&[id]);
    }

    /// Counts one firing of trigger `id` of `type_code`.
    pub fn trigger_fired(&self, type_code: &str, id: &str, ok: bool) {
        self.trigger_fires
            .with_label_values(&[type_code, id, if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// Drops the counters of a deleted trigger.
    pub fn forget_trigger(&self, type_code: &str, id: &str) {
        for result in ["ok", "failed"] {
            let _ = self
                .trigger_fires
                .remove_label_values(&[type_code, id, result]);
        }
    }

    /// The registry, for other parts of the host to register their metrics in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records one invocation of `function` (its URN) of `runtime`.
    pub fn observe(&self, function: &str, runtime: &str, outcome: &InvokeOutcome) {
        let code = match &outcome.result {
            Ok(_) => 0,
            Err(failure) => failure.code(),
        };
        self.invocations
            .with_label_values(&[function, &code.to_string()])
            .inc();
        if outcome.cold_start {
            self.cold_starts.with_label_values(&[function]).inc();
        }
        if let Some(init) = outcome.init_duration {
            self.cold_start_seconds
                .with_label_values(&[runtime, if outcome.prewarmed { "true" } else { "false" }])
                .observe(init.as_secs_f64());
        }
        self.duration
            .with_label_values(&[function])
            .observe(outcome.duration.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(
        &self,
        instances: usize,
        (starting, peak_starting): (usize, usize),
        async_waiting: usize,
        prewarm: &[LaneStats],
    ) -> String {
        for lane in prewarm {
            let labels = [lane.runtime];
            self.prewarm_ready
                .with_label_values(&labels)
                .set(lane.ready as i64);
            // The pool counts; the counters catch up with it.
            for (counter, now) in [
                (&self.prewarm_hits, lane.hits),
                (&self.prewarm_misses, lane.misses),
            ] {
                let counter = counter.with_label_values(&labels);
                counter.inc_by(now.saturating_sub(counter.get()));
            }
        }
        self.instances.set(instances as i64);
        self.starting.set(starting as i64);
        self.peak_starting.set(peak_starting as i64);
        self.async_waiting.set(async_waiting as i64);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("metrics are UTF-8")
    }
}
