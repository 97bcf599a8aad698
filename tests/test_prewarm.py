"""Prewarmed sandboxes (`--prewarm`): cold starts of Python and Node.js functions take an
interpreter already waiting in its sandbox; each serves one function for its life, with that
function's code, environment, limits and nothing of anyone else's."""

import concurrent.futures
import json
import os
import re
import signal
import time

import pytest

from conftest import node_fn, python_fn, unique
from test_dependencies import NODE_LIB, NODE_USER, PY_LIB, PY_USER, create_dependency
from test_sandbox import cgroup_dirs, descendants, list_cgroups

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="prewarming needs the namespace sandbox (root)")

LANES = "python=2..6,nodejs=1..2"


def metric(host, name, **labels):
    """The value of one sample of /metrics, or None."""
    text = host.http.get(host.url + "/metrics").text
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^%s(?:\{(.*)\})? (\S+)$" % re.escape(name), line)
        if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
            return float(m.group(2))
    return None


def wait_ready(host, runtime, count, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (metric(host, "fgs_prewarm_pool_size", runtime=runtime) or 0) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("%s pool not at %d: %s" % (runtime, count, metric(host, "fgs_prewarm_pool_size", runtime=runtime)))


def hits(host, runtime):
    return metric(host, "fgs_prewarm_hits_total", runtime=runtime) or 0


def waiting_interpreters(host):
    """Host pids of the host's interpreters still waiting for an assignment: prewarmed (their
    initial environment says so) and with no code at their code root yet."""
    pids = []
    for pid in descendants(host.proc.pid):
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if b"FGS_PREWARMED=1" not in f.read().split(b"\0"):
                    continue
            if not os.listdir("/proc/%d/root/opt/function/code" % pid):
                pids.append(pid)
        except OSError:
            pass
    return pids


def result(r):
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == 200, body
    return json.loads(body["result"])


INSPECT_PY = """import json, os, sys
print("module level of %s")
def initializer(context):
    with open("/tmp/initialized", "w") as f:
        f.write(context.getFunctionName())
def handler(event, context):
    return {
        "cwd": os.getcwd(),
        "code": sorted(os.listdir("/opt/function/code")),
        "tmp": sorted(os.listdir("/tmp")),
        "initialized": open("/tmp/initialized").read(),
        "env": dict(os.environ),
        "user": context.getUserData("COLOUR"),
        "name": context.getFunctionName(),
        "memory": context.getMemorySize(),
        "limit": open("/sys/fs/cgroup/memory.max").read().strip() if os.path.exists("/sys/fs/cgroup/memory.max") else None,
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "path0": sys.path[0],
    }
"""


def test_a_cold_start_takes_a_prewarmed_python_sandbox(fresh_fgs):
    host = fresh_fgs("--prewarm", LANES)
    wait_ready(host, "python", 2)
    name = unique("warm")
    fn = host.create(**python_fn(name, INSPECT_PY % name, handler="index.handler",
                                 initializer_handler="index.initializer", initializer_timeout=3,
                                 user_data=json.dumps({"COLOUR": "blue"}), memory_size=256))
    r = host.invoke(fn["func_urn"], {}, tail=True)
    out = result(r)
    assert hits(host, "python") == 1
    assert out["cwd"] == "/opt/function/code" and out["code"] == ["index.py"]
    assert out["initialized"] == name and out["name"] == name and out["user"] == "blue"
    assert out["env"]["COLOUR"] == "blue" and out["env"]["RUNTIME_FUNC_NAME"] == name
    assert out["env"]["RUNTIME_MEMORY"] == "256" and out["memory"] == 256
    assert "FGS_PREWARMED" not in out["env"]
    assert out["path0"] == "/opt/function/code"
    # The instance's own processes only: the runtime and its PID 1.
    assert len(out["pids"]) <= 3, out["pids"]
    # The module's output belongs to the first invocation's log, as without the pool.
    log = r.json()["log"]
    assert "module level of %s" % name in log
    summary = json.loads(r.headers["X-Cff-Invoke-Summary"])
    assert summary["initDuration"] > 0
    assert metric(host, "fgs_cold_start_seconds_count", runtime="Python3.9", pooled="true") == 1, [l for l in host.http.get(host.url + "/metrics").text.splitlines() if "cold_start" in l]
    # The pool refills what was taken.
    wait_ready(host, "python", 2)


def test_a_pooled_sandbox_never_shows_another_functions_code_environment_or_tmp(fresh_fgs):
    host = fresh_fgs("--prewarm", LANES)
    wait_ready(host, "python", 2)
    writer = """import os
def handler(event, context):
    with open("/tmp/secret-of-a", "w") as f:
        f.write("a")
    return sorted(os.listdir("/tmp"))
"""
    a = host.create(**python_fn(unique("a"), writer, user_data=json.dumps({"SECRET_A": "only-a"})))
    assert "secret-of-a" in result(host.invoke(a["func_urn"], {}))
    for _ in range(4):
        # Several functions in a row, each a new pooled sandbox: none sees a's anything.
        wait_ready(host, "python", 1)
        name = unique("b")
        b = host.create(**python_fn(name, INSPECT_PY % name, initializer_handler="index.initializer",
                                    initializer_timeout=3))
        out = result(host.invoke(b["func_urn"], {}))
        assert out["tmp"] == ["initialized"], out["tmp"]
        assert "SECRET_A" not in out["env"] and out["code"] == ["index.py"]
        assert out["initialized"] == name
    assert hits(host, "python") == 5
    # A pooled sandbox serves one function instance for its life: a's second invocation goes
    # to a's warm instance, which still holds a's file (and a warm b never sees a's).
    assert "secret-of-a" in result(host.invoke(a["func_urn"], {}))


def test_the_memory_limit_is_the_functions_once_assigned(fresh_fgs):
    host = fresh_fgs("--prewarm", "python=2..2")
    wait_ready(host, "python", 2)
    alloc = """def handler(event, context):
    chunks = [b"x" * (1024 * 1024) for _ in range(event["mb"])]
    return len(chunks)
"""
    # Above the 128 MB the sandbox waited with: the function's 512 MB hold.
    big = host.create(**python_fn(unique("big"), alloc, memory_size=512, timeout=20))
    assert result(host.invoke(big["func_urn"], {"mb": 300})) == 300
    # And a 128 MB function is held to its 128 MB.
    small = host.create(**python_fn(unique("small"), alloc, memory_size=128, timeout=20))
    r = host.invoke(small["func_urn"], {"mb": 300})
    assert r.headers["X-Func-Err-Code"] == "4205", r.text
    assert hits(host, "python") == 2


def test_node_and_dependencies_in_prewarmed_sandboxes(fresh_fgs):
    host = fresh_fgs("--prewarm", LANES)
    wait_ready(host, "nodejs", 1)
    wait_ready(host, "python", 2)
    py_dep = create_dependency(host, unique("pylib"), PY_LIB, "Python3.9")
    py = host.create(**python_fn(unique("dep-py"), PY_USER, depend_version_list=[py_dep["id"]]))
    out = result(host.invoke(py["func_urn"], {}))
    assert out["word"] == "hello from a dependency" and out["writable"] is False
    assert out["file"].startswith("/opt/function/dependencies/0/")
    wait_ready(host, "nodejs", 1)
    node_dep = create_dependency(host, unique("nodelib"), NODE_LIB, "Node.js18.15")
    node = host.create(**node_fn(unique("dep-node"), NODE_USER, depend_version_list=[node_dep["id"]]))
    assert result(host.invoke(node["func_urn"], {}))["word"] == "hello from node_modules"
    plain = """exports.handler = async (event, context) => ({
  cwd: process.cwd(), user: context.getUserData('COLOUR'), env: process.env,
  files: require('fs').readdirSync('/opt/function/code'), tmp: require('fs').readdirSync('/tmp'),
});
"""
    name = unique("node")
    wait_ready(host, "nodejs", 1)
    fn = host.create(**node_fn(name, plain, user_data=json.dumps({"COLOUR": "green"})))
    out = result(host.invoke(fn["func_urn"], {}))
    assert out["cwd"] == "/opt/function/code" and out["files"] == ["index.js"] and out["tmp"] == []
    assert out["user"] == "green" and out["env"]["RUNTIME_FUNC_NAME"] == name
    assert "FGS_PREWARMED" not in out["env"]
    assert hits(host, "python") == 1 and hits(host, "nodejs") == 2
    # A syntax error shows as without the pool, and the host goes on.
    broken = host.create(**python_fn(unique("broken"), "def handler(event, context)\n    return 1\n"))
    failed = host.invoke(broken["func_urn"], {}).json()
    assert failed["status"] == 500 and "Syntax error" in failed["result"], failed


def test_variables_read_at_interpreter_start_skip_the_pool(fresh_fgs):
    host = fresh_fgs("--prewarm", LANES)
    wait_ready(host, "python", 2)
    src = """import sys
def handler(event, context):
    return sys.flags.hash_randomization
"""
    fn = host.create(**python_fn(unique("seed"), src, user_data=json.dumps({"PYTHONHASHSEED": "0"})))
    assert result(host.invoke(fn["func_urn"], {})) == 0
    assert hits(host, "python") == 0
    assert metric(host, "fgs_cold_start_seconds_count", runtime="Python3.9", pooled="false") == 1


def test_the_pool_refills_after_a_burst_and_follows_the_rate(fresh_fgs):
    host = fresh_fgs("--prewarm", "python=2..6")
    wait_ready(host, "python", 2)
    src = "import json, time\ndef handler(event, context):\n    time.sleep(0.5)\n    return json.dumps(context.getFunctionName())\n"
    names = [unique("burst") for _ in range(12)]
    urns = [host.create(**python_fn(n, src))["func_urn"] for n in names]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        outs = list(pool.map(lambda u: result(host.invoke(u, {})), urns))
    assert outs == names
    taken = hits(host, "python")
    assert taken >= 2 and taken + metric(host, "fgs_prewarm_misses_total", runtime="python") == 12
    # After the burst the lane grows toward its maximum (12 cold starts in the last seconds).
    wait_ready(host, "python", 6)
    assert len(waiting_interpreters(host)) == 6


def test_prewarm_off_starts_interpreters_as_before(fresh_fgs):
    host = fresh_fgs("--prewarm", "off")
    fn = host.create(**python_fn(unique("cold"), "def handler(event, context):\n    return 1\n"))
    assert result(host.invoke(fn["func_urn"], {})) == 1
    assert metric(host, "fgs_prewarm_pool_size", runtime="python") is None
    assert waiting_interpreters(host) == []
    assert metric(host, "fgs_cold_start_seconds_count", runtime="Python3.9", pooled="false") == 1


def test_no_pooled_sandbox_outlives_its_host(fresh_fgs):
    host = fresh_fgs("--prewarm", LANES)
    wait_ready(host, "python", 2)
    wait_ready(host, "nodejs", 1)
    parent = host.http.get(host.url + "/healthz").json()["sandbox"]["cgroup_parent"]
    # Killed without a chance to clean up: the kernel ends every pooled sandbox.
    pooled = waiting_interpreters(host)
    assert len(pooled) == 3 and len(cgroup_dirs(host)) == 3
    host.proc.send_signal(signal.SIGKILL)
    host.proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists("/proc/%d" % p) for p in pooled):
        time.sleep(0.05)
    assert not any(os.path.exists("/proc/%d" % p) for p in pooled)
    # Restarted, it removes its predecessor's cgroups and makes its own pool.
    host.start()
    wait_ready(host, "python", 2)
    assert len(cgroup_dirs(host)) == 3 and len(waiting_interpreters(host)) == 3
    # A graceful stop leaves nothing either.
    pooled = waiting_interpreters(host)
    host.stop()
    assert not any(os.path.exists("/proc/%d" % p) for p in pooled)
    assert list_cgroups(parent) == []


