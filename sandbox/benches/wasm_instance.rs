//! New-instance creation from a cached, linked component, including its initializer: what a
//! WASM cold start costs once the function version's component is loaded.
//!
//! `cargo bench -p fgs-sandbox --bench wasm_instance` (build `examples/wasm` first).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fgs_sandbox::wasm::{FunctionInfo, WasmConfig, WasmEngine};

fn bench(c: &mut Criterion) {
    let wasm = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/wasm/target/wasm32-wasip2/release/init-counter.wasm");
    assert!(
        wasm.is_file(),
        "{} missing: build examples/wasm for wasm32-wasip2 first",
        wasm.display()
    );
    let data = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let engine = WasmEngine::new(WasmConfig {
        max_instances: 64,
        cache_dir: data.path().join("cache"),
        tmp_dir: data.path().join("tmp"),
        host_key: Arc::new(fgs_secrets::HostKey::from_bytes(&[0; 32])),
    })
    .expect("engine");
    let component = engine.load(&wasm).expect("component");
    let info = Arc::new(FunctionInfo {
        name: "bench".into(),
        version: "latest".into(),
        package: "default".into(),
        project_id: "p".into(),
        memory_mb: 128,
        cpu_millicores: 300,
        timeout_secs: 3,
        user_data: HashMap::new(),
    });
    let env = vec![("GREETING".to_string(), "hi".to_string())];
    let label = if engine.private_tmpfs() {
        "with_tmpfs_tmp"
    } else {
        "with_directory_tmp"
    };
    c.bench_function(&format!("wasm_new_instance_and_initializer/{label}"), |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut instance = component
                    .instantiate(info.clone(), &env)
                    .await
                    .expect("instance");
                instance
                    .initialize("bench", Duration::from_secs(3))
                    .await
                    .expect("initializer");
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
