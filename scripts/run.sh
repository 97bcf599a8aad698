#!/usr/bin/env bash
# Starts fgs on the embedded default (SQLite + local code store in ./fgs-data), deploys the
# Python example function, and prints how to invoke it. Ctrl-C stops the host.
set -euo pipefail
cd "$(dirname "$0")/.."
LISTEN=${LISTEN:-127.0.0.1:8000}
PROJECT=${PROJECT:-my-project}

cargo build --release --locked
./target/release/fgs serve --listen "$LISTEN" --data-dir ./fgs-data &
FGS_PID=$!
trap 'kill $FGS_PID 2>/dev/null; wait $FGS_PID 2>/dev/null' EXIT INT TERM
until curl -sf "http://$LISTEN/healthz" >/dev/null; do
  kill -0 $FGS_PID 2>/dev/null || { echo "fgs failed to start" >&2; exit 1; }
  sleep 0.1
done

CODE=$(cd examples/python-hello && python3 -c '
import base64, io, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write("index.py")
print(base64.b64encode(buf.getvalue()).decode())')
BODY=$(printf '{"func_name":"hello","package":"default","runtime":"Python3.9","handler":"index.handler","memory_size":128,"timeout":3,"code_type":"zip","code_filename":"hello.zip","func_code":{"file":"%s"},"initializer_handler":"index.initializer","initializer_timeout":3,"user_data":"{\\"GREETING\\":\\"Hello\\"}"}' "$CODE")
URL="http://$LISTEN/v2/$PROJECT/fgs/functions"
if curl -sf "$URL/hello/config" >/dev/null; then
  curl -sf -X PUT "$URL/hello/code" -H 'Content-Type: application/json' \
    -d "{\"code_type\":\"zip\",\"code_filename\":\"hello.zip\",\"func_code\":{\"file\":\"$CODE\"}}" >/dev/null
else
  curl -sf -X POST "$URL" -H 'Content-Type: application/json' -d "$BODY" >/dev/null
fi

cat <<MSG

fgs is running on http://$LISTEN with the example function 'hello' (examples/python-hello).
Invoke it:

  curl -s -X POST '$URL/urn:fss:cn-north-4:$PROJECT:function:default:hello:latest/invocations' \\
       -H 'Content-Type: application/json' -H 'X-CFF-Request-Version: v1' -H 'X-Cff-Log-Type: tail' \\
       -d '{"name": "fgs"}'

Press Ctrl-C to stop.
MSG
wait $FGS_PID
