"""End-to-end test harness: starts the real `target/release/fgs` on a free port."""

import base64
import collections
import glob
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import zipfile

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FGS = os.environ.get("FGS_BIN", os.path.join(ROOT, "target", "release", "fgs"))
EXAMPLES = os.path.join(ROOT, "examples")
PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
# `FGS_TEST_STORE=postgres` runs every host on a PostgreSQL database of its own (one per data
# dir, so that a host restarted on its data dir finds its database again), in one throwaway
# PostgreSQL for the session; the default is each host's SQLite file.
STORE = os.environ.get("FGS_TEST_STORE", "sqlite")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fgs:
    """One running fgs process and a client for its API."""

    def __init__(self, data_dir, extra_args=(), cwd=None):
        self.data_dir = data_dir
        self.cwd = cwd
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.gateway_port = None
        self._sessions = threading.local()

    @property
    def http(self):
        """A keep-alive session per thread (tests invoke from many threads at once)."""
        if not hasattr(self._sessions, "session"):
            self._sessions.session = requests.Session()
        return self._sessions.session

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def gateway(self):
        """The API gateway's base URL (APIG triggers' APIs)."""
        return "http://127.0.0.1:%d" % self.gateway_port

    def start(self, attempts=3):
        """Starts fgs on a free loopback port, or where `--listen` in the extra args says (and
        the gateway likewise, `--gateway-listen`). A port chosen here can be taken by another
        process before fgs binds it (an ephemeral port of a client): then fgs says it cannot
        listen, and it starts again on other ports."""
        args = list(self.extra_args)
        chosen = []
        if "--listen" in args:
            self.port = int(args[args.index("--listen") + 1].rsplit(":", 1)[1])
        else:
            self.port = free_port()
            chosen.append("--listen")
            args = ["--listen", "127.0.0.1:%d" % self.port] + args
        if "--gateway-listen" in args:
            self.gateway_port = int(args[args.index("--gateway-listen") + 1].rsplit(":", 1)[1])
        else:
            # Kept across restarts, as the API port is.
            self.gateway_port = self.gateway_port or free_port()
            chosen.append("--gateway-listen")
            args = ["--gateway-listen", "127.0.0.1:%d" % self.gateway_port] + args
        if STORE == "postgres" and "--store" not in args:
            args = args + ["--store", database_for(os.path.join(self.cwd or "", self.data_dir))]
        if not any(a.startswith("--prewarm") and a != "--prewarm-memory" for a in args):
            # Tests find a function's processes by the RUNTIME_FUNC_NAME in their initial
            # environment, which a prewarmed interpreter learns only later: hosts run without
            # the pool unless a test asks for it (test_prewarm.py covers the pool).
            args = args + ["--prewarm", "off"]
        logs = os.path.join(self.cwd or "", self.data_dir)
        os.makedirs(logs, exist_ok=True)
        log_path = os.path.join(logs, "fgs-%d.log" % self.port)
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [FGS, "serve", "--data-dir", self.data_dir] + args,
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.cwd,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                with open(log_path, "rb") as f:
                    tail = f.read()[-2000:].decode(errors="replace")
                if "cannot listen" in tail and chosen and attempts > 1:
                    if "--gateway-listen" in chosen:
                        self.gateway_port = None
                    return self.start(attempts - 1)
                raise RuntimeError("fgs exited with %s:\n%s" % (self.proc.returncode, tail))
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("fgs did not become ready")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    # --- API helpers -------------------------------------------------------------------

    def api(self, method, path, project=PROJECT, **kw):
        return self.http.request(method, "%s/v2/%s/fgs%s" % (self.url, project, path), **kw)

    def create(self, expect=200, **body):
        r = self.api("POST", "/functions", json=body)
        assert r.status_code == expect, r.text
        return r.json()

    def invoke(self, urn, event=None, data=None, v1=True, tail=False, headers=None, project=PROJECT):
        h = {"Content-Type": "application/json"}
        if v1:
            h["X-CFF-Request-Version"] = "v1"
        if tail:
            h["X-Cff-Log-Type"] = "tail"
        h.update(headers or {})
        if data is None:
            data = json.dumps(event if event is not None else {})
        return self.api("POST", "/functions/%s/invocations" % urn, project=project, data=data, headers=h)


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def make_zip(files, modes=None):
    """A zip of {name: content}; modes gives unix permissions per name."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((modes or {}).get(name, 0o644) | 0o100000) << 16
            z.writestr(info, content)
    return buf.getvalue()


def zip_dir(path):
    files, modes = {}, {}
    for dirpath, _, names in os.walk(path):
        for n in names:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, path)
            with open(full, "rb") as f:
                files[rel] = f.read()
            modes[rel] = os.stat(full).st_mode & 0o777
    return make_zip(files, modes)


def python_fn(name, source, **over):
    body = dict(func_name=name, package="default", runtime="Python3.9", handler="index.handler",
                memory_size=128, timeout=3, code_type="inline", func_code={"file": b64(source)})
    body.update(over)
    return body


def node_fn(name, source, **over):
    body = dict(func_name=name, package="default", runtime="Node.js18.15", handler="index.handler",
                memory_size=128, timeout=3, code_type="inline", func_code={"file": b64(source)})
    body.update(over)
    return body


def custom_fn(name, bootstrap, **over):
    body = dict(func_name=name, package="default", runtime="Custom", handler="bootstrap.handler",
                memory_size=128, timeout=3, code_type="zip", code_filename="code.zip",
                func_code={"file": b64(make_zip({"bootstrap": bootstrap}, {"bootstrap": 0o755}))})
    body.update(over)
    return body


def runtime_pids(func_name):
    """Host pids of the runtime processes of function `func_name` (found by the
    RUNTIME_FUNC_NAME in their environment), whatever the sandbox."""
    marker = ("RUNTIME_FUNC_NAME=%s" % func_name).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                if marker in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


_counter = [0]


def unique(prefix="fn"):
    _counter[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _counter[0])


@pytest.fixture(scope="session")
def fgs():
    """One host shared by the tests that do not need a host of their own."""
    with tempfile.TemporaryDirectory(prefix="fgs-e2e-") as d:
        server = Fgs(d).start()
        yield server
        server.stop()


@pytest.fixture
def fresh_fgs():
    """Starts hosts with their own data dir and arguments; stops them after the test."""
    started = []
    tmp = tempfile.TemporaryDirectory(prefix="fgs-e2e-")

    def start(*args, data_dir=None, cwd=None):
        server = Fgs(data_dir or tmp.name, args, cwd=cwd).start()
        started.append(server)
        return server

    start.tmp = tmp.name
    yield start
    for s in started:
        s.stop()
    tmp.cleanup()


REPORT = []


def report(line):
    """A figure a test measured, printed in the summary of the run (pytest hides a passing
    test's output)."""
    REPORT.append(line)


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("measured")
        for line in REPORT:
            terminalreporter.write_line(line)


OUTSIDE_NETNS = "fgs-test-outside"
OUTSIDE_ADDR = "10.250.0.2"


def outside_network():
    """A network namespace standing for "the outside world" of functions: a veth to the host
    (10.250.0.1 here, 10.250.0.2 there). Functions in isolated instances reach it through the
    host's NAT, as they would reach any outside address; they cannot reach the host's own
    loopback. Made once per machine (as root); without root, `None`."""
    if os.geteuid() != 0:
        return None
    if not os.path.exists("/run/netns/" + OUTSIDE_NETNS):
        for cmd in [
            "ip netns add %s" % OUTSIDE_NETNS,
            "ip link add fgst0 type veth peer name eth0 netns %s" % OUTSIDE_NETNS,
            "ip addr add 10.250.0.1/30 dev fgst0",
            "ip link set fgst0 up",
            "ip -n %s addr add %s/30 dev eth0" % (OUTSIDE_NETNS, OUTSIDE_ADDR),
            "ip -n %s link set eth0 up" % OUTSIDE_NETNS,
            "ip -n %s link set lo up" % OUTSIDE_NETNS,
            "ip -n %s route add default via 10.250.0.1" % OUTSIDE_NETNS,
        ]:
            subprocess.run(cmd.split(), check=True)
    return OUTSIDE_ADDR


def bind_outside(make_server):
    """Runs `make_server()` (which binds a socket) in the outside namespace, on a thread that
    joins it: the socket stays there, served from any thread. Answers the server and the address
    functions reach it at."""
    addr = outside_network()
    if addr is None:
        return make_server("127.0.0.1"), "127.0.0.1"
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    made = {}

    def inside():
        fd = os.open("/run/netns/" + OUTSIDE_NETNS, os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "setns")
            made["server"] = make_server("0.0.0.0")
        except BaseException as e:  # reported on the caller's thread
            made["error"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=inside)
    t.start()
    t.join()
    if "error" in made:
        raise made["error"]
    return made["server"], addr


class Witness:
    """An HTTP server functions report to: which request ids ran (`GET /enter/<id>`,
    `GET /exit/<id>`), how many at once, and records they were given (`POST /events` with a JSON
    list of lists). It listens in the outside namespace (`outside_network`), where functions in
    isolated instances can reach it; `url` is its address."""

    def __init__(self):
        self.seen = collections.Counter()
        self.events = []
        self.calls = 0
        self.current = 0
        self.peak = 0
        self.lock = threading.Lock()
        witness = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                kind, _, rid = self.path.strip("/").partition("/")
                with witness.lock:
                    if kind == "enter":
                        witness.calls += 1
                        witness.current += 1
                        witness.peak = max(witness.peak, witness.current)
                        witness.seen[rid] += 1
                    elif kind == "exit":
                        witness.current -= 1
                self.answer()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with witness.lock:
                    witness.events.extend(tuple(e) for e in json.loads(body))
                self.answer()

            def answer(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 512  # many instances report at once
            daemon_threads = True

        self.server, self.host = bind_outside(lambda address: Server((address, 0), Handler))
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d" % (self.host, self.port)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def source(self, sleep=0.0):
        """A function that reports its request id on entry and exit, sleeping `sleep` between."""
        return """
import time, urllib.request
def handler(event, context):
    rid = context.getRequestID()
    urllib.request.urlopen("%s/enter/" + rid).read()
    time.sleep(%f)
    urllib.request.urlopen("%s/exit/" + rid).read()
    return {"rid": rid}
""" % (self.url, sleep, self.url)

    def unique(self):
        """How many distinct records were reported."""
        with self.lock:
            return len(set(self.events))

    def close(self):
        self.server.shutdown()


@pytest.fixture
def witness():
    w = Witness()
    yield w
    w.close()


# --- authentication ------------------------------------------------------------------------

AK, SK = "fgs-test-ak", "fgs-test-sk-0123456789"
OTHER_PROJECT = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CREDENTIALS = [
    {"access_key": AK, "secret_key": SK, "projects": [PROJECT], "user_name": "alice", "password": "alice-pw"},
    {"access_key": "other-ak", "secret_key": "other-sk", "projects": [OTHER_PROJECT]},
    {"access_key": "reader-ak", "secret_key": "reader-sk", "projects": [PROJECT], "read_only": True},
    {"access_key": "ops-ak", "secret_key": "ops-sk", "projects": ["*"]},
]


def write_credentials(directory, credentials=CREDENTIALS, mode=0o600):
    path = os.path.join(directory, "credentials-%d.json" % len(os.listdir(directory)))
    with open(path, "w") as f:
        json.dump({"credentials": credentials}, f)
    os.chmod(path, mode)
    return path


@pytest.fixture(scope="session")
def auth_fgs():
    """A host with `--auth required` and the test credentials."""
    with tempfile.TemporaryDirectory(prefix="fgs-e2e-auth-") as d:
        creds_dir = tempfile.mkdtemp(dir=d)
        server = Fgs(os.path.join(d, "data"), ["--auth", "required", "--credentials", write_credentials(creds_dir)])
        server.start()
        yield server
        server.stop()


def signed(host, method, path, ak=AK, sk=SK, body=b"", query=None, headers=None, date=None):
    """A request to `host` signed with the official SDK's own signer (SDK-HMAC-SHA256)."""
    import sys
    import urllib.parse
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from sdk_sign import sign

    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    h = dict(headers or {})
    if date:
        h["X-Sdk-Date"] = date
    url = host.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    signed_headers = sign(method, url, body, ak, sk, h)
    return requests.request(method, url, headers=signed_headers, data=body)


_POPEN = subprocess.Popen


class Postgres:
    """A throwaway PostgreSQL cluster in a temp dir, on a free loopback port, trusting local
    connections (started by the tests that share a database between hosts). As root, the
    server runs as the `postgres` user, which the Debian package creates."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        self.bin = os.environ.get("FGS_PG_BIN") or (bins[-1] if bins else "")
        if not os.path.exists(os.path.join(self.bin, "postgres")):
            raise RuntimeError("PostgreSQL is not installed (./scripts/test.sh installs it)")
        self.dir = tempfile.mkdtemp(prefix="fgs-pg-")
        self.port = free_port()
        self.databases = 0
        if os.geteuid() == 0:
            import pwd
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.runner = ["runuser", "-u", "postgres", "--"]
        else:
            self.runner = []
        data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", data, "-U", "fgs", "--auth=trust", "-E", "UTF8", "--no-sync")
        # fsync off: the tests kill fgs, never PostgreSQL, so its durability is not what
        # they test; it keeps the suite fast.
        self._run("pg_ctl", "-D", data, "-w", "-l", os.path.join(self.dir, "server.log"), "start",
                  "-o", "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
                  % (self.port, self.dir))

    def _run(self, tool, *args):
        subprocess.run(self.runner + [os.path.join(self.bin, tool)] + list(args), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir)

    def sql(self, statement, database="postgres", separator="|"):
        # The Popen of when the harness was loaded: a test may replace subprocess.Popen to start
        # fgs as another user (test_sandbox), which psql must not be.
        proc = _POPEN(
            [os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "fgs",
             "-d", database, "-At", "-F", separator, "-v", "ON_ERROR_STOP=1", "-c", statement],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError("psql: %s" % err)
        return out

    def database(self):
        """The URL of a new, empty database."""
        self.databases += 1
        name = "fgs_%d_%d" % (os.getpid(), self.databases)
        self.sql("CREATE DATABASE %s" % name)
        return "postgres://fgs@127.0.0.1:%d/%s" % (self.port, name)

    def stop(self):
        self._run("pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


_postgres = []
_databases = {}


def shared_postgres():
    """The session's PostgreSQL, started the first time it is asked for."""
    if not _postgres:
        import atexit
        _postgres.append(Postgres())
        atexit.register(_postgres[0].stop)
    return _postgres[0]


def database_for(data_dir):
    key = os.path.realpath(data_dir)
    if key not in _databases:
        _databases[key] = shared_postgres().database()
    return _databases[key]


@pytest.fixture(scope="session")
def postgres():
    return shared_postgres()


def store_sql(data_dir, statement, params=()):
    """Runs one SQL statement (`?` placeholders) on the function store of the host of
    `data_dir` — its SQLite file, or under FGS_TEST_STORE=postgres its database — and returns
    the rows as lists of strings, the same for both engines."""
    if STORE != "postgres":
        import sqlite3
        db = sqlite3.connect(os.path.join(data_dir, "fgs.sqlite3"))
        try:
            rows = db.execute(statement, params).fetchall()
            db.commit()
        finally:
            db.close()
        return [[str(v) for v in row] for row in rows]
    parts = statement.split("?")
    assert len(parts) == len(params) + 1, statement
    quoted = ["'%s'" % str(p).replace("'", "''") for p in params] + [""]
    sql = "".join(part + value for part, value in zip(parts, quoted))
    url = database_for(data_dir)
    out = shared_postgres().sql(sql, database=url.rsplit("/", 1)[1], separator="\x1f")
    return [line.split("\x1f") for line in out.splitlines() if line]
