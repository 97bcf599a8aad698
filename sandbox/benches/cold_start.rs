//! Cold-start cost of the sandbox itself: starting `/bin/true` in a fresh instance and
//! waiting until it has ended and its resources are released. For the namespace sandbox this
//! is cgroup creation and removal, the helper's exec, the namespaces, the minimal root with
//! its binds, `/tmp`, `/proc` and `/dev`, the privilege drop and seccomp; no interpreter.
//!
//! The namespace sandbox is measured with each network mode: `host` (no network namespace),
//! `none` and `isolated` (a namespace from the pool per instance, with a veth for isolated).
//!
//! `cargo bench -p fgs-sandbox --bench cold_start` (as root for the namespace sandbox).

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use fgs_sandbox::network::NetworkMode;
use fgs_sandbox::{LaunchSpec, NamespaceConfig, NamespaceSandbox, ProcessGroupSandbox, Sandbox};

fn spec(sandbox: &dyn Sandbox, code: &tempfile::TempDir, netns: Option<PathBuf>) -> LaunchSpec {
    let (code_root, _) = sandbox.instance_paths(code.path(), code.path());
    let (_read, write) = nix::unistd::pipe().expect("pipe");
    LaunchSpec {
        dependency_dirs: Vec::new(),
        program: PathBuf::from("/bin/true"),
        args: vec![],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: code_root,
        code_dir: code.path().to_path_buf(),
        runtime_dir: code.path().to_path_buf(),
        ro_paths: vec![],
        memory_mb: 128,
        output: write,
        netns,
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let code = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let _guard = runtime.enter();
    let mut group = c.benchmark_group("sandbox_cold_start");
    group.sample_size(100);

    group.bench_function("process_group", |b| {
        b.iter(|| {
            let process = ProcessGroupSandbox
                .launch(spec(&ProcessGroupSandbox, &code, None))
                .expect("launch");
            runtime.block_on(process.wait());
        })
    });

    for mode in [NetworkMode::Host, NetworkMode::None, NetworkMode::Isolated] {
        let config = NamespaceConfig {
            helper: PathBuf::from(env!("CARGO_BIN_EXE_fgs-sandbox-exec")),
            root_mountpoint: data.path().join("root"),
            host_key: format!("bench-{}", std::process::id()),
            network: mode,
        };
        match NamespaceSandbox::new(config) {
            Ok(sandbox) => {
                group.bench_function(format!("namespace_network_{}", mode.name()), |b| {
                    b.iter(|| {
                        // The network comes from the pool, as for a real cold start; the
                        // instance holds it until it has ended.
                        let network = sandbox.network().expect("network");
                        let (_listener, netns) = network.into_parts();
                        let launch = spec(&sandbox, &code, netns.as_ref().map(|n| n.path()));
                        let process = sandbox.launch(launch).expect("launch");
                        let exit = runtime.block_on(process.wait());
                        assert_eq!(exit, fgs_sandbox::Exit::Code(0));
                    })
                });
                sandbox.shutdown();
            }
            Err(reason) => eprintln!(
                "namespace sandbox ({}) not benchmarked: {reason}",
                mode.name()
            ),
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
