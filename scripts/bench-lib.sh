# Sourced by the benchmark scripts (after `cd` to the repository): a scratch directory `$work`, the servers started into
# `pids` (all stopped, and `$work` removed, on exit), and `wait_http URL` until one answers.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
# `measure NAME URL LUA`: a 1 s warm-up, then `wrk -t1 -c64 -d$DURATION --latency` with the
# request script LUA; prints "NAME requests/s p50 p99" (and stops at the first refused request).
measure() {
  wrk -t1 -c64 -d1s -s "$3" "$2" >/dev/null
  wrk -t1 -c64 -d"$DURATION" --latency -s "$3" "$2" > "$work/$1.txt"
  grep -q "Non-2xx" "$work/$1.txt" && { echo "$1: refused requests" >&2; cat "$work/$1.txt" >&2; exit 1; }
  echo "$1 $(awk '/Requests\/sec/ {print $2}' "$work/$1.txt") $(awk '$1 == "50%" {print $2}' "$work/$1.txt") $(awk '$1 == "99%" {print $2}' "$work/$1.txt")"
}
# `medians NAME...` reads measure's lines on stdin; prints "NAME median R" for each NAME seen.
medians() {
  local results
  results=$(cat)
  for name in "$@"; do
    echo "$results" | awk -v n="$name" '$1 == n { print $2 }' | sort -n | awk -v n="$name" \
      '{ v[NR] = $1 } END { if (NR) printf "%s median %.0f\n", n, v[int((NR + 1) / 2)] }'
  done
}
# `wrk_prerequisites`: for the wrk benchmarks of the WASM echo function: checks wrk and the
# test venv (`$PY`), builds fgs and the WASM examples (`$WASM`); `$DURATION` defaults to 10s.
wrk_prerequisites() {
  PY=.cache/venv/bin/python
  DURATION=${DURATION:-10s}
  command -v wrk >/dev/null || { echo "wrk is required (Debian package wrk)" >&2; exit 1; }
  [ -x "$PY" ] || { echo "run scripts/test.sh once first (it makes .cache/venv with the SDK)" >&2; exit 1; }
  cargo build --release --locked
  (cd examples/wasm && cargo build --release --locked --target wasm32-wasip2)
  WASM=examples/wasm/target/wasm32-wasip2/release
}
# `interleave NAME URL LUA [NAME URL LUA ...]`: ROUNDS (default 3) rounds of `measure`, the
# targets taking turns; prints every round, then the medians (also kept in `$work/medians`).
interleave() {
  local args=("$@") names=() i
  for ((i = 0; i < ${#args[@]}; i += 3)); do names+=("${args[i]}"); done
  for _ in $(seq "${ROUNDS:-3}"); do
    for ((i = 0; i < ${#args[@]}; i += 3)); do measure "${args[i]}" "${args[i + 1]}" "${args[i + 2]}"; done
  done | tee "$work/results"
  echo
  medians "${names[@]}" < "$work/results" | tee "$work/medians"
}
# `ratio A B TEXT`: prints "TEXT = <A's median / B's median>x (medians)".
ratio() {
  awk -v a="$1" -v b="$2" -v text="$3" \
    '{ rps[$1] = $3 } END { printf "%s = %.2fx (medians)\n", text, rps[a] / rps[b] }' "$work/medians"
}
