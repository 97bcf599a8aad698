"""Creates a WASM function from a component, for the benchmark scripts:
create-wasm-function.py <fgs base URL> <project> <function name> <component.wasm>"""

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
request = urllib.request.Request("%s/v2/%s/fgs/functions" % (url, project), data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
urllib.request.urlopen(request).read()
