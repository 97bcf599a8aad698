//! Stream and partition monitoring (show_stream_metrics, show_partition_metrics): counters
//! in one-minute buckets, kept for the 7 days a query may span, in memory (a restart starts
//! them afresh). Only minutes with traffic take a bucket, so an idle stream costs nothing
//! and a busy partition at most 7 × 1440 buckets. Host-wide totals also go to `/metrics`.

use std::collections::VecDeque;
use std::sync::Mutex;

use prometheus::{IntCounter, Registry};

use crate::error::DisError;

/// How far back buckets are kept, and the longest query (DIS.4204 beyond it).
pub const WINDOW_MS: i64 = 7 * 24 * 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// Per-minute sums of `N` counters.
#[derive(Debug, Default)]
pub struct Buckets<const N: usize> {
    buckets: Mutex<VecDeque<(i64, [u64; N])>>,
}

impl<const N: usize> Buckets<N> {
    pub fn add(&self, now: i64, values: [u64; N]) {
        let minute = now - now.rem_euclid(MINUTE_MS);
        let mut buckets = self.buckets.lock().unwrap();
        match buckets.back_mut() {
            Some((m, sums)) if *m >= minute => {
                for (s, v) in sums.iter_mut().zip(values) {
                    *s += v;
                }
            }
            _ => buckets.push_back((minute, values)),
        }
        while buckets
            .front()
            .is_some_and(|(m, _)| *m < minute - WINDOW_MS)
        {
            buckets.pop_front();
        }
    }

    /// The buckets whose minute lies in `[from, to]` (milliseconds).
    pub fn range(&self, from: i64, to: i64) -> Vec<(i64, [u64; N])> {
        let buckets = self.buckets.lock().unwrap();
        buckets
            .iter()
            .filter(|(m, _)| (from - from.rem_euclid(MINUTE_MS)..=to).contains(m))
            .copied()
            .collect()
    }
}

/// Partition counters.
pub const PUT_BYTES: usize = 0;
pub const PUT_RECORDS: usize = 1;
pub const GET_BYTES: usize = 2;
pub const GET_RECORDS: usize = 3;
pub type PartitionCounters = Buckets<4>;

/// Stream counters: successful requests and their summed latency, refused by traffic
/// control (fgs does not throttle, so these stay 0).
pub const PUT_REQUESTS: usize = 0;
pub const PUT_LATENCY_US: usize = 1;
pub const GET_REQUESTS: usize = 2;
pub const GET_LATENCY_US: usize = 3;
pub const PUT_THROTTLED: usize = 4;
pub const GET_THROTTLED: usize = 5;
pub type StreamCounters = Buckets<6>;

/// What a label reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// A partition counter (summed over partitions for a stream label).
    Partition(usize),
    /// A stream counter.
    Stream(usize),
    /// A stream latency sum (µs) divided by its request count, in milliseconds.
    Average { sum: usize, count: usize },
}

/// A partition label.
pub fn partition_label(name: &str) -> Result<Label, DisError> {
    Ok(Label::Partition(match name {
        "total_put_bytes_per_partition" => PUT_BYTES,
        "total_put_records_per_partition" => PUT_RECORDS,
        "total_get_bytes_per_partition" => GET_BYTES,
        "total_get_records_per_partition" => GET_RECORDS,
        other => return Err(DisError::MetricsLabel(other.to_string())),
    }))
}

/// A stream label.
pub fn stream_label(name: &str) -> Result<Label, DisError> {
    Ok(match name {
        "total_put_bytes_per_stream" => Label::Partition(PUT_BYTES),
        "total_put_records_per_stream" => Label::Partition(PUT_RECORDS),
        "total_get_bytes_per_stream" => Label::Partition(GET_BYTES),
        "total_get_records_per_stream" => Label::Partition(GET_RECORDS),
        "total_put_req_suc_per_stream" => Label::Stream(PUT_REQUESTS),
        "total_get_req_suc_per_stream" => Label::Stream(GET_REQUESTS),
        "traffic_control_put" => Label::Stream(PUT_THROTTLED),
        "traffic_control_get" => Label::Stream(GET_THROTTLED),
        "total_put_req_latency" => Label::Average {
            sum: PUT_LATENCY_US,
            count: PUT_REQUESTS,
        },
        "total_get_req_latency" => Label::Average {
            sum: GET_LATENCY_US,
            count: GET_REQUESTS,
        },
        other => return Err(DisError::MetricsLabel(other.to_string())),
    })
}

