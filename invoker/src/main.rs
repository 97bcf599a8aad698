//! `fgs`: a FunctionGraph-compatible function host.

mod api;
mod asynchronous;
mod auth;
mod cli;
mod cluster;
mod gateway;
mod invocation;
mod invocation_logs;
mod manifest;
mod metrics;
mod registry;
mod schedule;
mod statistics;
mod store;
mod stream_sink;
mod triggers;
mod urn;
mod watch;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fgs_limits::{FunctionLimits, PayloadLimits};
use fgs_runtime::{CodeStore, InstancePool, LaneConfig, PoolConfig, PrewarmConfig, RuntimeLayout};
use fgs_sandbox::wasm::WasmConfig;
use fgs_sandbox::{
    Enforcement, NamespaceConfig, NamespaceError, NamespaceSandbox, ProcessGroupSandbox, Sandbox,
};

/// mimalloc: the request path allocates small buffers on every worker thread, where glibc's
/// arenas contend (BENCHMARKS.md, "Allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fgs",
    version,
    about = "A FunctionGraph-compatible serverless function host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the FunctionGraph API and run functions.
    Serve(Box<ServeArgs>),
    /// Apply a manifest (fgs.yaml) to a running host: print the plan, then create, update
    /// (and with --prune delete) functions through the REST API.
    Apply(cli::ApplyArgs),
    /// Invoke a function: its result on stdout, the request id on stderr; exit 1 when the
    /// function fails.
    Invoke(cli::InvokeArgs),
    /// The developer loop: `serve --manifest fgs.yaml --watch` (the arguments of serve).
    Dev(Box<ServeArgs>),
    /// List, show or delete functions.
    Functions(cli::FunctionsArgs),
    /// Deploy a directory (zipped) or a zip as a function: created, or its code updated.
    Deploy(cli::DeployArgs),
    /// List or show event streams.
    Streams(cli::StreamsArgs),
    /// A function's invocation logs; `--follow` prints new ones as they come.
    Logs(cli::LogsArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Where the API gateway serves the APIs of APIG and DEDICATEDGATEWAY triggers (default
    /// 127.0.0.1:8001; with `--ephemeral`, a free port).
    #[arg(long)]
    gateway_listen: Option<SocketAddr>,
    /// The gateway's address as callers reach it (`sl_domain` in APIG triggers; default: the
    /// `--gateway-listen` address), e.g. behind a proxy.
    #[arg(long)]
    gateway_domain: Option<String>,
    /// Where the SQLite store and the code packages live.
    #[arg(long, default_value = "./fgs-data", conflicts_with = "ephemeral")]
    data_dir: PathBuf,
    /// The database of functions, versions, aliases, triggers and dependencies:
    /// `sqlite://PATH` (default: `<data-dir>/fgs.sqlite3`) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, which hosts share (cluster mode; they
    /// need the same `--secret-key-file`). A password in the URL never appears in logs.
    #[arg(long, env = "FGS_STORE")]
    store: Option<fgs_store::StoreUrl>,
    /// Keep everything in a temporary data dir, removed when fgs stops (SIGTERM or Ctrl-C),
    /// and take a free port for the gateway unless `--gateway-listen` names one: a fresh host
    /// per test suite (`--listen 127.0.0.1:0` for a free API port too).
    #[arg(long)]
    ephemeral: bool,
    /// A manifest (fgs.yaml) applied once the host listens, before it says it is ready
    /// (its functions go into its `project:`, else `default`).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// With --manifest: watch its directory and apply again when a file changes (hot
    /// reload: the next invocation runs the saved code).
    #[arg(long, requires = "manifest")]
    watch: bool,
    /// Region written into function URNs.
    #[arg(long, default_value = "cn-north-4")]
    region: String,
    /// How long an unused instance is kept warm (e.g. 600s, 10m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Instance isolation: `namespace` (cgroups, namespaces, minimal root; needs root),
    /// `process` (process groups with rlimits only), or `auto` (namespace when possible,
    /// otherwise process, with a warning).
    #[arg(long, value_enum, default_value_t = SandboxMode::Auto)]
    sandbox: SandboxMode,
    /// The instances' network with the namespace sandbox: `isolated` (own namespace, outbound
    /// traffic forwarded and masqueraded, the host and other instances unreachable), `none`
    /// (own namespace, loopback only) or `host` (the host's network, as without root).
    #[arg(long, value_enum, default_value_t = NetworkArg::Isolated)]
    network: NetworkArg,
    /// The `fgs-sandbox-exec` helper (default: next to the fgs binary).
    #[arg(long)]
    sandbox_helper: Option<PathBuf>,
    /// Concurrent executions per project (tenant); sync calls beyond it get 429 FSS.0429,
    /// async requests wait.
    #[arg(long, default_value_t = 100)]
    tenant_concurrency: usize,
    /// Concurrent executions on the whole host, whatever the projects (without authentication
    /// any project id is a tenant: this keeps invented ids from multiplying the tenant limit).
    #[arg(long, default_value_t = 1000)]
    host_concurrency: usize,
    /// Async requests waiting per function, and per project; beyond them an async invocation
    /// answers 429 FSS.0429.
    #[arg(long, default_value_t = 10_000)]
    async_queue_per_function: usize,
    #[arg(long, default_value_t = 50_000)]
    async_queue_per_project: usize,
    /// How long the records of finished async requests are kept.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    async_record_retention: Duration,
    /// How long invocation logs are kept.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    log_retention: Duration,
    /// Bytes of invocation logs kept on the host, all functions together; beyond it the
    /// oldest go.
    #[arg(long, default_value_t = 1 << 30)]
    log_max_bytes: u64,
    /// A DMS RocketMQ instance an event stream's `HC.DMS_ROCKETMQ` source may name by its
    /// `instance_id`: `ID=HOST:PORT[;HOST:PORT]`, its name servers (repeatable).
    #[arg(long = "rocketmq-instance", value_parser = parse_instance)]
    rocketmq_instances: Vec<(String, String)>,
    /// Delay before the first retry of a failed async request; doubles with every retry.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    async_retry_delay: Duration,
    /// Versions per function, latest included (FunctionGraph's quota: 20); beyond it publishing
    /// answers 400 FSS.1015.
    #[arg(long, default_value_t = 20)]
    max_versions: usize,
    /// Aliases per function (FunctionGraph's quota: 10); beyond it 403 FSS.1043.
    #[arg(long, default_value_t = 10)]
    max_aliases: usize,
    /// Dependency package versions per project (FunctionGraph documents no number); beyond it
    /// 403 FSS.1045.
    #[arg(long, default_value_t = 200)]
    max_dependency_versions: usize,
    /// Instances starting at once, at most (default: twice the CPUs); more wait, and take an
    /// instance of their function that comes back meanwhile.
    #[arg(long)]
    max_concurrent_starts: Option<usize>,
    /// Prewarmed sandboxes per runtime, `RUNTIME=MIN..MAX` (python, nodejs), comma-separated,
    /// or `off`: interpreters started and waiting in their sandboxes, which a cold start of a
    /// Python or Node.js function takes instead of starting one (needs the namespace sandbox).
    /// Each lane's size follows the cold-start rate between MIN and MAX.
    #[arg(long, default_value = "python=1..8,nodejs=1..4", value_parser = parse_prewarm)]
    prewarm: PrewarmLanes,
    /// Memory the prewarmed sandboxes may use together, MB; beyond it they are not refilled.
    #[arg(long, default_value_t = 512)]
    prewarm_memory: u64,
    /// Most WebAssembly instances alive at once (slots of wasmtime's pooling allocator).
    #[arg(long, default_value_t = 256)]
    wasm_instances: u32,
    /// The host key (32 bytes, mode 0600; generated on first start) that seals secrets at
    /// rest and authenticates the WebAssembly compile cache. Default: `<data-dir>/secret.key`.
    #[arg(long)]
    secret_key_file: Option<PathBuf>,
    /// Whether API calls must be authenticated (AK/SK signature or IAM token). Default:
    /// `required` unless `--listen` is a loopback address, where `none` serves local emulation.
    #[arg(long, value_enum)]
    auth: Option<auth::AuthMode>,
    /// The accepted credentials (JSON, mode 0600): access and secret keys, the projects each
    /// may use, optionally read-only, optionally a user name and password for tokens.
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// How long a token from `POST /v3/auth/tokens` stays valid.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    token_ttl: Duration,
    /// How long an access key (or a token user) stays locked after 5 failed attempts in a row,
    /// as the API gateway locks an AK/SK pair.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    auth_lockout: Duration,
    /// Bytes of request bodies held at once to verify their signatures, over all requests;
    /// beyond it a signed request answers 429 APIGW.0308.
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    signed_body_budget: u32,
    /// DIS partition units per project (a COMMON partition takes one, an ADVANCED one
    /// five); beyond it creating or scaling a stream answers DIS.4308.
    #[arg(long, default_value_t = 50)]
    dis_partition_quota: u32,
    /// DIS consumer apps per project; beyond it DIS.4329.
    #[arg(long, default_value_t = 50)]
    dis_app_quota: usize,
    /// DIS partitions on the whole host, whatever the projects (ACTIVE and DELETED ones);
    /// beyond it DIS.4308.
    #[arg(long, default_value_t = 1000)]
    dis_host_partitions: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NetworkArg {
    Isolated,
    None,
    Host,
}

impl From<NetworkArg> for fgs_sandbox::network::NetworkMode {
    fn from(arg: NetworkArg) -> Self {
        match arg {
            NetworkArg::Isolated => Self::Isolated,
            NetworkArg::None => Self::None,
            NetworkArg::Host => Self::Host,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SandboxMode {
    Auto,
    Namespace,
    Process,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FGS_LOG").unwrap_or_else(|_| {
                // The RocketMQ client logs every offset it persists and every heartbeat at info.
                "info,rocketmq_client_rust=warn,rocketmq_transport=warn,rocketmq_runtime=warn"
                    .into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let client = match cli.command {
        Command::Serve(args) => return serve_host(args),
        Command::Dev(mut args) => {
            args.manifest
                .get_or_insert_with(|| PathBuf::from("fgs.yaml"));
            args.watch = true;
            return serve_host(args);
        }
        client => client,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match client {
        Command::Serve(_) | Command::Dev(_) => unreachable!("served above"),
        Command::Apply(args) => exit_on_error(runtime.block_on(cli::apply(args)).map(|()| true)),
        Command::Invoke(args) => exit_on_error(runtime.block_on(cli::invoke(args))),
        Command::Functions(args) => exit_on_error(runtime.block_on(cli::functions(args))),
        Command::Deploy(args) => exit_on_error(runtime.block_on(cli::deploy(args))),
        Command::Streams(args) => exit_on_error(runtime.block_on(cli::streams(args))),
        Command::Logs(args) => exit_on_error(runtime.block_on(cli::logs(args))),
    }
}

/// Runs the host: its data dir first, while there is one thread, then the async runtime.
fn serve_host(args: Box<ServeArgs>) -> anyhow::Result<()> {
    let data_dir = DataDir::new(&args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(*args, data_dir))
}

/// How a client command ends: 0 when it did what was asked, 1 when the host refused it (the
/// reason, an FSS code with its message, on stderr) or the function failed.
fn exit_on_error(outcome: anyhow::Result<bool>) -> anyhow::Result<()> {
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1)
        }
    }
}

/// The host's data dir, made before the async runtime starts (the RocketMQ client reads where
/// it keeps BROADCASTING offsets from the environment, which is set while there is one thread).
struct DataDir {
    path: PathBuf,
    /// `--ephemeral`'s temporary dir: removed when serve returns (a host killed with SIGKILL
    /// leaves it behind).
    ephemeral: Option<tempfile::TempDir>,
}

impl DataDir {
    fn new(args: &ServeArgs) -> anyhow::Result<Self> {
        let ephemeral = if args.ephemeral {
            Some(
                tempfile::Builder::new()
                    .prefix("fgs-ephemeral-")
                    .tempdir()
                    .context("cannot make a temporary data dir")?,
            )
        } else {
            None
        };
        let path = ephemeral
            .as_ref()
            .map_or(args.data_dir.clone(), |d| d.path().to_path_buf());
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create data dir {}", path.display()))?;
        // Instances run in their code directory: every path handed to them must be absolute.
        let path = std::fs::canonicalize(&path)?;
        // SAFETY: no other thread runs yet (the async runtime is built after this).
        unsafe {
            std::env::set_var(
                fgs_eventstream::engine::rocketmq::LOCAL_OFFSETS_DIR,
                path.join("rocketmq-offsets"),
            )
        };
        Ok(DataDir { path, ephemeral })
    }
}

async fn serve(args: ServeArgs, data_dir: DataDir) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let DataDir {
        path: data_dir,
        ephemeral,
    } = data_dir;
    // The sandbox (as root: the first network namespace and nftables table, ~25 ms) is set
    // up while the stores open.
    let sandbox = {
        let (args, data_dir) = (args.clone(), data_dir.clone());
        tokio::task::spawn_blocking(move || choose_sandbox(&args, &data_dir))
    };
    let secret_key_file = args
        .secret_key_file
        .clone()
        .unwrap_or_else(|| data_dir.join("secret.key"));
    let secret_key = Arc::new(
        fgs_secrets::HostKey::load_or_create(&secret_key_file)
            .context("cannot load the host key")?,
    );
    let payload = PayloadLimits::default();
    let store_url = args
        .store
        .clone()
        .unwrap_or_else(|| fgs_store::StoreUrl::Sqlite(data_dir.join("fgs.sqlite3")));
    let db = fgs_store::Db::open(&store_url)
        .await
        .with_context(|| format!("cannot open the store {store_url}"))?;
    let store = store::Store::open(db.clone(), secret_key.clone())
        .await
        .with_context(|| format!("cannot open the function store in {store_url}"))?;
    let code = CodeStore::open(data_dir.join("code"), payload.clone())
        .context("cannot open the code store")?;
    let layout =
        RuntimeLayout::install(&data_dir.join("runtimes")).context("cannot install runtimes")?;
    let quotas = registry::Quotas {
        versions: args.max_versions,
        aliases: args.max_aliases,
        dependencies: args.max_dependency_versions,
    };
    let registry = registry::Registry::load(store, code, args.region.clone(), quotas)
        .await
        .context("cannot load functions")?;
    let host_id = host_id(&data_dir).context("cannot read the host id")?;
    // The journal's writer commits groups on a connection of its own; a shared database's
    // pool serves both.
    let (journal_writer, journal_reader) = if db.is_shared() {
        (db.clone(), db.clone())
    } else {
        (
            fgs_store::Db::open(&store_url).await?,
            fgs_store::Db::open(&store_url).await?,
        )
    };

    let gateway_address = args.gateway_listen.unwrap_or_else(|| {
        let port = if args.ephemeral { 0 } else { 8001 };
        SocketAddr::from(([127, 0, 0, 1], port))
    });
    let gateway_listener = tokio::net::TcpListener::bind(gateway_address)
        .await
        .with_context(|| format!("cannot listen on {gateway_address} (--gateway-listen)"))?;
    let gateway_url = format!("http://{}", gateway_listener.local_addr()?);
    let gateway_domain = match &args.gateway_domain {
        Some(domain) => domain.clone(),
        None => gateway_listener.local_addr()?.to_string(),
    };
    tracing::info!(gateway = %gateway_domain, "API gateway listening");
    let auth = Arc::new(auth_settings(&args, secret_key.clone())?);
    tracing::info!(auth = auth.mode.name(), "API authentication");
    let (sandbox, enforcement) = sandbox.await??;
    let wasm = WasmConfig {
        max_instances: args.wasm_instances,
        cache_dir: data_dir.join("wasm-cache"),
        tmp_dir: data_dir.join("wasm-tmp"),
        host_key: secret_key.clone(),
    };
    let pool = InstancePool::new(
        sandbox,
        layout,
        Some(wasm),
        PoolConfig {
            idle_timeout: args.idle_timeout,
            max_response: payload.sync_response as u64,
            max_starting: args
                .max_concurrent_starts
                .unwrap_or_else(|| 2 * std::thread::available_parallelism().map_or(1, |n| n.get())),
            prewarm: PrewarmConfig {
                lanes: args.prewarm.0.clone(),
                memory_budget: args.prewarm_memory * 1024 * 1024,
            },
        },
    );
    let metrics = metrics::Metrics::new();
    let dis = fgs_dis::Dis::open(
        &data_dir.join("dis"),
        fgs_dis::DisConfig {
            partition_quota: args.dis_partition_quota,
            app_quota: args.dis_app_quota,
            host_partitions: args.dis_host_partitions,
            ..Default::default()
        },
        metrics.registry(),
    )
    .context("cannot open the DIS streams")?;
    tokio::spawn(dis_retention(dis.clone()));
    let app = Arc::new(api::App {
        registry,
        pool: pool.clone(),
        limits: FunctionLimits::default(),
        payload,
        async_limits: fgs_limits::AsyncLimits::default(),
        admission: fgs_limits::Admission::new(args.tenant_concurrency, args.host_concurrency),
        journal: asynchronous::Journal::open(journal_writer, journal_reader, host_id.clone())
            .await
            .context("cannot open the async journal")?,
        queue: Arc::new(asynchronous::Queue::new(asynchronous::QueueLimits {
            per_function: args.async_queue_per_function,
            per_project: args.async_queue_per_project,
        })),
        async_settings: asynchronous::AsyncSettings {
            retry_delay: args.async_retry_delay,
        },
        logs: invocation_logs::InvocationLogs::open(
            &data_dir.join("logs.sqlite3"),
            invocation_logs::Retention {
                age: args.log_retention,
                max_bytes: args.log_max_bytes,
            },
            metrics.registry(),
        )
        .context("cannot open the invocation logs")?,
        metrics,
        statistics: statistics::Statistics::default(),
        triggers: triggers::Triggers::default(),
        dis: dis.clone(),
        gateway_domain,
        enforcement,
        auth_mode: auth.mode.name(),
    });

    let stream_store = fgs_eventstream::store::StreamStore::new(
        fgs_store::sqlite::connect(&data_dir.join("fgs.sqlite3"))?,
        secret_key.clone(),
    )
    .context("cannot open the event stream store")?;
    auth.register(app.metrics.registry())
        .context("auth metrics")?;
    let sink = Arc::new(stream_sink::InvokerSink(app.clone()));
    let engine = fgs_eventstream::engine::Engine::new(
        stream_store.clone(),
        sink.clone(),
        args.async_retry_delay,
        fgs_eventstream::metrics::StreamMetrics::new(app.metrics.registry())
            .context("stream metrics")?,
        args.rocketmq_instances.iter().cloned().collect(),
    );
    let resumed = engine.resume().context("cannot resume event streams")?;
    if resumed > 0 {
        tracing::info!(
            streams = resumed,
            "resuming event streams that were running before the restart"
        );
    }
    let streams = Arc::new(fgs_eventstream::api::Streams::new(
        stream_store,
        engine,
        sink,
    ));
    let recovered = asynchronous::dispatch::recover(&app)
        .await
        .context("cannot recover async requests")?;
    if recovered > 0 {
        tracing::info!(
            requests = recovered,
            "resuming async requests accepted before the restart"
        );
    }
    tokio::spawn(asynchronous::dispatch::run(app.clone()));
    let membership = match db.subscribe() {
        Some(notices) => {
            tokio::spawn(cluster::follow(app.clone(), notices));
            let membership = Arc::new(
                cluster::Membership::join(db.clone(), host_id.clone(), args.listen.to_string())
                    .await
                    .context("cannot join the cluster")?,
            );
            tokio::spawn(cluster::keep_membership(app.clone(), membership.clone()));
            tracing::info!(host = %host_id, store = %store_url, "joined the cluster");
            Some(membership)
        }
        None => None,
    };
    tokio::spawn(asynchronous::prune_records(
        app.journal.clone(),
        args.async_record_retention,
    ));
    for trigger in app.registry.all_triggers() {
        app.triggers.sync(&app, &trigger);
    }
    for project in app.registry.projects() {
        for entry in app.registry.list(&project).iter().flat_map(|f| f.entries()) {
            let reserved = entry.record.reserved_instances as usize;
            if reserved > 0 {
                app.pool.reserve(entry.spec.clone(), reserved);
            }
        }
    }

    tokio::spawn(gateway::serve(
        app.clone(),
        gateway_listener,
        shutdown_signal(),
    ));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, data_dir = %data_dir.display(), "fgs ready");
    let mut routes = api::router(app.clone())
        .merge(fgs_eventstream::api::router(streams))
        .merge(fgs_dis::api::router(dis))
        .merge(auth::router(auth.clone()))
        // A known path with another method answers in FunctionGraph's JSON, never an empty 405.
        .method_not_allowed_fallback(|| async { api::ApiError::method_not_allowed() });
    // Without authentication the layer is not there at all: local emulation pays nothing.
    if auth.mode == auth::AuthMode::Required {
        routes = routes.layer(auth::AuthLayer(auth));
    }
    let api_url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(
        axum::serve(listener, routes)
            .with_graceful_shutdown(shutdown_signal())
            .into_future(),
    );
    if let Some(path) = &args.manifest {
        let manifest = manifest::Manifest::load(path)?;
        let project = manifest.project.clone().unwrap_or_else(|| "default".into());
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        // The plan goes to the log: stdout carries only the ready line.
        let say = |line: &str| tracing::info!(manifest = %path.display(), "{line}");
        cli::apply_manifest(
            &cli::Client::signed(&api_url, cli::env_credentials())?,
            &project,
            &manifest,
            &base,
            false,
            false,
            &say,
        )
        .await
        .with_context(|| format!("cannot apply {}", path.display()))?;
        if args.watch {
            watch::spawn(path.clone(), base, project, api_url.clone())?;
        }
    }
    // One JSON line on stdout naming what listens where, for whoever started fgs (a test
    // suite's fixture reads it to learn the ports of `--listen 127.0.0.1:0`).
    {
        use std::io::Write;
        let ready = serde_json::json!({
            "api": api_url,
            "gateway": gateway_url,
            "data_dir": data_dir,
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{ready}");
        let _ = out.flush();
    }
    server.await??;
    app.queue.close();
    pool.shutdown().await;
    if let Some(membership) = membership {
        // What this host was running is taken over by the others at once.
        membership.leave().await;
    }
    drop(ephemeral);
    tracing::info!("fgs stopped");
    Ok(())
}

/// The authentication mode and credentials: `required` by default off loopback, and never
/// `required` without credentials to check against.
fn auth_settings(args: &ServeArgs, key: Arc<fgs_secrets::HostKey>) -> anyhow::Result<auth::Auth> {
    let mode = args.auth.unwrap_or(if args.listen.ip().is_loopback() {
        auth::AuthMode::None
    } else {
        auth::AuthMode::Required
    });
    let credentials = match &args.credentials {
        Some(path) => auth::credentials::Credentials::load(path)
            .with_context(|| format!("cannot load credentials from {}", path.display()))?,
        None if mode == auth::AuthMode::Required => anyhow::bail!(
            "--auth required (the default when --listen is not loopback) needs --credentials FILE"
        ),
        None => Default::default(),
    };
    Ok(auth::Auth::new(
        mode,
        credentials,
        key,
        auth::Policy {
            token_ttl: args.token_ttl,
            lockout: args.auth_lockout,
            body_budget: args.signed_body_budget,
        },
    ))
}

/// Picks the instance sandbox; in `auto` mode falls back to process groups, loudly.
fn choose_sandbox(
    args: &ServeArgs,
    data_dir: &Path,
) -> anyhow::Result<(Arc<dyn Sandbox>, Enforcement)> {
    let namespace = || -> Result<NamespaceSandbox, NamespaceError> {
        let helper = match &args.sandbox_helper {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|e| NamespaceError::Unavailable(e.to_string()))?
                .with_file_name("fgs-sandbox-exec"),
        };
        NamespaceSandbox::new(NamespaceConfig {
            helper,
            root_mountpoint: data_dir.join("sandbox").join("root"),
            host_key: host_key(data_dir),
            network: args.network.into(),
        })
    };
    let fallback = |reason: String| -> (Arc<dyn Sandbox>, Enforcement) {
        let sandbox = ProcessGroupSandbox;
        let mut enforcement = sandbox.enforcement();
        enforcement.reason = Some(reason);
        (Arc::new(sandbox), enforcement)
    };
    let (sandbox, enforcement) = match args.sandbox {
        SandboxMode::Process => fallback("--sandbox process".into()),
        SandboxMode::Namespace => {
            let sandbox =
                namespace().map_err(|e| anyhow::anyhow!("namespace sandbox unavailable: {e}"))?;
            let enforcement = sandbox.enforcement();
            (Arc::new(sandbox) as Arc<dyn Sandbox>, enforcement)
        }
        SandboxMode::Auto => match namespace() {
            Ok(sandbox) => {
                let enforcement = sandbox.enforcement();
                (Arc::new(sandbox) as Arc<dyn Sandbox>, enforcement)
            }
            Err(NamespaceError::Unavailable(reason)) => fallback(reason),
            Err(network) => anyhow::bail!("namespace sandbox: {network}"),
        },
    };
    match &enforcement.reason {
        Some(reason) => tracing::warn!(
            mode = enforcement.mode,
            %reason,
            not_enforced = ?enforcement.not_enforced,
            "kernel-enforced sandbox unavailable: instances run as plain process groups with rlimits only"
        ),
        None => {
            tracing::info!(mode = enforcement.mode, enforced = ?enforcement.enforced, "sandbox ready")
        }
    }
    Ok((sandbox, enforcement))
}

/// Names this host's cgroups after its data dir, so a host restarted on the same data dir
/// finds (and removes) what a crashed predecessor left, and hosts on other data dirs are
/// left alone.
fn host_key(data_dir: &Path) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = data_dir
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
        });
    format!("{hash:016x}")
}

