//! The loop that runs async requests, and what happens after each attempt.
//!
//! A waiting request runs when admission control gives its function a slot. After a
//! successful attempt it is SUCCESS and the `on_success` destination gets the outcome; after a
//! failed one it waits for its backoff and runs again while retries remain
//! (`max_async_retry_attempts`), then is FAIL and the `on_failure` destination gets the
//! outcome. A request older than `max_async_event_age_in_seconds` when its turn comes is
//! DISCARD (and goes to `on_failure`). An instance that could not start for the host's reasons
//! (4012 load timeout, a host error) is a system error: the request waits and runs again, with
//! backoff, until its maximum age, without spending its retries. Records exist for every request, whether or not
//! `enable_async_status_log` is set.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use fgs_limits::Permit;
use fgs_runtime::{InvokeFailure, InvokeRequest, InvokeType};
use serde_json::json;

use super::journal::{self, Request, StatusChange};
use super::{now_ms, Job};
use crate::api::App;
use crate::invocation;
use crate::registry::{Destination, Entry};
use crate::urn::{FunctionRef, Qualifier};

/// What the dispatcher decided about a waiting job.
enum Turn {
    Run(Arc<Entry>, Permit),
    /// Too old to run.
    Expired(Arc<Entry>),
    /// Its function no longer exists.
    Gone,
}

/// Runs waiting requests as capacity allows, forever.
pub async fn run(app: Arc<App>) {
    let mut freed = app.admission.subscribe();
    loop {
        match app.queue.take(|job| turn(&app, job)) {
            Ok((job, turn)) => {
                tokio::spawn(attempt(app.clone(), job, turn));
            }
            Err(next_due) => {
                let due = async {
                    match next_due {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = app.queue.changed() => {}
                    _ = freed.changed() => {}
                    _ = due => {}
                }
            }
        }
    }
}

/// Puts this host's requests that were waiting or running when it stopped back in the queue.
pub async fn recover(app: &App) -> Result<usize, crate::store::StoreError> {
    let unfinished = app.journal.unfinished().await?;
    let n = unfinished.len();
    for request in unfinished {
        if request.status == journal::RUNNING {
            tracing::info!(request_id = %request.request_id, "re-running an async request interrupted by a restart");
        }
        app.queue.push(job_of(request));
    }
    Ok(n)
}

pub(crate) fn job_of(r: Request) -> Job {
    Job {
        request_id: r.request_id,
        project_id: r.project_id,
        package: r.package,
        func_name: r.func_name,
        func_id: r.func_id,
        event: Bytes::from(r.event),
        accepted_ms: r.accepted_ms,
        attempts: r.attempts,
        start_retries: 0,
        not_before: None,
        depth: r.depth,
    }
}

/// The version a request was accepted for, if it still exists: `job.func_id` is the
/// version's id ([`Entry::id`]), `func_id` or `func_id:version`.
fn lookup(app: &App, job: &Job) -> Option<Arc<Entry>> {
    let qualifier = match job.func_id.split_once(':') {
        Some((_, version)) => Qualifier::Version(version.to_string()),
        None => Qualifier::None,
    };
    let func = FunctionRef {
        package: job.package.clone(),
        name: job.func_name.clone(),
        qualifier,
    };
    app.registry
        .get(&job.project_id, &func)
        .ok()
        .filter(|e| e.id() == job.func_id)
}

fn turn(app: &App, job: &Job) -> Option<Turn> {
    let Some(entry) = lookup(app, job) else {
        return Some(Turn::Gone);
    };
    let max_age_ms = i64::from(max_age_secs(&entry)) * 1000;
    if now_ms() - job.accepted_ms > max_age_ms {
        return Some(Turn::Expired(entry));
    }
    let permit = invocation::try_admit(app, &entry)?;
    Some(Turn::Run(entry, permit))
}

fn max_age_secs(entry: &Entry) -> u32 {
    entry
        .record
        .async_config
        .as_ref()
        .map(|c| c.max_async_event_age_in_seconds)
        .unwrap_or_else(|| fgs_limits::AsyncLimits::default().default_event_age_secs)
}

fn status(
    job: &Job,
    status: &'static str,
    attempts: u32,
    code: u32,
    message: String,
    done: bool,
) -> StatusChange {
    StatusChange {
        request_id: job.request_id.clone(),
        status,
        attempts,
        error_code: code,
        error_message: message,
        end_ms: done.then(now_ms),
    }
}

async fn attempt(app: Arc<App>, mut job: Job, turn: Turn) {
    let (entry, permit) = match turn {
        Turn::Gone => {
            let message = "function metadata is not found".to_string();
            app.journal.set_status(status(
                &job,
                journal::FAIL,
                job.attempts,
                4024,
                message,
                true,
            ));
            return;
        }
        Turn::Expired(entry) => {
            let message = format!("event older than {} s: discarded", max_age_secs(&entry));
            app.journal.set_status(status(
                &job,
                journal::DISCARD,
                job.attempts,
                0,
                message.clone(),
                true,
            ));
            let error =
                json!({"errorMessage": message, "errorType": "EventAgeExceeded"}).to_string();
            notify(
                &app,
                &entry,
                &job,
                "EventAgeExceeded",
                500,
                error.into_bytes(),
            )
            .await;
            return;
        }
        Turn::Run(entry, permit) => (entry, permit),
    };
    let attempts = job.attempts + 1;
    app.journal.set_status(status(
        &job,
        journal::RUNNING,
        attempts,
        0,
        String::new(),
        false,
    ));
    let request = InvokeRequest {
        request_id: job.request_id.clone(),
        invoke_type: InvokeType::Async,
        body: job.event.clone(),
    };
    // Canceling a running request drops the invocation, and with it the instance.
    let canceled = app.queue.start(&job);
    let outcome = invocation::run(&app, &entry, permit, request, async {
        let _ = canceled.await;
    })
    .await;
    app.queue.finish(&job);
    if app.queue.is_closed() && outcome.as_ref().is_none_or(|o| o.result.is_err()) {
        // The host is stopping and took the instance down with it: the request stays
        // RUNNING, to run again after a restart or on another host of a shared database.
        return;
    }
    let Some(outcome) = outcome else {
        let message = "function invocation canceled".to_string();
        app.journal
            .set_status(status(&job, journal::FAIL, attempts, 4208, message, true));
        return;
    };
    match outcome.result {
        Ok(result) => {
            app.journal.set_status(status(
                &job,
                journal::SUCCESS,
                attempts,
                0,
                String::new(),
                true,
            ));
            notify(&app, &entry, &job, "", 200, result.to_vec()).await;
        }
        Err(failure) if failure.is_start_failure() => {
            // The host could not start an instance (a storm of starts on a busy machine, a
            // host error): a system error, retried with backoff until the event's maximum age
            // and not counted against max_async_retry_attempts, which are the function's.
            job.start_retries += 1;
            tracing::warn!(request_id = %job.request_id, retry = job.start_retries, error = %error_message(&failure), "async request's instance did not start; retrying");
            app.journal.set_status(status(
                &job,
                journal::WAIT,
                job.attempts,
                failure.code(),
                error_message(&failure),
                false,
            ));
            job.not_before = Some(Instant::now() + app.async_settings.backoff(job.start_retries));
            app.queue.push(job);
        }
        Err(failure) => {
            let retries = entry
                .record
                .async_config
                .as_ref()
                .map(|c| c.max_async_retry_attempts)
                .unwrap_or(0);
            let message = error_message(&failure);
            if attempts <= retries {
                app.journal.set_status(status(
                    &job,
                    journal::WAIT,
                    attempts,
                    failure.code(),
                    message,
                    false,
                ));
                job.attempts = attempts;
                job.not_before = Some(Instant::now() + app.async_settings.backoff(attempts));
                app.queue.push(job);
            } else {
                app.journal.set_status(status(
                    &job,
                    journal::FAIL,
                    attempts,
                    failure.code(),
                    message,
                    true,
                ));
                notify(
                    &app,
                    &entry,
                    &job,
                    "UnhandledInvocationError",
                    500,
                    failure.payload().to_vec(),
                )
                .await;
            }
        }
    }
}

fn error_message(failure: &InvokeFailure) -> String {
    serde_json::from_slice::<serde_json::Value>(&failure.payload())
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&failure.payload()).into_owned())
}

