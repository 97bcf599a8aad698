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
import importlib
import json
import os
import socket
import sys
import time
import traceback

API = os.environ["RUNTIME_API_ADDR"]


def settings():
    """The function's settings, from its environment."""
    global CODE_ROOT, HANDLER, INITIALIZER, TIMEOUT_S, USER_DATA
    CODE_ROOT = os.environ.get("RUNTIME_CODE_ROOT", os.getcwd())
    HANDLER = os.environ.get("RUNTIME_HANDLER", "index.handler")
    INITIALIZER = os.environ.get("RUNTIME_INITIALIZER_HANDLER", "")
    TIMEOUT_S = int(os.environ.get("RUNTIME_TIMEOUT", "3"))
    USER_DATA = json.loads(os.environ.get("RUNTIME_USERDATA") or "{}")


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
        self._user_data = USER_DATA
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


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


# Asks fgs to answer a response or error with the next event (saves a round trip).
NEXT = (("X-Fgs-Next", "1"),)


class Api:
    """A minimal keep-alive HTTP/1.1 client for the runtime API: http.client parses every
    response's headers with the email package, which was most of a warm invocation's cost."""

    def __init__(self):
        host, port = API.rsplit(":", 1)
        self.addr = (host, int(port))
        self.sock = None
        self.buf = b""

    def call(self, method, path, body=b"", headers=()):
        for attempt in range(2):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(self.addr)
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.buf = b""
                return self._exchange(method, path, body or b"", headers)
            except OSError:
                self.close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _exchange(self, method, path, body, headers):
        head = "%s %s HTTP/1.1\r\nHost: runtime\r\nContent-Length: %d\r\n%s\r\n" % (
            method, path, len(body), "".join("%s: %s\r\n" % h for h in headers))
        if len(body) < 65536:
            self.sock.sendall(head.encode("latin-1") + body)
        else:
            self.sock.sendall(head.encode("latin-1"))
            self.sock.sendall(body)
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._fill()
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        self.buf = self.buf[end + 4:]
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            data = self._read(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            data = self._chunked()
        else:
            data = b""
        if fields.get("connection", "").lower() == "close":
            self.close()
        return Response(status, fields, data)

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("runtime API closed the connection")
        self.buf += data

    def _read(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _chunked(self):
        parts = []
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                while self._line():
                    pass
                return b"".join(parts)
            parts.append(self._read(size))
            self._read(2)


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
            resp = api.call("GET", "/v1/runtime/assignment")
        except OSError:
            time.sleep(0.05)
            continue
        if resp.status == 200:
            break
        time.sleep(0.05)
    os.environ.clear()
    for name, value in json.loads(resp.body):
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
        api.call("POST", "/v1/runtime/init/start")
        try:
            init = load(INITIALIZER)
            init(Context())
        except Exception as exc:
            traceback.print_exc()
            api.call("POST", "/v1/runtime/init/error",
                     error_payload(exc, "function initialization failed, error: %s" % exc).encode())
            sys.exit(1)

    resp = None
    while True:
        if resp is None or resp.status != 200:
            try:
                resp = api.call("GET", "/v1/runtime/invocation/request")
            except OSError:
                time.sleep(0.05)
                continue
            if resp.status != 200:
                time.sleep(0.05)
                continue
        request_id = resp.headers.get("x-cff-request-id", "")
        if load_error is not None:
            resp = api.call("POST", "/v1/runtime/invocation/error/" + request_id,
                            error_payload(load_error, str(load_error)).encode(), NEXT)
            continue
        context = Context(request_id, resp.headers)
        try:
            result = encode_result(handler(decode_event(resp.body), context))
        except Exception as exc:
            traceback.print_exc()
            resp = api.call("POST", "/v1/runtime/invocation/error/" + request_id,
                            error_payload(exc).encode(), NEXT)
            continue
        # The answer to the response is the next event.
        resp = api.call("POST", "/v1/runtime/invocation/response/" + request_id, result, NEXT)


if __name__ == "__main__":
    main()
