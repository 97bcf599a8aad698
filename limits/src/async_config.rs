//! Limits of asynchronous invocation and of a function's concurrency.

use crate::LimitError;

/// The documented bounds of an async invocation policy, with FunctionGraph's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncLimits {
    /// Oldest an event may get before it is discarded, seconds (1…86400, default 3600).
    pub max_event_age_secs: (u32, u32),
    pub default_event_age_secs: u32,
    /// Retries after a failed attempt (0…3, default 1).
    pub max_retry_attempts: (u32, u32),
    pub default_retry_attempts: u32,
}

impl Default for AsyncLimits {
    fn default() -> Self {
        Self {
            max_event_age_secs: (1, 86_400),
            default_event_age_secs: 3600,
            max_retry_attempts: (0, 3),
            default_retry_attempts: 1,
        }
    }
}

impl AsyncLimits {
    pub fn event_age(&self, secs: Option<i64>) -> Result<u32, LimitError> {
        let (min, max) = self.max_event_age_secs;
        match secs {
            None => Ok(self.default_event_age_secs),
            Some(s) if s >= i64::from(min) && s <= i64::from(max) => Ok(s as u32),
            Some(s) => Err(LimitError::AsyncConfig(format!(
                "max_async_event_age_in_seconds {s} is outside {min}…{max}"
            ))),
        }
    }

    pub fn retry_attempts(&self, attempts: Option<i64>) -> Result<u32, LimitError> {
        let (min, max) = self.max_retry_attempts;
        match attempts {
            None => Ok(self.default_retry_attempts),
            Some(a) if a >= i64::from(min) && a <= i64::from(max) => Ok(a as u32),
            Some(a) => Err(LimitError::AsyncConfig(format!(
                "max_async_retry_attempts {a} is outside {min}…{max}"
            ))),
        }
    }
}

/// `max_instance_num`: -1 (unlimited), 0 (disabled) or 1…1000.
pub fn validate_max_instances(n: i64) -> Result<i32, LimitError> {
    if (-1..=1000).contains(&n) {
        Ok(n as i32)
    } else {
        Err(LimitError::Concurrency(format!(
            "max_instance_num {n} is outside -1…1000"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_defaults() {
        let l = AsyncLimits::default();
        assert_eq!(l.event_age(None).unwrap(), 3600);
        assert_eq!(l.event_age(Some(1)).unwrap(), 1);
        assert!(l.event_age(Some(0)).is_err() && l.event_age(Some(86_401)).is_err());
        assert_eq!(l.retry_attempts(None).unwrap(), 1);
        assert_eq!(l.retry_attempts(Some(3)).unwrap(), 3);
        assert!(l.retry_attempts(Some(4)).is_err() && l.retry_attempts(Some(-1)).is_err());
        assert_eq!(validate_max_instances(-1).unwrap(), -1);
        assert!(validate_max_instances(1001).is_err() && validate_max_instances(-2).is_err());
    }
}
