//! What `list_function_statistics` answers: per function version, invocations counted in
//! minute buckets (kept a day) and hour buckets (kept a week), in memory. The series of a
//! version holds at most 1 440 + 168 buckets, whatever its traffic; a restart starts them anew.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const MINUTES_KEPT: i64 = 24 * HOUR;
const HOURS_KEPT: i64 = 7 * 24 * HOUR;
/// The longest period that can be asked for, in minutes (a week).
pub const MAX_PERIOD_MINUTES: u32 = 7 * 24 * 60;

/// What happened to one request.
#[derive(Debug, Clone, Copy)]
pub enum Sample {
    /// It ran (`function_error` or `system_error` when it failed).
    Ran {
        duration_ms: f64,
        function_error: bool,
        system_error: bool,
        /// The version's reserved instances, and its invocations running, at the time.
        reserved: u32,
        concurrency: u32,
    },
    /// Admission control refused it (throttled).
    Rejected,
}

/// One bucket's aggregates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    pub count: u64,
    pub function_errors: u64,
    pub system_errors: u64,
    pub rejects: u64,
    pub total_ms: f64,
    pub max_ms: f64,
    pub min_ms: f64,
    pub reserved: u32,
    pub concurrency: u32,
}

impl Bucket {
    fn add(&mut self, sample: Sample) {
        match sample {
            Sample::Rejected => self.rejects += 1,
            Sample::Ran {
                duration_ms,
                function_error,
                system_error,
                reserved,
                concurrency,
            } => {
                self.min_ms = if self.count == 0 {
                    duration_ms
                } else {
                    self.min_ms.min(duration_ms)
                };
                self.count += 1;
                self.function_errors += u64::from(function_error);
                self.system_errors += u64::from(system_error);
                self.total_ms += duration_ms;
                self.max_ms = self.max_ms.max(duration_ms);
                self.reserved = self.reserved.max(reserved);
                self.concurrency = self.concurrency.max(concurrency);
            }
        }
    }

    fn merge(&mut self, other: &Bucket) {
        if other.count > 0 {
            self.min_ms = if self.count == 0 {
                other.min_ms
            } else {
                self.min_ms.min(other.min_ms)
            };
        }
        self.count += other.count;
        self.function_errors += other.function_errors;
        self.system_errors += other.system_errors;
        self.rejects += other.rejects;
        self.total_ms += other.total_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
        self.reserved = self.reserved.max(other.reserved);
        self.concurrency = self.concurrency.max(other.concurrency);
    }
}

/// Counts `sample` in the bucket starting at `start`; a new bucket drops those older than
/// `kept` (so the invoke path only prunes once a minute).
fn add(buckets: &mut BTreeMap<i64, Bucket>, start: i64, kept: i64, sample: Sample) {
    if let Some(bucket) = buckets.get_mut(&start) {
        bucket.add(sample);
        return;
    }
    while buckets
        .first_key_value()
        .is_some_and(|(t, _)| *t < start - kept)
    {
        buckets.pop_first();
    }
    buckets.entry(start).or_default().add(sample);
}

#[derive(Default)]
struct Series {
    minutes: BTreeMap<i64, Bucket>,
    hours: BTreeMap<i64, Bucket>,
}

/// The statistics of every version on this host.
#[derive(Default)]
pub struct Statistics {
    series: Mutex<HashMap<String, Series>>,
}

impl Statistics {
    /// Counts `sample` for version `id` at `now_ms`, and drops buckets past their keeping.
    pub fn record(&self, id: &str, now_ms: i64, sample: Sample) {
        let mut all = self.series.lock().unwrap();
        let series = match all.get_mut(id) {
            Some(series) => series,
            None => all.entry(id.to_string()).or_default(),
        };
        let minute = now_ms - now_ms.rem_euclid(MINUTE);
        let hour = now_ms - now_ms.rem_euclid(HOUR);
        add(&mut series.minutes, minute, MINUTES_KEPT, sample);
        add(&mut series.hours, hour, HOURS_KEPT, sample);
    }

    /// Forgets the versions `ids` (deleted).
    pub fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut all = self.series.lock().unwrap();
        for id in ids {
            all.remove(id);
        }
    }

    /// The buckets of the last `period_minutes` (1…[`MAX_PERIOD_MINUTES`]) ending now, the
    /// versions `ids` summed: minute buckets for an hour or less, hour buckets beyond. Each
    /// point is `(bucket start ms, aggregates or None without data)`, oldest first.
    pub fn query(
        &self,
        ids: &[&str],
        now_ms: i64,
        period_minutes: u32,
    ) -> Vec<(i64, Option<Bucket>)> {
        let (size, minutes) = if period_minutes <= 60 {
            (MINUTE, true)
        } else {
            (HOUR, false)
        };
        let points = (u64::from(period_minutes) * MINUTE as u64).div_ceil(size as u64) as i64;
        let end = now_ms - now_ms.rem_euclid(size);
        let all = self.series.lock().unwrap();
        (0..points)
            .rev()
            .map(|back| {
                let start = end - back * size;
                let mut sum: Option<Bucket> = None;
                for series in ids.iter().filter_map(|id| all.get(*id)) {
                    let map = if minutes {
                        &series.minutes
                    } else {
                        &series.hours
                    };
                    if let Some(bucket) = map.get(&start) {
                        sum.get_or_insert_with(Bucket::default).merge(bucket);
                    }
                }
                (start, sum)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(ms: f64, function_error: bool) -> Sample {
        Sample::Ran {
            duration_ms: ms,
            function_error,
            system_error: false,
            reserved: 0,
            concurrency: 1,
        }
    }

    #[test]
    fn aggregates_per_bucket_and_sums_versions() {
        let s = Statistics::default();
        let t = 10 * HOUR + 5 * MINUTE + 3_000;
        s.record("f", t, ran(10.0, false));
        s.record("f", t + 1_000, ran(30.0, true));
        s.record("f:v1", t, ran(5.0, false));
        s.record("f", t, Sample::Rejected);
        let points = s.query(&["f"], t + 2_000, 5);
        assert_eq!(points.len(), 5);
        assert!(points[..4].iter().all(|(_, b)| b.is_none()));
        let (start, bucket) = points[4];
        assert_eq!(start, 10 * HOUR + 5 * MINUTE);
        let b = bucket.unwrap();
        assert_eq!((b.count, b.function_errors, b.rejects), (2, 1, 1));
        assert_eq!((b.min_ms, b.max_ms, b.total_ms), (10.0, 30.0, 40.0));
        let both = s.query(&["f", "f:v1"], t, 60)[59].1.unwrap();
        assert_eq!((both.count, both.min_ms), (3, 5.0));
        // Beyond an hour: hour buckets.
        let hours = s.query(&["f"], t, 180);
        assert_eq!(hours.len(), 3);
        assert_eq!(hours[2], (10 * HOUR, hours[2].1));
        assert_eq!(hours[2].1.unwrap().count, 2);
    }

    #[test]
    fn keeps_a_day_of_minutes_and_a_week_of_hours() {
        let s = Statistics::default();
        for minute in 0..(3 * 24 * 60) {
            s.record("f", minute * MINUTE, ran(1.0, false));
        }
        let all = s.series.lock().unwrap();
        let series = &all["f"];
        assert!(series.minutes.len() <= 24 * 60 + 1);
        assert_eq!(series.hours.len(), 3 * 24);
    }
}
