"""The kernel-enforced process sandbox: limits, isolation, fault classification, clean-up,
and the fallback without root."""

import concurrent.futures
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import FGS, Fgs, custom_fn, python_fn, runtime_pids, unique

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="the namespace sandbox needs root (CI runs as root)")


def result(r):
    assert r.status_code == 200, r.text
    assert r.headers["X-Func-Err-Code"] == "0", r.text
    return json.loads(r.json()["result"])


def cgroup_dirs(host):
    """The instance cgroups of `host` (memory hierarchy on v1, unified on v2)."""
    parent = host.http.get(host.url + "/healthz").json()["sandbox"]["cgroup_parent"]
    return list_cgroups(parent)


def list_cgroups(parent):
    for base in ["/sys/fs/cgroup/memory", "/sys/fs/cgroup"]:
        path = os.path.join(base, parent)
        if os.path.isdir(path):
            return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    return []


def descendants(pid):
    """Host pids whose parent chain leads to `pid`."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError):
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return len(f.readlines())


@needs_root
def test_healthz_reports_the_namespace_sandbox(fgs):
    sandbox = fgs.http.get(fgs.url + "/healthz").json()["sandbox"]
    assert sandbox["mode"] == "namespace" and sandbox["fallback_reason"] is None
    assert any("pids.max=1024" in e for e in sandbox["enforced"])
    assert sandbox["cgroup_parent"].startswith("fgs/")


@needs_root
def test_memory_bomb_is_killed_at_the_limit(fgs):
    src = """
def handler(event, context):
    chunks = []
    for _ in range(2 * context.getMemorySize()):
        chunks.append(b"x" * (1024 * 1024))
    return len(chunks)
"""
    bomb = fgs.create(**python_fn(unique("oom"), src, memory_size=128, timeout=30))
    bystander = fgs.create(**python_fn(unique("calm"), "def handler(e, c):\n    return 'fine'\n"))
    assert fgs.invoke(bystander["func_urn"]).json()["result"] == "fine"
    r = fgs.invoke(bomb["func_urn"], tail=True)
    assert r.headers["X-Func-Err-Code"] == "4205" and r.headers["X-Is-Func-Err"] == "true"
    assert json.loads(r.json()["result"])["errorMessage"] == "runtime memory limit exceeded"
    # The host and the other function's warm instance are unaffected; the bomb cold-starts.
    assert fgs.invoke(bystander["func_urn"]).json()["result"] == "fine"
    assert fgs.http.get(fgs.url + "/healthz").status_code == 200
    r = fgs.invoke(bomb["func_urn"])
    assert r.headers["X-Func-Err-Code"] == "4205"


@needs_root
def test_fork_bomb_is_contained(fgs):
    src = """
import os, time
def handler(event, context):
    children, error = [], None
    for _ in range(3000):
        try:
            pid = os.fork()
        except OSError as e:
            error = e.errno
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return {"forked": len(children), "errno": error}
"""
    fn = fgs.create(**python_fn(unique("forks"), src, timeout=60, memory_size=1024))
    out = result(fgs.invoke(fn["func_urn"]))
    assert out["errno"] == 11, out  # EAGAIN
    assert 1000 <= out["forked"] < 1024, out
    assert fgs.http.get(fgs.url + "/healthz").status_code == 200
    assert result(fgs.invoke(fn["func_urn"]))["errno"] == 11


def test_open_files_stop_at_1024(fgs):
    src = """
def handler(event, context):
    files = []
    try:
        for _ in range(2000):
            files.append(open("/dev/null"))
    except OSError as e:
        return {"opened": len(files), "errno": e.errno}
    return {"opened": len(files), "errno": None}
