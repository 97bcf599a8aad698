//! The `fgs` commands that talk to a running host through its public REST API, the calls the
//! SDK makes: `apply` (a manifest, idempotently, with a plan), `invoke`, `functions`,
//! `deploy`, `logs` and `streams`. They speak HTTP to `--endpoint`, signing their requests as
//! the SDK does when given an access key (`--ak`/`FGS_AK`, the secret key in `FGS_SK`).

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

mod apply;
mod apply_streams;
mod functions;
mod invoke;
mod logs;

pub use apply::{apply, apply_manifest, ApplyArgs};
pub use functions::{deploy, functions, streams, DeployArgs, FunctionsArgs, StreamsArgs};
pub use invoke::{invoke, InvokeArgs};
pub use logs::{logs, LogsArgs};

/// Where the host is and which project to act in.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The host's API (`http://HOST:PORT`).
    #[arg(
        long,
        env = "FGS_ENDPOINT",
        default_value = "http://127.0.0.1:8000",
        global = true
    )]
    pub endpoint: String,
    /// The project to act in (default: the manifest's `project:`, else `default`).
    #[arg(long, env = "FGS_PROJECT", global = true)]
    pub project: Option<String>,
    /// The access key to sign requests with (the secret key: FGS_SK in the environment).
    #[arg(long = "ak", env = "FGS_AK", global = true)]
    pub access_key: Option<String>,
}

/// A host's API.
pub struct Client {
    address: String,
    host: String,
    /// Access key and secret key: requests are signed (`SDK-HMAC-SHA256`) when set.
    credentials: Option<(String, String)>,
}

impl Client {
    /// A client of `endpoint` that signs its requests with `credentials` when given.
    pub fn signed(endpoint: &str, credentials: Option<(String, String)>) -> anyhow::Result<Self> {
        Ok(Self {
            credentials,
            ..Self::new(endpoint)?
        })
    }

    fn new(endpoint: &str) -> anyhow::Result<Self> {
        let Some(rest) = endpoint.strip_prefix("http://") else {
            bail!("--endpoint {endpoint:?}: an http://HOST:PORT address");
        };
        let host = rest.trim_end_matches('/').to_string();
        if host.is_empty() || host.contains('/') {
            bail!("--endpoint {endpoint:?}: an http://HOST:PORT address");
        }
        let address = if host.contains(':') {
            host.clone()
        } else {
            format!("{host}:80")
        };
        Ok(Self {
            address,
            host,
            credentials: None,
        })
    }

    /// One request; answers the status and the body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let (status, _, body) = self.call_with_headers(method, path, body, headers).await?;
        Ok((status, body))
    }

    /// One request; answers the status, the response headers and the body.
    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(StatusCode, hyper::HeaderMap, Bytes)> {
        let stream = tokio::net::TcpStream::connect(&self.address)
            .await
            .with_context(|| format!("cannot reach fgs at http://{}", self.host))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let body = Bytes::from(body.unwrap_or_default());
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("Host", &self.host)
            .header("Content-Type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some((access_key, secret_key)) = &self.credentials {
            let date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
            let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
            let signed = crate::auth::signature::SignedRequest {
                method: method.as_str(),
                raw_path,
                raw_query,
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("host".into(), self.host.as_str().into()),
                    ("x-sdk-date".into(), date.as_str().into()),
                ],
                date: &date,
                payload: crate::auth::signature::Payload::Body(&body),
            };
            request = request.header("X-Sdk-Date", &date).header(
                "Authorization",
                signed.authorization(access_key, secret_key),
            );
        }
        let request = request.body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let (status, headers) = (response.status(), response.headers().clone());
        Ok((
            status,
            headers,
            response.into_body().collect().await?.to_bytes(),
        ))
    }

    /// A FunctionGraph call that must succeed: its JSON, or the FSS error as the message.
    pub(crate) async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, bytes) = self
            .call(method, path, body.map(|b| b.to_string().into_bytes()), &[])
            .await?;
        if !status.is_success() {
            bail!("{}", fss_error(status, &bytes));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// `FSS.xxxx message` of an error answer (or the status and body when it is not one).
pub(crate) fn fss_error(status: StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v["error_code"].is_string() => format!(
            "{} {} ({})",
            v["error_code"].as_str().unwrap_or_default(),
            v["error_msg"].as_str().unwrap_or_default(),
            status.as_u16()
        ),
        _ => format!(
            "HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(body)
        ),
    }
}

/// `FGS_AK` and `FGS_SK` from the environment, when both are set: how `fgs serve
/// --manifest` signs the calls it makes to its own API when that requires authentication.
pub fn env_credentials() -> Option<(String, String)> {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    var("FGS_AK").zip(var("FGS_SK"))
}

impl Target {
    /// A client of the endpoint, signing as `--ak`/`FGS_AK` with the secret key in `FGS_SK`
    /// when both are set (a host with `--auth required`). The secret key is read from the
    /// environment only: a command line is visible to every user of the machine.
    pub fn client(&self) -> anyhow::Result<Client> {
        let secret_key = std::env::var("FGS_SK").ok().filter(|s| !s.is_empty());
        let credentials = match (&self.access_key, secret_key) {
            (Some(ak), Some(sk)) => Some((ak.clone(), sk)),
            (None, None) => None,
            (Some(_), None) => bail!("--ak (FGS_AK) needs the secret key in FGS_SK"),
            (None, Some(_)) => bail!("FGS_SK needs the access key: --ak or FGS_AK"),
        };
        Client::signed(&self.endpoint, credentials)
    }

    /// The project: `--project`/`FGS_PROJECT`, else `default`.
    pub fn project(&self) -> &str {
        self.project.as_deref().unwrap_or("default")
    }

    /// The API path of a function the CLI names `NAME`, `NAME:VERSION`, `NAME:!ALIAS` or by
    /// its URN: `/v2/{project}/fgs/functions/{urn}`. (The API reads `a:b` as package and
    /// name, so a qualified name is spelled out as `project:default:name:qualifier`.)
    pub fn function_path(&self, function: &str) -> String {
        let project = self.project();
        let urn = match function.split_once(':') {
            Some((name, qualifier))
                if !function.starts_with("urn:") && !qualifier.contains(':') =>
            {
                format!("{project}:default:{name}:{qualifier}")
            }
            _ => function.to_string(),
        };
        format!("/v2/{project}/fgs/functions/{urn}")
    }
}

/// How a listing or a resource is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}