/// Deletes expired DIS records once a minute.
async fn dis_retention(dis: Arc<fgs_dis::Dis>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let dis = dis.clone();
        let now = chrono::Utc::now().timestamp_millis();
        match tokio::task::spawn_blocking(move || dis.enforce_retention(now)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(segments)) => tracing::info!(segments, "deleted expired DIS records"),
            Ok(Err(e)) => tracing::error!(error = %e, "DIS retention"),
            Err(e) => tracing::error!(error = %e, "DIS retention task"),
        }
    }
}

/// This host's id in a shared database (the owner of the async requests it accepts): made once
/// per data dir, so that a host restarted on its data dir finds its own requests again.
fn host_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("host-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, &id)?;
            Ok(id)
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

/// The lanes of `--prewarm`.
#[derive(Debug, Clone)]
struct PrewarmLanes(Vec<LaneConfig>);

fn parse_instance(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((id, addr)) if !id.is_empty() && !addr.is_empty() => {
            Ok((id.to_string(), addr.to_string()))
        }
        _ => Err(format!("{text:?} is not ID=HOST:PORT")),
    }
}

fn parse_prewarm(text: &str) -> Result<PrewarmLanes, String> {
    PrewarmConfig::parse(text, 0).map(|c| PrewarmLanes(c.lanes))
}
