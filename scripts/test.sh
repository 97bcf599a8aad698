#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate, then the end-to-end tests, which
# start the release build of fgs and talk HTTP to it (and drive the official Huawei Cloud
# Python SDK against it). Python test dependencies go into .cache/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints the minutes and seconds since the start, so a slow step shows in CI's log.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
trap 'step "finished (exit $?)"' EXIT

step "building fgs (release)"
cargo build --release --locked

step "WebAssembly example functions (wasm32-wasip2)"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
(cd examples/wasm && cargo build --release --locked --target wasm32-wasip2)

step "unit tests (and the examples, among them the RocketMQ tests' producer)"
cargo test --release --locked --workspace

step "end-to-end test environment"
VENV=.cache/venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
command -v node >/dev/null || echo "warning: node not found; Node.js runtime tests will fail" >&2
command -v curl >/dev/null || { echo "curl is required by the custom-runtime examples" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl is required by the SASL_SSL event-stream tests" >&2; exit 1; }

step "instance networking (nftables for --network isolated, iproute2 for the test namespaces)"
if [ "$(id -u)" = 0 ]; then
  command -v nft >/dev/null || { apt-get update -qq && apt-get install -y -qq nftables >/dev/null; }
  command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null; }
fi

step "PostgreSQL for the cluster tests (Debian's postgresql; each test run makes a throwaway cluster)"
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  else
    echo "warning: PostgreSQL not found; the cluster tests will fail" >&2
  fi
fi

step "Kafka-compatible broker for the event-stream tests (tansu, cached)"
TOOLS=${FGS_TOOLS:-$HOME/.cache/fgs-tools}
# The brokers are test tools, built once per machine: at opt-level 1 they build in less time
# than at opt-level 3 (rocketmq-rust: 9 min against 15 here; tansu: 7 min) and still outrun
# what the tests ask of them. BENCHMARKS.md says which build each figure used.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=1
if [ ! -x "$TOOLS/bin/tansu" ]; then
  echo "building tansu 0.6.0 once into $TOOLS (several minutes)"
  cargo install tansu --version 0.6.0 --features dynostore --locked --root "$TOOLS"
fi

step "RocketMQ name server and broker for the RocketMQ source tests (rocketmq-rust 1.0.0, cached)"
if [ ! -x "$TOOLS/bin/rocketmq-namesrv-rust" ] || [ ! -x "$TOOLS/bin/rocketmq-broker-rust" ]; then
  echo "building rocketmq-rust's name server and broker 1.0.0 once into $TOOLS (several minutes)"
  # One target dir for both: they share most of their dependencies.
  CARGO_TARGET_DIR="$TOOLS/build-rocketmq" cargo install rocketmq-namesrv --version 1.0.0 \
    --no-default-features --locked --root "$TOOLS"
  CARGO_TARGET_DIR="$TOOLS/build-rocketmq" cargo install rocketmq-broker --version 1.0.0 \
    --locked --root "$TOOLS"
  rm -rf "$TOOLS/build-rocketmq"
fi

unset CARGO_PROFILE_RELEASE_OPT_LEVEL

step "end-to-end tests"
FGS_TOOLS="$TOOLS" TANSU_BIN="$TOOLS/bin/tansu" FGS_BIN="$PWD/target/release/fgs" \
  "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider -W ignore::DeprecationWarning "$@"
