"""fgs bootstrap for FunctionGraph Python runtimes.

Implements the FunctionGraph Python programming model (``handler(event, context)``, an
optional ``initializer(context)``, the documented context methods) on top of the
custom-runtime API served by fgs at ``$RUNTIME_API_ADDR``.

In a prewarmed sandbox (``$FGS_PREWARMED``) the interpreter starts before any function has
taken it: it imports this bootstrap and common stdlib modules, then waits for its assignment
(``GET /v1/runtime/assignment``), which comes once fgs has mounted the function's code. The
answer is the function's environment; the bootstrap adopts it and goes on as any instance.
"""

import datetime
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["RUNTIME_API_ADDR"]


def settings():
    """The function's settings, from its environment."""
    global CODE_ROOT, HANDLER, INITIALIZER, TIMEOUT_S
    CODE_ROOT = os.environ.get("RUNTIME_CODE_ROOT", os.getcwd())
    HANDLER = os.environ.get("RUNTIME_HANDLER", "index.handler")
    INITIALIZER = os.environ.get("RUNTIME_INITIALIZER_HANDLER", "")
    TIMEOUT_S = int(os.environ.get("RUNTIME_TIMEOUT", "3"))


settings()


class _Logger:
    """Writes "time request-id level message" lines to stdout, the invocation's log."""

    def __init__(self, context):
        self._context = context

    def _log(self, level, msg, *args):
        if args:
            msg = msg % args
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        sys.stdout.write("%s %s %s %s\n" % (now, self._context.getRequestID(), level, msg))
        sys.stdout.flush()

    def info(self, msg, *args):
        self._log("INFO", msg, *args)

    def warn(self, msg, *args):
        self._log("WARN", msg, *args)

    warning = warn

    def error(self, msg, *args):
        self._log("ERROR", msg, *args)

    def debug(self, msg, *args):
        self._log("DEBUG", msg, *args)


class Context:
    """The FunctionGraph context object."""

    def __init__(self, request_id="", headers=None):
        self._request_id = request_id
        self._headers = headers or {}
        self._start = time.time()
        self._timeout_s = TIMEOUT_S
        self._user_data = json.loads(os.environ.get("RUNTIME_USERDATA") or "{}")
        self._logger = _Logger(self)

    def getRequestID(self):
        return self._request_id

    def getRemainingTimeInMilliSeconds(self):
        return max(0, int(self._timeout_s * 1000 - (time.time() - self._start) * 1000))

    def getRunningTimeInSeconds(self):
        return self._timeout_s

    def getUserData(self, key, default=None):
        return self._user_data.get(key, default)

    def getFunctionName(self):
        return os.environ.get("RUNTIME_FUNC_NAME", "")

    def getVersion(self):
        return os.environ.get("RUNTIME_FUNC_VERSION", "latest")

    def getMemorySize(self):
        return int(os.environ.get("RUNTIME_MEMORY", "128"))

    def getCPUNumber(self):
        return int(os.environ.get("RUNTIME_CPU", "300"))

    def getProjectID(self):
        return os.environ.get("RUNTIME_PROJECT_ID", "")

    def getPackage(self):
        return os.environ.get("RUNTIME_PACKAGE", "default")

    def getAlias(self):
        return os.environ.get("RUNTIME_ALIAS", "")

    def getAccessKey(self):
        return self._headers.get("x-cff-access-key", "")

    def getSecretKey(self):
        return self._headers.get("x-cff-secret-key", "")

    def getSecurityAccessKey(self):
        return self._headers.get("x-cff-security-access-key", "")

    def getSecuritySecretKey(self):
        return self._headers.get("x-cff-security-secret-key", "")

    def getSecurityToken(self):
        return self._headers.get("x-cff-security-token", "")

    def getToken(self):
        return self._headers.get("x-cff-auth-token", "")

    def getLogger(self):
        return self._logger


def error_payload(exc, message=None):
    return json.dumps({
        "errorMessage": message or "function invocation exception, error: %s" % exc,
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    })


def load(entry):
    """Imports file.function from the code root; raises on failure."""
    module_name, func_name = entry.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise RuntimeError(
            "Syntax error in module '%s'(%s (%s, line %s))"
            % (module_name, exc.msg, os.path.basename(exc.filename or ""), exc.lineno)
        ) from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise AttributeError("function '%s' not found in module '%s'" % (func_name, module_name))
    return func


def encode_result(value):
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


def decode_event(body):
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class Api:
    def __init__(self):
        self.conn = http.client.HTTPConnection(API)

    def call(self, method, path, body=None):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(API)
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def preload():
    """Stdlib modules handlers commonly import, loaded while the sandbox waits (none runs
    anything a function could observe)."""
    import base64, hashlib, hmac, logging, random, re, uuid  # noqa: F401
    import urllib.parse, urllib.request  # noqa: F401


def await_assignment(api):
    """Waits until a function takes this prewarmed sandbox, then becomes its instance: its
    environment, its dependency packages on sys.path (where PYTHONPATH would have put
    them), its code root as the working directory (now that the code is mounted there)."""
    while True:
        try:
            resp, body = api.call("GET", "/v1/runtime/assignment")
        except OSError:
            time.sleep(0.05)
            continue
        if resp.status == 200:
            break
        time.sleep(0.05)
    os.environ.clear()
    for name, value in json.loads(body):
        os.environ[name] = value
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[1:1] = paths
    settings()
    os.chdir(CODE_ROOT)


def main():
    api = Api()
    if os.environ.get("FGS_PREWARMED"):
        preload()
        await_assignment(api)
    sys.path.insert(0, CODE_ROOT)
    handler = None
    load_error = None
    try:
        handler = load(HANDLER)
    except Exception as exc:  # reported on every invocation, as FunctionGraph does
        load_error = exc

    if INITIALIZER and load_error is None:
        api.call("POST", "/v1/runtime/init/start", b"")
        try:
            init = load(INITIALIZER)
            init(Context())
        except Exception as exc:
            traceback.print_exc()
            api.call("POST", "/v1/runtime/init/error",
                     error_payload(exc, "function initialization failed, error: %s" % exc))
            sys.exit(1)

    while True:
        try:
            resp, body = api.call("GET", "/v1/runtime/invocation/request")
        except OSError:
            time.sleep(0.05)
            continue
        if resp.status != 200:
            time.sleep(0.05)
            continue
        headers = {k.lower(): v for k, v in resp.getheaders()}
        request_id = headers.get("x-cff-request-id", "")
        if load_error is not None:
            api.call("POST", "/v1/runtime/invocation/error/" + request_id,
                     error_payload(load_error, str(load_error)))
            continue
        context = Context(request_id, headers)
        try:
            result = encode_result(handler(decode_event(body), context))
        except Exception as exc:
            traceback.print_exc()
            api.call("POST", "/v1/runtime/invocation/error/" + request_id, error_payload(exc))
            continue
        api.call("POST", "/v1/runtime/invocation/response/" + request_id, result)


if __name__ == "__main__":
    main()
