"""Creates a WASM function from a component, for the benchmark scripts:
create-wasm-function.py <fgs base URL> <project> <function name> <component.wasm>
With FGS_AK and FGS_SK set, the request is signed as the official SDK signs it."""

import base64
import io
import json
import os
import sys
import urllib.request
import zipfile

url, project, name, component = sys.argv[1:5]
handler = os.path.basename(component)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.write(component, handler)
body = {"func_name": name, "runtime": "WASM", "handler": handler, "memory_size": 128, "timeout": 3,
        "code_type": "zip", "code_filename": name + ".zip", "func_code": {"file": base64.b64encode(buf.getvalue()).decode()}}
target = "%s/v2/%s/fgs/functions" % (url, project)
data = json.dumps(body).encode()
headers = {"Content-Type": "application/json"}
if os.environ.get("FGS_AK"):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sdk_sign import sign
    headers = sign("POST", target, data, os.environ["FGS_AK"], os.environ["FGS_SK"])
request = urllib.request.Request(target, data=data, headers=headers)
urllib.request.urlopen(request).read()
