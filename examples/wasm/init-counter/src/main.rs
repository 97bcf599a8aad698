//! Counts initializer runs and invocations of its instance; an event of `"panic"` traps,
//! `"fail"` returns a function error.

use std::sync::atomic::{AtomicU32, Ordering};

use fgs_guest::{Context, FunctionError, LogLevel};

static INITS: AtomicU32 = AtomicU32::new(0);
static CALLS: AtomicU32 = AtomicU32::new(0);

struct Counter;

impl fgs_guest::Handler for Counter {
    fn initialize(ctx: &Context) -> Result<(), FunctionError> {
        INITS.fetch_add(1, Ordering::SeqCst);
        ctx.log(LogLevel::Info, "initialized");
        Ok(())
    }

    fn handle(event: Vec<u8>, ctx: &Context) -> Result<Vec<u8>, FunctionError> {
        let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        match event.as_slice() {
            b"\"panic\"" => panic!("asked to panic"),
            b"\"fail\"" => return Err(FunctionError::new("CounterError", "asked to fail")),
            _ => {}
        }
        println!("call {calls} on stdout");
        eprintln!("call {calls} on stderr");
        ctx.log(LogLevel::Warn, &format!("call {calls} via the logger"));
        let user = ctx.user_data("GREETING").unwrap_or_default();
        let body = format!(
            r#"{{"inits":{},"calls":{calls},"request_id":"{}","function":"{}","memory":{},"remaining_ms":{},"user_data":"{user}","env":"{}"}}"#,
            INITS.load(Ordering::SeqCst),
            ctx.request_id(),
            ctx.function_name(),
            ctx.memory_size(),
            ctx.remaining_time_in_milli_seconds(),
            std::env::var("GREETING").unwrap_or_default(),
        );
        Ok(body.into_bytes())
    }
}

fgs_guest::function!(Counter);

fn main() {}
