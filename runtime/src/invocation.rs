//! One invocation's input and outcome.

use std::time::Duration;

use bytes::Bytes;
use fgs_sandbox::Exit;

/// How the function was invoked, as passed to the runtime in `X-CFF-Invoke-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeType {
    Sync,
    Async,
}

impl InvokeType {
    pub fn as_str(self) -> &'static str {
        match self {
            InvokeType::Sync => "sync",
            InvokeType::Async => "async",
        }
    }
}

/// An event to run through a function.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub request_id: String,
    pub invoke_type: InvokeType,
    /// The event, as the caller sent it.
    pub body: Bytes,
}

/// A function that did not produce a result, with FunctionGraph's runtime error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeFailure {
    /// The handler raised or threw; the body is the runtime's error JSON
    /// (`errorMessage`, `errorType`, `stackTrace`).
    Function(Bytes),
    /// The handler did not finish within the function's timeout.
    Timeout { secs: u32 },
    /// The initializer raised or threw; the body is its error JSON.
    InitFailed(Bytes),
    /// The initializer did not finish within `initializer_timeout`.
    InitTimeout { secs: u32 },
    /// The runtime did not ask for work within the timeout (no initializer configured).
    LoadTimeout { secs: u32 },
    /// A custom runtime's package has no executable `bootstrap`.
    BootstrapNotFound,
    /// The instance's process ended during the invocation.
    Crashed(Exit),
    /// The instance reached its memory limit and the kernel killed it.
    OutOfMemory,
    /// The function failed with its `/tmp` full; the body is its error JSON.
    DiskFull(Bytes),
    /// The result is larger than the response limit.
    ResponseTooLarge { size: u64, max: u64 },
    /// A WebAssembly instance trapped (a panic, an unreachable, a stack overflow…); the
    /// trap's message. The instance is discarded.
    Trap(String),
    /// The function's entry point (the component named by the handler) is missing or
    /// invalid.
    EntryNotFound(String),
    /// The instance could not be started for a reason of the host, not the function.
    System(String),
}

impl InvokeFailure {
    /// FunctionGraph's runtime error code (`X-Func-Err-Code`).
    pub fn code(&self) -> u32 {
        match self {
            InvokeFailure::EntryNotFound(_) => 4001,
            InvokeFailure::Function(_) | InvokeFailure::Trap(_) => 4002,
            InvokeFailure::ResponseTooLarge { .. } => 4008,
            InvokeFailure::Timeout { .. } => 4010,
            InvokeFailure::LoadTimeout { .. } => 4012,
            InvokeFailure::InitFailed(_) => 4201,
            InvokeFailure::BootstrapNotFound => 4202,
            InvokeFailure::Crashed(_) => 4204,
            InvokeFailure::OutOfMemory => 4205,
            InvokeFailure::DiskFull(_) => 4207,
            InvokeFailure::InitTimeout { .. } => 4211,
            InvokeFailure::System(_) => 10500,
        }
    }

    /// Whether the instance can serve further invocations after this failure: yes when the
    /// function merely returned an error; no after a timeout, crash, trap, OOM kill or failed
    /// initialization, which leave it in an unknown state.
    pub fn keeps_instance(&self) -> bool {
        matches!(
            self,
            InvokeFailure::Function(_)
                | InvokeFailure::ResponseTooLarge { .. }
                | InvokeFailure::DiskFull(_)
        )
    }

    /// Whether no instance could be started for the host's reasons: the runtime did not come
    /// up within the start budget (on a machine busy with other starts), or the host failed.
    pub fn is_start_failure(&self) -> bool {
        matches!(
            self,
            InvokeFailure::LoadTimeout { .. } | InvokeFailure::System(_)
        )
    }

    /// Whether the failure is the function's (codes 4001–9999) rather than the platform's.
    pub fn is_function_error(&self) -> bool {
        self.code() < 10000
    }

    /// The error payload returned to the caller: the function's own error JSON where it
    /// produced one, otherwise `{"errorCode", "errorMessage", "errorType", "stackTrace"}`
    /// in the same shape.
    pub fn payload(&self) -> Bytes {
        let (error_type, message) = match self {
            InvokeFailure::Function(body)
            | InvokeFailure::InitFailed(body)
            | InvokeFailure::DiskFull(body)
                if is_error_json(body) =>
            {
                return body.clone()
            }
            InvokeFailure::Function(body) => (
                "FunctionError",
                format!(
                    "function invocation exception, error: {}",
                    String::from_utf8_lossy(body)
                ),
            ),
            InvokeFailure::InitFailed(body) => (
                "InitializerError",
                format!(
                    "function initialization failed: {}",
                    String::from_utf8_lossy(body)
                ),
            ),
            InvokeFailure::DiskFull(body) => (
                "DiskFull",
                format!("disk usage exceed limit: {}", String::from_utf8_lossy(body)),
            ),
            InvokeFailure::Trap(message) => (
                "Trap",
                format!("function invocation exception, error: {message}"),
            ),
            InvokeFailure::EntryNotFound(why) => {
                ("EntryNotFound", format!("function entry exception: {why}"))
            }
            InvokeFailure::OutOfMemory => {
                ("OutOfMemory", "runtime memory limit exceeded".to_string())
            }
            InvokeFailure::Timeout { secs } => {
                ("FunctionTimeout", format!("call invoke timeout {secs}s"))
            }
            InvokeFailure::InitTimeout { secs } => (
                "InitializerTimeout",
                format!("runtime initialization timed out after {secs}s"),
            ),
            InvokeFailure::LoadTimeout { secs } => (
                "LoadTimeout",
                format!("load function timed out after {secs}s"),
            ),
            InvokeFailure::BootstrapNotFound => (
                "BootstrapNotFound",
                "runtime bootstrap file is not found".to_string(),
            ),
            InvokeFailure::Crashed(exit) => match exit.signal_name() {
                Some(sig) => (
                    "RuntimeCrash",
                    format!("runtime process is exited: killed by {sig}"),
                ),
                None => ("RuntimeCrash", format!("runtime process is exited: {exit}")),
            },
            InvokeFailure::ResponseTooLarge { size, max } => (
                "FunctionResponseTooLarge",
                format!("response body size {size} exceeds the limit of {max}"),
            ),
            InvokeFailure::System(why) => ("SystemError", why.clone()),
        };
        let json = serde_json::json!({
            "errorCode": self.code(),
            "errorMessage": message,
            "errorType": error_type,
            "stackTrace": [],
        });
        Bytes::from(json.to_string())
    }
}

