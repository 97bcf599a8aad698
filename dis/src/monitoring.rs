//! show_stream_metrics and show_partition_metrics: a label's per-minute values over a
//! period, from the counters of [`crate::metrics`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::DisError;
use crate::metrics::{self, Label, PartitionCounters};
use crate::streams::{parse_partition, Dis, Stream};

/// One label's data points: (minute in milliseconds, value).
#[derive(Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(i64, u64)>,
}

/// A metrics query as the API takes it.
#[derive(Debug, Default, serde::Deserialize)]
pub struct MetricsQuery {
    pub label: Option<String>,
    pub label_list: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

impl Dis {
    pub fn stream_metrics(
        &self,
        project_id: &str,
        stream: &str,
        q: &MetricsQuery,
    ) -> Result<Vec<Series>, DisError> {
        let stream = self.stream(project_id, stream)?;
        let labels = metrics::labels(
            q.label.as_deref(),
            q.label_list.as_deref(),
            metrics::stream_label,
        )?;
        let (from, to) = metrics::period(q.start_time.as_deref(), q.end_time.as_deref())?;
        let partitions = stream.all_partition_counters();
        Ok(labels
            .into_iter()
            .map(|(label, l)| Series {
                label,
                points: points(l, &stream, &partitions, from, to),
            })
            .collect())
    }

    pub fn partition_metrics(
        &self,
        project_id: &str,
        stream: &str,
        partition: &str,
        q: &MetricsQuery,
    ) -> Result<Vec<Series>, DisError> {
        let stream = self.stream(project_id, stream)?;
        let index = parse_partition(partition)?;
        let counters = stream
            .partition_counters(index)
            .ok_or_else(|| DisError::NoPartition(partition.to_string()))?;
        let labels = metrics::labels(
            q.label.as_deref(),
            q.label_list.as_deref(),
            metrics::partition_label,
        )?;
        let (from, to) = metrics::period(q.start_time.as_deref(), q.end_time.as_deref())?;
        Ok(labels
            .into_iter()
            .map(|(label, l)| Series {
                label,
                points: points(l, &stream, std::slice::from_ref(&counters), from, to),
            })
            .collect())
    }
}

/// A label's values per minute: partition counters summed over `partitions`.
fn points(
    label: Label,
    stream: &Stream,
    partitions: &[Arc<PartitionCounters>],
    from: i64,
    to: i64,
) -> Vec<(i64, u64)> {
    match label {
        Label::Partition(i) => {
            let mut sums = BTreeMap::new();
            for p in partitions {
                for (minute, values) in p.range(from, to) {
                    *sums.entry(minute).or_insert(0) += values[i];
                }
            }
            sums.into_iter().collect()
        }
        Label::Stream(i) => stream
            .counters
            .range(from, to)
            .into_iter()
            .map(|(m, v)| (m, v[i]))
            .collect(),
        Label::Average { sum, count } => stream
            .counters
            .range(from, to)
            .into_iter()
            .map(|(m, v)| (m, v[sum].checked_div(v[count]).unwrap_or(0) / 1000))
            .collect(),
    }
}
