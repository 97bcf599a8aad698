#!/usr/bin/env bash
# Starts fgs on the embedded default (SQLite + local code store in ./fgs-data) with the example
# project applied (examples/fgs.yaml: function `hello`) and hot reload on: edit
# examples/python-hello/index.py and invoke again. Ctrl-C stops the host.
set -euo pipefail
cd "$(dirname "$0")/.."
LISTEN=${LISTEN:-127.0.0.1:8000}
cargo build --release --locked
echo "then: target/release/fgs invoke hello --data '{\"name\":\"fgs\"}' --endpoint http://$LISTEN" >&2
exec ./target/release/fgs serve --listen "$LISTEN" --data-dir ./fgs-data \
  --manifest examples/fgs.yaml --watch
