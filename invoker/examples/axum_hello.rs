//! A bare axum hello-world server: the ceiling the HTTP benchmark in BENCHMARKS.md compares
//! fgs's invoke path against. `cargo run --release --example axum_hello -- 127.0.0.1:3000`

use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let app = Router::new().fallback(|| async { "hello" });
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