fn is_error_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.get("errorMessage").is_some())
        .unwrap_or(false)
}

/// What an invocation produced.
#[derive(Debug, Clone)]
pub struct InvokeOutcome {
    pub request_id: String,
    /// The function's result, or why there is none.
    pub result: Result<Bytes, InvokeFailure>,
    /// What the function wrote (its log is framed from it on demand: [`InvokeOutcome::log`]).
    pub output: Vec<u8>,
    /// The function version that ran, and when the invocation started and finished.
    pub version: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// Execution time of the handler.
    pub duration: Duration,
    /// Peak resident memory of the instance, MB.
    pub memory_used_mb: f64,
    /// The configured memory, MB.
    pub memory_size_mb: u32,
    /// Whether a new instance was started for this invocation.
    pub cold_start: bool,
    /// For a cold start: whether the instance was a prewarmed sandbox.
    pub prewarmed: bool,
    /// For a cold start: how long the instance took to start and initialize (until it could
    /// take the request).
    pub init_duration: Option<Duration>,
}

impl InvokeOutcome {
    /// The invocation's log in FunctionGraph's framing: start line, the function's output,
    /// finish line. Made only when asked for (a tail log), not on every invocation.
    pub fn log(&self) -> Vec<u8> {
        LogFrame {
            request_id: &self.request_id,
            version: &self.version,
            started_at: self.started_at,
            finished_at: self.finished_at,
            duration: self.duration,
            memory_used_mb: self.memory_used_mb,
            memory_size_mb: self.memory_size_mb,
            failed: self.result.is_err(),
        }
        .render(&self.output)
    }

    /// Billed duration in whole milliseconds (FunctionGraph bills per 1 ms, rounding up).
    pub fn billing_duration_ms(&self) -> u64 {
        billing_ms(self.duration)
    }
}

/// What frames an invocation's output into its log, apart from the outcome: a log kept
/// without its frame (the invocation logs store only the output) is framed again with it.
pub struct LogFrame<'a> {
    pub request_id: &'a str,
    pub version: &'a str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub duration: Duration,
    pub memory_used_mb: f64,
    pub memory_size_mb: u32,
    pub failed: bool,
}

impl LogFrame<'_> {
    /// `output` between FunctionGraph's start and finish lines.
    pub fn render(&self, output: &[u8]) -> Vec<u8> {
        let fmt = "%Y-%m-%dT%H:%M:%SZ";
        let request_id = self.request_id;
        let mut log = format!(
            "{} Start invoke request '{request_id}', version: {}\n",
            self.started_at.format(fmt),
            self.version
        )
        .into_bytes();
        log.extend_from_slice(output);
        if !output.is_empty() && !output.ends_with(b"\n") {
            log.push(b'\n');
        }
        let ms = self.duration.as_secs_f64() * 1000.0;
        let billing = billing_ms(self.duration);
        let failed = if self.failed { "(invoke Failed)" } else { "" };
        log.extend_from_slice(
            format!(
                "{} Finish invoke request '{request_id}'{failed}, duration: {ms:.3}ms, billing duration: {billing}ms, memory used: {:.3}MB, billing memory: {}MB\n",
                self.finished_at.format(fmt),
                self.memory_used_mb,
                self.memory_size_mb,
            )
            .as_bytes(),
        );
        log
    }
}

/// Billed milliseconds of a run: whole milliseconds, rounded up, at least one.
pub(crate) fn billing_ms(duration: Duration) -> u64 {
    duration.as_micros().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_payloads() {
        let own = Bytes::from_static(
            br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#,
        );
        assert_eq!(InvokeFailure::Function(own.clone()).payload(), own);
        let t = InvokeFailure::Timeout { secs: 3 };
        assert_eq!(t.code(), 4010);
        let v: serde_json::Value = serde_json::from_slice(&t.payload()).unwrap();
        assert_eq!(v["errorMessage"], "call invoke timeout 3s");
        assert_eq!(v["errorCode"], 4010);
        assert!(t.is_function_error());
        assert!(!InvokeFailure::System("x".into()).is_function_error());
        let crash = InvokeFailure::Crashed(Exit::Signal(11));
        assert!(String::from_utf8_lossy(&crash.payload()).contains("SIGSEGV"));
    }
}
