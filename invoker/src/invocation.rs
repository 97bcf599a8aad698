//! The one invocation path. Every caller — the REST API (sync and async), the async
//! dispatcher, async destinations, event streams and triggers — resolves its target, admits,
//! runs and records (metrics, statistics, invocation logs) an invocation through these functions, and none has a copy of its own:
//! the seam Spin draws between its triggers and its executor.
//!
//! - [`route`]: the URN and qualifier to the version that runs (an alias chooses per request).
//! - [`admit`] / [`try_admit`]: admission control (host, tenant, function concurrency).
//! - [`run`]: an instance runs the request; metrics and statistics are recorded.
//! - [`forward`]: an HTTP function's instance answers an HTTP request (the gateway's).
//! - [`submit`]: an async request is journaled durably, then queued for the dispatcher.
//! - [`invoke`]: all of it for a synchronous caller without HTTP (streams, triggers).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use fgs_limits::{Permit, Refusal};
use fgs_runtime::{HttpBody, InvokeOutcome, InvokeRequest, InvokeType};
use thiserror::Error;

use crate::api::App;
use crate::asynchronous::{dispatch, journal, now_ms, QueueFull};
use crate::invocation_logs::Finished;
use crate::registry::{Entry, RegistryError};
use crate::statistics::Sample;
use crate::store::StoreError;
use crate::urn::FunctionRef;

/// Why an invocation was not run or not accepted.
#[derive(Debug, Error)]
pub enum InvokeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Admission control refused it.
    #[error("refused by admission control: {0:?}")]
    Refused(Refusal),
    /// The async queues have no room.
    #[error("the async queue is full: {0:?}")]
    QueueFull(QueueFull),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The version an invocation of `func` runs: through an alias, the one its weights (one
/// uniform roll of 0..100 per request) or its rules over the request's headers (`header`
/// looks one up) choose.
pub fn route<'h>(
    app: &App,
    project_id: &str,
    func: &FunctionRef,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<Arc<Entry>, InvokeError> {
    // The roll costs a random number: only an alias asks for it.
    let roll = || (uuid::Uuid::new_v4().as_u128() % 100) as u32;
    Ok(app.registry.route(project_id, func, header, roll)?)
}

/// Admits an invocation of `entry` now, or refuses it (counted as a rejection).
pub fn admit(app: &App, entry: &Entry) -> Result<Permit, InvokeError> {
    app.admission
        .try_acquire(
            &entry.record.project_id,
            entry.id(),
            entry.record.max_instance_num,
        )
        .map_err(|refusal| {
            app.statistics
                .record(entry.id(), now_ms(), Sample::Rejected);
            InvokeError::Refused(refusal)
        })
}

/// Admits queued work if there is room now; `None` means it waits (which is no rejection).
pub fn try_admit(app: &App, entry: &Entry) -> Option<Permit> {
    app.admission
        .try_acquire(
            &entry.record.project_id,
            entry.id(),
            entry.record.max_instance_num,
        )
        .ok()
}

/// Runs `request` on an instance of `entry` under `permit` and records it, unless `cancel`
/// completes first (then the invocation, and with it the instance, is dropped: `None`).
pub async fn run(
    app: &App,
    entry: &Entry,
    permit: Permit,
    request: InvokeRequest,
    cancel: impl Future<Output = ()>,
) -> Option<InvokeOutcome> {
    let invoke_type = request.invoke_type;
    let outcome = tokio::select! {
        outcome = app.pool.invoke(entry.spec.clone(), request) => outcome,
        _ = cancel => return None,
    };
    observe(app, entry, invoke_type, &outcome);
    drop(permit);
    Some(outcome)
}

/// Forwards `request` to an instance of the HTTP function `entry` under `permit` and records
/// it, unless `cancel` completes first (`None`). The outcome's result carries no body: the
/// function's response does.
pub async fn forward(
    app: &App,
    entry: &Entry,
    permit: Permit,
    request_id: &str,
    request: hyper::Request<HttpBody>,
    cancel: impl Future<Output = ()>,
) -> Option<(InvokeOutcome, Option<hyper::Response<Bytes>>)> {
    let forwarded = tokio::select! {
        forwarded = app.pool.forward(entry.spec.clone(), request_id, request) => forwarded,
        _ = cancel => return None,
    };
    observe(app, entry, InvokeType::Sync, &forwarded.0);
    drop(permit);
    Some(forwarded)
}

/// Runs a synchronous invocation of `func` with `body` for a caller without HTTP headers (an
/// event stream, a trigger): routed, admitted, run, recorded.
pub async fn invoke(
    app: &App,
    project_id: &str,
    func: &FunctionRef,
    body: Bytes,
) -> Result<(Arc<Entry>, InvokeOutcome), InvokeError> {
    let entry = route(app, project_id, func, |_| None)?;
    let permit = admit(app, &entry)?;
    let request = InvokeRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        invoke_type: InvokeType::Sync,
        body,
    };
    let outcome = run(app, &entry, permit, request, std::future::pending())
        .await
        .expect("never canceled");
    Ok((entry, outcome))
}

