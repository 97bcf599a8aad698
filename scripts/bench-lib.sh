# Sourced by the benchmark scripts: a scratch directory `$work`, the servers started into
# `pids` (all stopped, and `$work` removed, on exit), and `wait_http URL` until one answers.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