def test_ready_sandboxes_stay_within_the_memory_budget(fresh_fgs):
    # 1 MB: the first sandbox is made (nothing is used yet), then the budget is spent.
    host = fresh_fgs("--prewarm", "python=4..4", "--prewarm-memory", "1")
    wait_ready(host, "python", 1)
    time.sleep(2)
    assert metric(host, "fgs_prewarm_pool_size", runtime="python") == 1
    assert len(waiting_interpreters(host)) == 1
    # Taking it frees the budget: the lane refills one.
    fn = host.create(**python_fn(unique("budget"), "def handler(event, context):\n    return 1\n"))
    assert result(host.invoke(fn["func_urn"], {})) == 1
    assert hits(host, "python") == 1
    wait_ready(host, "python", 1)
    time.sleep(1)
    assert metric(host, "fgs_prewarm_pool_size", runtime="python") == 1


def cpu_weight(pid):
    """The cgroup CPU weight of `pid`: `cpu.shares` on v1, `cpu.weight` on v2."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            _, controllers, path = line.strip().split(":", 2)
            if "cpu" in controllers.split(","):
                return int(open("/sys/fs/cgroup/%s%s/cpu.shares" % (controllers, path)).read())
            if controllers == "":
                return int(open("/sys/fs/cgroup%s/cpu.weight" % path).read())
    raise AssertionError("no cpu cgroup for %d" % pid)


def test_waiting_sandboxes_run_at_a_background_cpu_weight(fresh_fgs):
    host = fresh_fgs("--prewarm", "python=2..2")
    wait_ready(host, "python", 2)
    weights = {cpu_weight(pid) for pid in waiting_interpreters(host)}
    # 256 shares on v1 (an ordinary process has 1024); below the default 100 on v2.
    assert weights == {256} or all(w < 100 for w in weights), weights
