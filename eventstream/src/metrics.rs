//! Per-stream metrics, registered in the host's Prometheus registry (served at `/metrics`).

use prometheus::{IntCounterVec, Opts, Registry};

/// Counters of every stream, labelled with its id.
pub struct StreamMetrics {
    pub consumed: IntCounterVec,
    pub filtered_out: IntCounterVec,
    pub delivered: IntCounterVec,
    pub failed: IntCounterVec,
    pub retries: IntCounterVec,
}

impl StreamMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), &["stream"])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
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
        })
    }
}
