//! An HTTP function's instance (runtime `http`): a sandboxed process whose `bootstrap` serves
//! HTTP on 127.0.0.1:8000, and the keep-alive connection fgs forwards requests on.
//!
//! Each instance has port 8000 to itself because it has a network namespace of its own (the
//! namespace sandbox with `--network isolated` or `none`); fgs connects from inside that
//! namespace. Without one (the process sandbox, `--network host`) every instance would share
//! the host's 127.0.0.1:8000 (fgs's own default API port), so HTTP functions do not start there.
//!
//! The instance is ready when its port accepts a connection (within the start budget, which
//! does not count against the function's timeout). The request's body is streamed to it; its
//! answer is read up to the response limit, against the function's timeout.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use fgs_sandbox::Sandbox;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::process_instance::ProcessInstance;
use crate::{FunctionSpec, InvokeFailure, RuntimeLayout};

/// Where an HTTP function's server listens, in its own namespace.
const PORT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8000);
/// How long the bootstrap may take to listen.
const START_BUDGET: Duration = Duration::from_secs(30);

/// A request's body as it is forwarded (streamed).
pub type HttpBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub(crate) struct HttpInstance {
    process: ProcessInstance,
    sender: Option<SendRequest<HttpBody>>,
    max_response: u64,
}

impl HttpInstance {
    /// Starts the bootstrap and waits until it listens.
    pub async fn start(
        spec: Arc<FunctionSpec>,
        layout: &RuntimeLayout,
        sandbox: &dyn Sandbox,
        max_response: u64,
    ) -> Result<Self, InvokeFailure> {
        let process = ProcessInstance::start(spec, layout, sandbox, max_response, None).await?;
        if process.namespace().is_none() {
            process.stop().await;
            return Err(InvokeFailure::System(
                "HTTP functions need instances with a network namespace of their own (each its own 127.0.0.1:8000): run fgs as root with the namespace sandbox and --network isolated or none".into(),
            ));
        }
        let mut instance = Self {
            process,
            sender: None,
            max_response,
        };
        let deadline = tokio::time::Instant::now() + START_BUDGET;
        loop {
            match connect(&instance.process).await {
                Ok(sender) => {
                    instance.sender = Some(sender);
                    instance.process.settle_cpu();
                    return Ok(instance);
                }
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(_) => {
                    instance.process.discard();
                    return Err(InvokeFailure::LoadTimeout {
                        secs: START_BUDGET.as_secs() as u32,
                    });
                }
            }
            tokio::select! {
                exit = instance.process.exited() => return Err(InvokeFailure::Crashed(exit)),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    }

    /// Forwards `request`; answers the function's response (its body read whole, up to the
    /// response limit) and the time it took.
    pub async fn forward(
        &mut self,
        request: hyper::Request<HttpBody>,
    ) -> (Result<hyper::Response<Bytes>, InvokeFailure>, Duration) {
        let began = Instant::now();
        let timeout = Duration::from_secs(u64::from(self.process.spec.timeout_secs));
        let answer = tokio::select! {
            answer = exchange(&mut self.sender, &self.process, self.max_response, request) => answer,
            exit = self.process.exited() => Err(InvokeFailure::Crashed(exit)),
            _ = tokio::time::sleep(timeout) => Err(InvokeFailure::Timeout { secs: self.process.spec.timeout_secs }),
        };
        if answer.as_ref().is_err_and(|f| !f.keeps_instance()) {
            self.sender = None;
            self.process.discard();
        }
        self.process.last_used = Instant::now();
        (answer, began.elapsed())
    }

    pub fn process(&self) -> &ProcessInstance {
        &self.process
    }

    pub fn into_process(self) -> ProcessInstance {
        self.process
    }
}

/// A new HTTP/1.1 connection to the instance's port, from inside its namespace.
async fn connect(process: &ProcessInstance) -> std::io::Result<SendRequest<HttpBody>> {
    let namespace = process.namespace().expect("checked at start");
    let stream = tokio::task::block_in_place(|| namespace.connect(PORT))?;
    stream.set_nonblocking(true)?;
    let stream = tokio::net::TcpStream::from_std(stream)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request and its response on the instance's connection (`sender`, made anew when
/// closed); the body is read up to `max_response`.
async fn exchange(
    sender: &mut Option<SendRequest<HttpBody>>,
    process: &ProcessInstance,
    max_response: u64,
    request: hyper::Request<HttpBody>,
) -> Result<hyper::Response<Bytes>, InvokeFailure> {
    let broken = |e: String| {
        InvokeFailure::Function(Bytes::from(
            serde_json::json!({
                "errorType": "HttpFunctionError",
                "errorMessage": format!("the function's server at 127.0.0.1:8000 failed: {e}"),
            })
            .to_string(),
        ))
    };
    let reusable = sender.as_ref().is_some_and(|s| !s.is_closed());
    if !reusable {
        *sender = Some(connect(process).await.map_err(|e| broken(e.to_string()))?);
    }
    let connection = sender.as_mut().expect("connected");
    connection
        .ready()
        .await
        .map_err(|e| broken(e.to_string()))?;
    let response = connection
        .send_request(request)
        .await
        .map_err(|e| broken(e.to_string()))?;
    let (parts, mut body) = response.into_parts();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if (buf.len() + data.len()) as u64 > max_response {
                *sender = None;
                return Err(InvokeFailure::ResponseTooLarge {
                    size: (buf.len() + data.len()) as u64,
                    max: max_response,
                });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(hyper::Response::from_parts(parts, buf.freeze()))
}