/// Sends the outcome of `job` to the function's destination for `condition` ("" = success):
/// a new async request of the destination function, journaled like any other.
async fn notify(
    app: &App,
    entry: &Entry,
    job: &Job,
    condition: &str,
    status_code: u16,
    response: Vec<u8>,
) {
    let Some(config) = &entry.record.async_config else {
        return;
    };
    let target: Option<&Destination> = if condition.is_empty() {
        config.on_success.as_ref()
    } else {
        config.on_failure.as_ref()
    };
    let Some(target) = target else { return };
    let payload = json!({
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "request_context": {
            "request_id": job.request_id,
            "function_urn": entry.spec.urn,
            "condition": condition,
            "approximate_invoke_count": job.attempts + u32::from(condition != "EventAgeExceeded"),
        },
        "request_payload": String::from_utf8_lossy(&job.event),
        "response_context": {
            "status_code": status_code,
            "function_error": if condition.is_empty() { "" } else { "Unhandled" },
        },
        "response_payload": String::from_utf8_lossy(&response),
    });
    // An alias destination routes as an async invocation of it would (without headers).
    let project_id = &entry.record.project_id;
    let destination = FunctionRef::parse(&target.func_urn, project_id)
        .ok()
        .and_then(|func| invocation::route(app, project_id, &func, |_| None).ok());
    let Some(destination) = destination else {
        tracing::warn!(destination = %target.func_urn, request_id = %job.request_id, "async destination function not found");
        return;
    };
    if job.depth >= super::MAX_DESTINATION_DEPTH {
        tracing::warn!(destination = %target.func_urn, request_id = %job.request_id, depth = job.depth,
            "async destination chain stopped: it is {} hops deep", super::MAX_DESTINATION_DEPTH);
        return;
    }
    let payload = payload.to_string().into_bytes();
    if let Err(e) = invocation::submit(app, &destination, payload, job.depth + 1).await {
        tracing::error!(destination = %target.func_urn, error = %e, "cannot submit an async destination request");
    }
}
