//! Locking out a guessed credential, as the API gateway does: "If an AK/SK pair fails to be
//! authenticated for more than five consecutive times, the AK/SK pair is locked for 5 minutes"
//! (Huawei Cloud, *Common Errors Related to IAM Authentication Information*). fgs locks after
//! [`MAX_FAILURES`] consecutive failures, for `--auth-lockout` (5 minutes by default); while
//! locked even a right signature or password is refused. The same holds for the user names of
//! `POST /v3/auth/tokens`.
//!
//! Only names of the credentials file have an entry, made once at start: an attacker
//! inventing names grows nothing, and the hot path (a success with no failure recorded) reads
//! two atomics and takes no lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

/// Consecutive failures after which a name is locked.
pub const MAX_FAILURES: u32 = 5;

#[derive(Default)]
struct Entry {
    /// Consecutive failures since the last success or lock.
    failures: AtomicU32,
    /// Until when (milliseconds since the epoch) the name is locked; 0 when it is not.
    locked_until_ms: AtomicI64,
}

/// The failures of each known name.
pub struct Lockout {
    entries: HashMap<String, Entry>,
    period_ms: i64,
}

impl Lockout {
    /// Tracks `names`, locking each for `period` after [`MAX_FAILURES`] failures in a row.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>, period: Duration) -> Self {
        Self {
            entries: names
                .into_iter()
                .map(|n| (n.to_string(), Entry::default()))
                .collect(),
            period_ms: i64::try_from(period.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Whether `name` is locked at `now_ms`.
    pub fn is_locked(&self, name: &str, now_ms: i64) -> bool {
        self.entries
            .get(name)
            .is_some_and(|e| e.locked_until_ms.load(Ordering::Relaxed) > now_ms)
    }

    /// Records a failure of `name` at `now_ms`; locks it on the last one allowed.
    pub fn failed(&self, name: &str, now_ms: i64) {
        let Some(entry) = self.entries.get(name) else {
            return;
        };
        if entry.failures.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_FAILURES {
            entry.failures.store(0, Ordering::Relaxed);
            entry
                .locked_until_ms
                .store(now_ms.saturating_add(self.period_ms), Ordering::Relaxed);
        }
    }

    /// Records a success of `name`: the count of consecutive failures starts again.
    pub fn succeeded(&self, name: &str) {
        if let Some(entry) = self.entries.get(name) {
            if entry.failures.load(Ordering::Relaxed) != 0 {
                entry.failures.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_consecutive_failures_for_the_period() {
        let l = Lockout::new(["ak"], Duration::from_secs(300));
        for _ in 0..MAX_FAILURES - 1 {
            l.failed("ak", 1_000);
        }
        assert!(!l.is_locked("ak", 1_000));
        l.failed("ak", 1_000);
        assert!(l.is_locked("ak", 1_000));
        assert!(l.is_locked("ak", 300_999));
        assert!(!l.is_locked("ak", 301_000));
    }

    #[test]
    fn a_success_starts_the_count_again() {
        let l = Lockout::new(["ak"], Duration::from_secs(300));
        for _ in 0..MAX_FAILURES - 1 {
            l.failed("ak", 0);
        }
        l.succeeded("ak");
        l.failed("ak", 0);
        assert!(!l.is_locked("ak", 0));
    }

    #[test]
    fn unknown_names_are_never_tracked() {
        let l = Lockout::new(["ak"], Duration::from_secs(300));
        for _ in 0..10 {
            l.failed("guess", 0);
        }
        assert!(!l.is_locked("guess", 0));
        assert_eq!(l.entries.len(), 1);
    }
}