/// The labels of a query: `label_list` (comma-separated) wins over `label`.
pub fn labels(
    label: Option<&str>,
    label_list: Option<&str>,
    parse: fn(&str) -> Result<Label, DisError>,
) -> Result<Vec<(String, Label)>, DisError> {
    let names: Vec<&str> = match (label_list.filter(|l| !l.is_empty()), label) {
        (Some(list), _) => list.split(',').map(str::trim).collect(),
        (None, Some(one)) if !one.is_empty() => vec![one],
        _ => {
            return Err(DisError::MetricsLabel(
                "label or label_list is required".into(),
            ))
        }
    };
    names
        .into_iter()
        .map(|n| parse(n).map(|l| (n.to_string(), l)))
        .collect()
}

/// The query period, 10-digit epoch seconds, at most 7 days: as milliseconds.
pub fn period(start: Option<&str>, end: Option<&str>) -> Result<(i64, i64), DisError> {
    let seconds = |what: &str, v: Option<&str>| -> Result<i64, DisError> {
        let v = v.unwrap_or("");
        v.parse::<i64>()
            .ok()
            .filter(|s| (0..10_000_000_000).contains(s))
            .ok_or_else(|| DisError::Period(format!("{what} {v:?} is not a time in epoch seconds")))
    };
    let (start, end) = (seconds("start_time", start)?, seconds("end_time", end)?);
    if start > end {
        return Err(DisError::Period(format!(
            "start_time {start} is after end_time {end}"
        )));
    }
    if (end - start) * 1000 > WINDOW_MS {
        return Err(DisError::PeriodTooLong);
    }
    Ok((start * 1000, end * 1000))
}

/// Host-wide DIS totals on `/metrics`.
#[derive(Clone)]
pub struct HostMetrics {
    pub put_records: IntCounter,
    pub put_bytes: IntCounter,
    pub get_records: IntCounter,
    pub get_bytes: IntCounter,
}

impl HostMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        Ok(Self {
            put_records: counter("fgs_dis_put_records_total", "DIS records accepted")?,
            put_bytes: counter(
                "fgs_dis_put_bytes_total",
                "Data bytes of DIS records accepted",
            )?,
            get_records: counter("fgs_dis_get_records_total", "DIS records read")?,
            get_bytes: counter("fgs_dis_get_bytes_total", "Data bytes of DIS records read")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sum_per_minute_and_forget_after_seven_days() {
        let b = Buckets::<2>::default();
        b.add(60_000, [1, 10]);
        b.add(119_999, [2, 20]);
        b.add(120_000, [4, 40]);
        assert_eq!(
            b.range(0, 200_000),
            vec![(60_000, [3, 30]), (120_000, [4, 40])]
        );
        assert_eq!(
            b.range(90_000, 200_000),
            vec![(60_000, [3, 30]), (120_000, [4, 40])]
        );
        assert_eq!(b.range(180_000, 200_000), vec![]);
        b.add(120_000 + WINDOW_MS + MINUTE_MS, [1, 1]);
        assert_eq!(b.range(0, i64::MAX).len(), 1);
    }

    #[test]
    fn periods_and_labels_are_checked() {
        assert_eq!(
            period(Some("100"), Some("160")).unwrap(),
            (100_000, 160_000)
        );
        assert!(matches!(
            period(Some("160"), Some("100")),
            Err(DisError::Period(_))
        ));
        assert!(matches!(
            period(None, Some("100")),
            Err(DisError::Period(_))
        ));
        assert!(matches!(
            period(Some("0"), Some("604801")),
            Err(DisError::PeriodTooLong)
        ));
        assert_eq!(
            labels(
                Some("x"),
                Some("total_put_bytes_per_partition"),
                partition_label
            )
            .unwrap(),
            vec![(
                "total_put_bytes_per_partition".into(),
                Label::Partition(PUT_BYTES)
            )]
        );
        assert!(labels(Some("nope"), None, stream_label).is_err());
        assert!(labels(None, None, stream_label).is_err());
    }
}