"""
    fn = fgs.create(**python_fn(unique("fds"), src))
    out = result(fgs.invoke(fn["func_urn"]))
    assert out["errno"] == 24, out  # EMFILE
    assert 1000 <= out["opened"] < 1024, out


TMP_WRITER = """
import errno, os, time
def handler(event, context):
    if event.get("inspect"):
        time.sleep(1)  # long enough for concurrent calls to need two instances
        st = os.statvfs("/tmp")
        return {"tmp": os.listdir("/tmp"), "used_mb": (st.f_blocks - st.f_bfree) * st.f_frsize // (1024 * 1024)}
    written = 0
    chunk = b"x" * (1024 * 1024)
    try:
        with open("/tmp/fill", "wb") as f:
            for _ in range(event["mb"]):
                f.write(chunk)
                f.flush()
                written += 1
    except OSError as e:
        if not event.get("catch"):
            raise
        return {"written_mb": written, "errno": e.errno, "tmp": os.listdir("/tmp")}
    return {"written_mb": written, "errno": None, "tmp": os.listdir("/tmp")}
"""


@needs_root
def test_tmp_is_private_and_capped_at_512mb(fgs):
    # tmpfs pages count toward the instance's memory, so this function gets 2 GB.
    name = unique("tmp")
    fn = fgs.create(**python_fn(name, TMP_WRITER, memory_size=2048, timeout=60))
    out = result(fgs.invoke(fn["func_urn"], {"mb": 600, "catch": True}))
    assert out["errno"] == 28, out  # ENOSPC
    assert 500 <= out["written_mb"] <= 512, out
    # Two concurrent invocations: one gets the warm instance with the full /tmp, the other a
    # new instance whose /tmp is its own and empty.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        views = list(pool.map(lambda _: result(fgs.invoke(fn["func_urn"], {"inspect": True})), range(2)))
    views.sort(key=lambda v: v["used_mb"])
    assert views[0] == {"tmp": [], "used_mb": 0}
    assert views[1]["tmp"] == ["fill"] and views[1]["used_mb"] >= 500


@needs_root
def test_disk_full_is_reported(fgs):
    fn = fgs.create(**python_fn(unique("disk"), TMP_WRITER, memory_size=2048, timeout=60))
    r = fgs.invoke(fn["func_urn"], {"mb": 600})
    assert r.headers["X-Func-Err-Code"] == "4207" and r.headers["X-Is-Func-Err"] == "true"
    assert "No space left on device" in json.loads(r.json()["result"])["errorMessage"]


@needs_root
def test_isolation(fgs):
    src = """
import os, ctypes, json
def readable(path):
    try:
        open(path, "rb").read(1)
        return True
    except OSError:
        return False
def handler(event, context):
    libc = ctypes.CDLL(None, use_errno=True)
    mounted = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
    mount_errno = ctypes.get_errno()
    # PTRACE_TRACEME needs no privilege at all: only the seccomp filter refuses it.
    traced = libc.ptrace(0, 0, None, None)
    ptrace_errno = ctypes.get_errno()
    status = open("/proc/self/status").read()
    seccomp = [l.split()[1] for l in status.splitlines() if l.startswith("Seccomp:")]
    caps = [l.split()[1] for l in status.splitlines() if l.startswith("CapEff:")]
    try:
        open("/opt/function/code/new", "w")
        code_writable = True
    except OSError:
        code_writable = False
    return {
        "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
        "shadow": readable("/etc/shadow"),
        "data_dir": os.path.exists(event["data_dir"]),
        "root_home": os.path.exists("/root/.bashrc"),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "mount": mounted, "mount_errno": mount_errno,
        "ptrace": traced, "ptrace_errno": ptrace_errno, "seccomp": seccomp, "caps": caps,
        "code_writable": code_writable,
        "cwd": os.getcwd(), "code_root": os.environ["RUNTIME_CODE_ROOT"],
        "root": sorted(os.listdir("/")),
        "hostname": os.uname().nodename,
    }
"""
    fn = fgs.create(**python_fn(unique("iso"), src))
    out = result(fgs.invoke(fn["func_urn"], {"data_dir": fgs.data_dir}))
    assert (out["uid"], out["gid"], out["euid"]) == (1003, 1003, 1003)
    assert not out["shadow"] and not out["data_dir"] and not out["root_home"]
    assert out["pids"] == [1, 2], "the function must see only its own instance's processes"
    assert out["mount"] == -1 and out["mount_errno"] == 1  # EPERM
    assert out["ptrace"] == -1 and out["ptrace_errno"] == 1, out
    assert out["seccomp"] == ["2"] and out["caps"] == ["0000000000000000"]
    assert not out["code_writable"]
    assert out["cwd"] == out["code_root"] == "/opt/function/code"
    assert "home" in out["root"] and "var" not in out["root"] and "work" not in out["root"]
    assert out["hostname"] == "fgs-instance"


@needs_root
def test_node_and_custom_runtimes_run_sandboxed(fgs):
    node = fgs.create(**dict(python_fn(unique("nsnode"), ""), runtime="Node.js18.15", func_code={
        "file": __import__("base64").b64encode(
            b"exports.handler = async () => ({ uid: process.getuid(), pid: process.pid });\n").decode()}))
    assert result(fgs.invoke(node["func_urn"])) == {"uid": 1003, "pid": 2}
    bootstrap = """#!/bin/sh
API="http://$RUNTIME_API_ADDR/v1/runtime/invocation"
while true; do
  ID=$(curl -s -D - -o /dev/null "$API/request" | grep -i x-cff-request-id | cut -d: -f2 | tr -d ' \\r')
  printf '{"uid":%s,"pid":%s}' "$(id -u)" "$$" | curl -s -o /dev/null -X POST --data-binary @- "$API/response/$ID"
done
"""
    custom = fgs.create(**custom_fn(unique("nscustom"), bootstrap))
    assert result(fgs.invoke(custom["func_urn"])) == {"uid": 1003, "pid": 2}


@needs_root
def test_nothing_leaks_after_a_burst_and_shutdown(fresh_fgs):
    # Long enough that none of the 50 is reaped before all have answered.
    # 50 starts at once: this test counts what 50 instances leave behind.
    host = fresh_fgs("--idle-timeout", "5s", "--max-concurrent-starts", "50")
    fgs_pid = host.proc.pid
    mounts_before = host_mounts()
    # At start the network pool makes its namespaces (short `ip` runs): wait until it is full.
    deadline = time.time() + 10
    while descendants(fgs_pid) and time.time() < deadline:
        time.sleep(0.05)
    assert cgroup_dirs(host) == [] and descendants(fgs_pid) == set()
    src = "import time\ndef handler(e, c):\n    time.sleep(1)\n    return 'ok'\n"
    fn = host.create(**python_fn("burst", src))
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: host.invoke(fn["func_urn"]), range(50)))
    assert all(r.json()["result"] == "ok" for r in results)
    assert len(runtime_pids("burst")) == 50
    assert len(cgroup_dirs(host)) == 50
    # The idle timeout reaps all 50: no process, cgroup or mount remains.
    deadline = time.time() + 20
    while (cgroup_dirs(host) or descendants(fgs_pid)) and time.time() < deadline:
        time.sleep(0.2)
    assert cgroup_dirs(host) == [] and descendants(fgs_pid) == set()
    assert host_mounts() == mounts_before
    # Warm instances at shutdown are stopped and cleaned up too.
    parent = host.http.get(host.url + "/healthz").json()["sandbox"]["cgroup_parent"]
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda _: host.invoke(fn["func_urn"]), range(5)))
    assert len(cgroup_dirs(host)) == 5
    host.stop()
    assert host.proc.returncode == 0
    assert runtime_pids("burst") == [] and list_cgroups(parent) == []
    assert not os.path.isdir(os.path.join("/sys/fs/cgroup/memory", parent))
    assert host_mounts() == mounts_before


@needs_root
def test_restart_removes_leftovers_of_a_crashed_host(fresh_fgs):
    host = fresh_fgs()
    fn = host.create(**python_fn("leftover", "def handler(e, c):\n    return 'ok'\n"))
    assert host.invoke(fn["func_urn"]).json()["result"] == "ok"
    parent = host.http.get(host.url + "/healthz").json()["sandbox"]["cgroup_parent"]
    assert len(list_cgroups(parent)) == 1
    host.stop(signal.SIGKILL)
    # The instance dies with its host (parent-death signals)...
    deadline = time.time() + 5
    while runtime_pids("leftover") and time.time() < deadline:
        time.sleep(0.05)
    assert runtime_pids("leftover") == []
    # ...but its cgroup is left behind until a host with the same data dir starts.
    assert len(list_cgroups(parent)) == 1
    again = fresh_fgs(data_dir=host.data_dir)
    assert list_cgroups(parent) == []
    assert again.invoke("leftover").json()["result"] == "ok"


def test_process_sandbox_when_asked(fresh_fgs):
    host = fresh_fgs("--sandbox", "process")
    sandbox = host.http.get(host.url + "/healthz").json()["sandbox"]
    assert sandbox["mode"] == "process-group" and sandbox["fallback_reason"] == "--sandbox process"
    assert "memory_size" in sandbox["not_enforced"]
    src = "import os, resource\ndef handler(e, c):\n    return {'pgid': os.getpgid(0), 'pid': os.getpid(), 'nofile': resource.getrlimit(resource.RLIMIT_NOFILE)[0]}\n"
    fn = host.create(**python_fn("plain", src))
    out = result(host.invoke(fn["func_urn"]))
    assert out["pgid"] == out["pid"] and out["nofile"] == 1024
    with open(host.log.name) as f:
        assert "kernel-enforced sandbox unavailable" in f.read()


@needs_root
def test_without_root_fgs_degrades_loudly():
    """Started as an unprivileged user, `auto` falls back to rlimits only, says so at start and
    in /healthz, and still runs functions."""
    nobody = pwd.getpwnam("nobody")
    data = tempfile.mkdtemp(prefix="fgs-nonroot-")
    binary = os.path.join(data, "fgs")
    shutil.copy(FGS, binary)
    os.chmod(binary, 0o755)
    os.chown(data, nobody.pw_uid, nobody.pw_gid)
    host = Fgs(data)
    original = subprocess.Popen

    def as_nobody(cmd, **kw):
        drop = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid, "--clear-groups"]
        return original(drop + [binary] + cmd[1:], **kw)

    subprocess.Popen = as_nobody
    try:
        host.start()
    finally:
        subprocess.Popen = original
    try:
        sandbox = host.http.get(host.url + "/healthz").json()["sandbox"]
        assert sandbox["mode"] == "process-group"
        assert sandbox["fallback_reason"] == "not running as root"
        bootstrap = """#!/bin/sh
API="http://$RUNTIME_API_ADDR/v1/runtime/invocation"
while true; do
  ID=$(curl -s -D - -o /dev/null "$API/request" | grep -i x-cff-request-id | cut -d: -f2 | tr -d ' \\r')
  id -u | curl -s -o /dev/null -X POST --data-binary @- "$API/response/$ID"
done
"""
        fn = host.create(**custom_fn("nonroot", bootstrap))
        assert host.invoke(fn["func_urn"]).json()["result"].strip() == str(nobody.pw_uid)
        with open(host.log.name) as f:
            assert "kernel-enforced sandbox unavailable" in f.read()
        # Asked for the namespace sandbox explicitly, fgs refuses to start instead.
        strict = subprocess.run(
            ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid, "--clear-groups", binary,
             "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--sandbox", "namespace"],
            capture_output=True, text=True, timeout=30)
        assert strict.returncode != 0
        assert "namespace sandbox unavailable: not running as root" in strict.stderr
    finally:
        host.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_no_host_descriptor_leaks_into_instances(fgs):
    src = "import os\ndef handler(e, c):\n    return sorted(int(f) for f in os.listdir('/proc/self/fd'))\n"
    fn = fgs.create(**python_fn(unique("fds"), src))
    fds = result(fgs.invoke(fn["func_urn"]))
    # stdin, stdout, stderr, the runtime API socket, the listing itself; nothing inherited.
    assert fds[:3] == [0, 1, 2] and len(fds) <= 6, fds


def cpu_weight(pid):
    """The CPU weight of `pid`'s cgroup: (`cpu.shares` on v1 | `cpu.weight` on v2, value)."""
    with open("/proc/%d/cgroup" % pid) as f:
        lines = [l.strip().split(":", 2) for l in f]
    for _, controllers, path in lines:
        if "cpu" in controllers.split(","):
            for mount in ("/sys/fs/cgroup/" + controllers, "/sys/fs/cgroup/cpu"):
                shares = os.path.join(mount, path.lstrip("/"), "cpu.shares")
                if os.path.exists(shares):
                    return "cpu.shares", int(open(shares).read())
    for _, controllers, path in lines:
        if controllers == "":
            return "cpu.weight", int(open(os.path.join("/sys/fs/cgroup", path.lstrip("/"), "cpu.weight")).read())
    raise AssertionError("no cpu cgroup for %d" % pid)


def test_a_starting_instance_gets_an_ordinary_cpu_weight_then_its_own(fgs):
    """A start is a burst: until the runtime first asks for work its group weighs as an ordinary
    process (1024 shares), then as its memory says (128 MB: 128), so a busy machine does not
    starve a start past its budget."""
    import threading
    name = unique("weight")
    fn = fgs.create(**python_fn(name, "import time\ntime.sleep(2)\ndef handler(e, c):\n    return 1\n", timeout=10))
    invoked = threading.Thread(target=lambda: fgs.invoke(fn["func_urn"]))
    invoked.start()
    deadline = time.time() + 10
    while not runtime_pids(name) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    kind, starting = cpu_weight(runtime_pids(name)[0])
    invoked.join()
    _, settled = cpu_weight(runtime_pids(name)[0])
    assert starting > settled, (kind, starting, settled)
    if kind == "cpu.shares":
        assert (starting, settled) == (1024, 128)
