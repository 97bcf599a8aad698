//! The FunctionGraph sink of event streams: delivers a batch to a function of this host,
//! synchronously (through admission control and an instance, a function error failing the
//! delivery) or asynchronously (journaled durably like any async request).

use std::sync::Arc;

use fgs_eventstream::engine::{FunctionSink, SinkFuture};

use crate::api::App;
use crate::invocation;
use crate::urn::FunctionRef;

pub struct InvokerSink(pub Arc<App>);

impl FunctionSink for InvokerSink {
    fn deliver<'a>(
        &'a self,
        project_id: &'a str,
        urn: &'a str,
        payload: Vec<u8>,
        sync: bool,
    ) -> SinkFuture<'a> {
        Box::pin(async move {
            let app = &self.0;
            let func = FunctionRef::parse(urn, project_id).map_err(|e| e.msg)?;
            if !sync {
                return invocation::submit_to(app, project_id, &func, payload)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string());
            }
            let (_, outcome) = invocation::invoke(app, project_id, &func, payload.into())
                .await
                .map_err(|e| e.to_string())?;
            outcome
                .result
                .map(drop)
                .map_err(|failure| String::from_utf8_lossy(&failure.payload()).into_owned())
        })
    }
}
