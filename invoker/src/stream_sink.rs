//! The FunctionGraph sink of event streams: delivers a batch to a function of this host,
//! synchronously (through admission control and an instance, a function error failing the
//! delivery) or asynchronously (journaled durably like any async request).

use std::sync::Arc;

use fgs_eventstream::engine::{FunctionSink, SinkFuture};
use fgs_runtime::{InvokeRequest, InvokeType};

use crate::api::App;
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
            // Through an alias, its weights choose the version (a stream sends no headers).
            let roll = (uuid::Uuid::new_v4().as_u128() % 100) as u32;
            let entry = app
                .registry
                .route(project_id, &func, |_| None, roll)
                .map_err(|e| e.to_string())?;
            if !sync {
                return crate::asynchronous::submit(app, &entry, payload, 0)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string());
            }
            let _permit = app
                .admission
                .try_acquire(project_id, entry.id(), entry.record.max_instance_num)
                .map_err(|refusal| {
                    app.reject(&entry);
                    format!("function throttled: {refusal:?}")
                })?;
            let request = InvokeRequest {
                request_id: uuid::Uuid::new_v4().to_string(),
                invoke_type: InvokeType::Sync,
                body: payload.into(),
            };
            let outcome = app.pool.invoke(entry.spec.clone(), request).await;
            app.observe(&entry, &outcome);
            outcome
                .result
                .map(drop)
                .map_err(|failure| String::from_utf8_lossy(&failure.payload()).into_owned())
        })
    }
}
