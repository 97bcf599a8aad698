#!/usr/bin/env bash
# The event-stream benchmark of BENCHMARKS.md: Kafka (tansu, memory storage) → no-op Python
# function, batch_window.count 100; then end-to-end latency with count 1. SOURCE=rocketmq:
# RocketMQ (rocketmq-rust's name server and broker) instead. Settings through SOURCE, RECORDS,
# PARTITIONS, THREADS, COUNT, LATENCY_SAMPLES (see scripts/bench_stream.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
cargo build --release --locked -p fgs-eventstream --example rocketmq_produce
TOOLS=${FGS_TOOLS:-$HOME/.cache/fgs-tools}
[ -x "$TOOLS/bin/tansu" ] || { echo "run scripts/test.sh once: it installs tansu into $TOOLS" >&2; exit 1; }
[ -x .cache/venv/bin/python ] || { echo "run scripts/test.sh once: it creates .cache/venv" >&2; exit 1; }
FGS_TOOLS="$TOOLS" TANSU_BIN="$TOOLS/bin/tansu" FGS_BIN="$PWD/target/release/fgs" .cache/venv/bin/python scripts/bench_stream.py
