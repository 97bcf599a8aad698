//! Asynchronous invocation: accepted requests are durable, then run in the background with
//! the function's async policy (retries with backoff, maximum event age, destinations).
//!
//! - [`journal`]: the durable record of every request in the host's database (group commit),
//!   each request owned by one host.
//! - [`queue`]: requests waiting to run, per function, with delayed retries; taken fairly
//!   across functions (round robin) as admission control frees capacity.
//! - [`dispatch`]: the loop that runs them, and what happens after each attempt.
//!
//! Delivery is at least once: a request is journaled before the 202 answer, and a host that
//! restarts runs again every request of its own that was waiting or running (one that was
//! running may thus run twice); in a shared database, another host takes over the requests of
//! a host that stopped renewing its membership (`cluster`).

pub mod dispatch;
pub mod journal;
pub mod queue;

use std::time::Duration;

pub use journal::Journal;
pub use queue::{Job, Queue, QueueFull, QueueLimits};

/// How many destination hops a request may be from a caller's: a function that is its own
/// destination (or a cycle of them) stops there instead of running forever (fgs's choice).
pub const MAX_DESTINATION_DEPTH: u32 = 4;

/// Settings of async invocation.
#[derive(Debug, Clone)]
pub struct AsyncSettings {
    /// Delay before the first retry; doubles with every further retry (at most 5 minutes).
    pub retry_delay: Duration,
}

impl AsyncSettings {
    /// The delay before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_delay
            .saturating_mul(factor)
            .min(Duration::from_secs(300))
    }
}

/// Deletes the records of requests that ended longer than `retention` ago, every minute (or
/// every `retention`, when shorter).
pub async fn prune_records(journal: Journal, retention: Duration) {
    let period = retention.clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let before = now_ms() - retention.as_millis() as i64;
        match journal.prune(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "pruned async records past their retention"),
            Err(e) => tracing::warn!(error = %e, "cannot prune async records"),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// FunctionGraph's record time format (`YYYY-MM-DDTHH:mm:ss`, UTC).
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = AsyncSettings {
            retry_delay: Duration::from_millis(100),
        };
        assert_eq!(s.backoff(1), Duration::from_millis(100));
        assert_eq!(s.backoff(3), Duration::from_millis(400));
        assert_eq!(s.backoff(40), Duration::from_secs(300));
        assert_eq!(format_ms(0), "1970-01-01T00:00:00");
    }
}
