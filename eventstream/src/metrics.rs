//! Per-stream metrics, registered in the host's Prometheus registry (served at `/metrics`).

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Counters of every stream, labelled with its id.
pub struct StreamMetrics {
    consumed: IntCounterVec,
    filtered_out: IntCounterVec,
    delivered: IntCounterVec,
    failed: IntCounterVec,
    retries: IntCounterVec,
    lag: IntGaugeVec,
}

/// One stream's series (resolved once per run, not per record).
#[derive(Clone)]
pub struct StreamCounters {
    pub consumed: IntCounter,
    pub filtered_out: IntCounter,
    pub delivered: IntCounter,
    pub failed: IntCounter,
    pub retries: IntCounter,
    pub lag: IntGauge,
}

impl StreamMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), &["stream"])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let lag = IntGaugeVec::new(
            Opts::new(
                "fgs_stream_lag",
                "Records of the source's assigned partitions after the stream's committed offsets (refreshed every second while it runs).",
            ),
            &["stream"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        Ok(Self {
            consumed: counter(
                "fgs_stream_consumed_total",
                "Records read from the stream's source.",
            )?,
            filtered_out: counter(
                "fgs_stream_filtered_out_total",
                "Records the stream's filter dropped.",
            )?,
            delivered: counter("fgs_stream_delivered_total", "Events the sink accepted.")?,
            failed: counter(
                "fgs_stream_failed_total",
                "Batches whose delivery failed (each attempt).",
            )?,
            retries: counter(
                "fgs_stream_retries_total",
                "Delivery retries of failed batches.",
            )?,
            lag,
        })
    }

    /// Drops stream `id`'s lag: a stopped stream has no consumer to measure it (its counters
    /// stay).
    pub fn forget_lag(&self, id: &str) {
        let _ = self.lag.remove_label_values(&[id]);
    }

    /// The series of stream `id`.
    pub fn stream(&self, id: &str) -> StreamCounters {
        let label = [id];
        StreamCounters {
            consumed: self.consumed.with_label_values(&label),
            filtered_out: self.filtered_out.with_label_values(&label),
            delivered: self.delivered.with_label_values(&label),
            failed: self.failed.with_label_values(&label),
            retries: self.retries.with_label_values(&label),
            lag: self.lag.with_label_values(&label),
        }
    }
}