/// Accepts an async request for `entry`, `depth` destination hops from a caller's: checks
/// there is room in its queues, journals it durably, then queues it. Returns its request id.
/// The journaling and the hand-off to the queue run on a task of their own: a caller that goes
/// away meanwhile (a client disconnecting) cannot leave a journaled request unqueued.
pub async fn submit(
    app: &App,
    entry: &Entry,
    event: Vec<u8>,
    depth: u32,
) -> Result<String, InvokeError> {
    app.queue
        .has_room(&entry.record.project_id, entry.id())
        .map_err(InvokeError::QueueFull)?;
    let request = journal::Request {
        request_id: uuid::Uuid::new_v4().to_string(),
        project_id: entry.record.project_id.clone(),
        package: entry.record.package.clone(),
        func_name: entry.record.func_name.clone(),
        func_id: entry.id().to_string(),
        event,
        accepted_ms: now_ms(),
        attempts: 0,
        status: journal::WAIT.into(),
        depth,
    };
    let (journal, queue) = (app.journal.clone(), app.queue.clone());
    tokio::spawn(async move {
        journal.accept(request.clone()).await?;
        let request_id = request.request_id.clone();
        queue.push(dispatch::job_of(request));
        Ok(request_id)
    })
    .await
    .map_err(|e| InvokeError::Store(StoreError::from(e)))?
}

/// Accepts an async request of `func` for a caller without HTTP headers (a trigger, an event
/// stream): routed, then [`submit`]ted. Returns its request id.
pub async fn submit_to(
    app: &App,
    project_id: &str,
    func: &FunctionRef,
    event: Vec<u8>,
) -> Result<String, InvokeError> {
    let entry = route(app, project_id, func, |_| None)?;
    submit(app, &entry, event, 0).await
}

/// Records an invocation of `entry` that ran: in the metrics, the statistics and the
/// function's invocation logs.
fn observe(app: &App, entry: &Entry, invoke_type: InvokeType, outcome: &InvokeOutcome) {
    app.logs.record(Finished {
        func_id: entry.record.func_id.clone(),
        invoke_type: invoke_type.as_str(),
        outcome: outcome.clone(),
    });
    app.metrics
        .observe(&entry.spec.urn, &entry.record.runtime, outcome);
    let failure = outcome.result.as_ref().err();
    let function_error = failure.is_some_and(|f| f.is_function_error());
    app.statistics.record(
        entry.id(),
        now_ms(),
        Sample::Ran {
            duration_ms: outcome.duration.as_secs_f64() * 1000.0,
            function_error,
            system_error: failure.is_some() && !function_error,
            reserved: entry.record.reserved_instances,
            concurrency: app.admission.running_function(entry.id()) as u32,
        },
    );
}
