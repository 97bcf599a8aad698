"""The `fgs` client commands against the real binary: `serve --manifest`, `apply` (plan,
idempotence, updates, --prune, --dry-run, manifest errors with their line and column) and
`invoke` (result on stdout, request id on stderr, exit codes)."""

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time

import pytest
import requests

from conftest import EXAMPLES, FGS, unique

MANIFEST = """\
functions:
  hello:
    runtime: Python3.9
    handler: index.handler
    code: ./hello
    memory: 128
    timeout: 3
    environment: {GREETING: Hello}
"""

SOURCE = "import os\ndef handler(event, context):\n    return {'v': %d, 'greeting': context.getUserData('GREETING'), 'event': event}\n"


def fgs(*args, **kw):
    return subprocess.run([FGS, *args], capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def host():
    proc = subprocess.Popen([FGS, "serve", "--ephemeral", "--listen", "127.0.0.1:0", "--prewarm", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready = json.loads(proc.stdout.readline())
    yield ready["api"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "index.py").write_text(SOURCE % 1)
    (tmp_path / "fgs.yaml").write_text(MANIFEST)
    return tmp_path


def apply(project, host, *extra):
    return fgs("apply", "-f", str(project / "fgs.yaml"), "--endpoint", host, *extra)


def invoke(host, name, data="{}", *extra):
    return fgs("invoke", name, "--data", data, "--endpoint", host, *extra)


def test_apply_plans_creates_and_a_second_apply_changes_nothing(project, host):
    first = apply(project, host)
    assert (first.returncode, first.stdout) == (0, "create    function hello\n"), first.stderr
    again = apply(project, host)
    assert (again.returncode, again.stdout) == (0, "unchanged function hello\n")
    out = invoke(host, "hello", '{"name": "fgs"}')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"v": 1, "greeting": "Hello", "event": {"name": "fgs"}}
    assert out.stderr.startswith("request id ") and " ms" in out.stderr.split(", duration ")[1]

    (project / "hello" / "index.py").write_text(SOURCE % 2)
    assert apply(project, host).stdout == "update    function hello (code)\n"
    assert json.loads(invoke(host, "hello").stdout)["v"] == 2
    (project / "fgs.yaml").write_text(MANIFEST.replace("memory: 128", "memory: 256").replace("Hello", "Hi"))
    assert apply(project, host, "--dry-run").stdout == "update    function hello (config)\n"
    assert apply(project, host).stdout == "update    function hello (config)\n"
    assert json.loads(invoke(host, "hello").stdout)["greeting"] == "Hi"
    assert apply(project, host).stdout == "unchanged function hello\n"
    # The initializer's timeout is part of the configuration too.
    with_init = MANIFEST.replace("memory: 128", "memory: 256").replace("Hello", "Hi") + \
        "    initializer: {handler: index.init, timeout: 3}\n"
    (project / "hello" / "index.py").write_text(SOURCE % 2 + "def init(context):\n    pass\n")
    (project / "fgs.yaml").write_text(with_init)
    assert apply(project, host).stdout == "update    function hello (config, code)\n"
    (project / "fgs.yaml").write_text(with_init.replace("timeout: 3}", "timeout: 5}"))
    assert apply(project, host).stdout == "update    function hello (config)\n"
    assert apply(project, host).stdout == "unchanged function hello\n"


def test_prune_deletes_what_the_manifest_no_longer_names(project, host):
    (project / "other").mkdir()
    (project / "other" / "index.py").write_text(SOURCE % 9)
    two = MANIFEST + MANIFEST.split("\n", 1)[1].replace("hello:", "other:").replace("./hello", "./other")
    (project / "fgs.yaml").write_text(two)
    assert apply(project, host).stdout == "create    function hello\ncreate    function other\n"
    (project / "fgs.yaml").write_text(MANIFEST)
    # Without --prune the other function stays.
    assert apply(project, host).stdout == "unchanged function hello\n"
    assert invoke(host, "other").returncode == 0
    assert apply(project, host, "--prune").stdout == "unchanged function hello\ndelete    function other\n"
    gone = invoke(host, "other")
    assert gone.returncode == 1 and "FSS.1051" in gone.stderr


RESOURCES = """\
    versions: [v1]
    aliases:
      prod: {version: v1}
    triggers:
      - {type: TIMER, status: ACTIVE, event: {name: hourly, schedule_type: Rate, schedule: 1h}}
"""


def test_manifest_versions_aliases_and_triggers_apply_idempotently_and_prune(project, host):
    (project / "fgs.yaml").write_text(MANIFEST + RESOURCES)
    first = apply(project, host)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ("create    function hello\ncreate    version hello:v1\n"
                            "create    alias hello:prod\ncreate    trigger hello TIMER\n")
    unchanged = ("unchanged function hello\nunchanged version hello:v1\n"
                 "unchanged alias hello:prod\nunchanged trigger hello TIMER\n")
    assert apply(project, host).stdout == unchanged
    triggers = requests.get("%s/v2/default/fgs/triggers/hello" % host).json()
    assert [(t["trigger_type_code"], t["trigger_status"], t["event_data"]["schedule"]) for t in triggers] == \
        [("TIMER", "ACTIVE", "1h")]

    # New code and a v2; the alias moves to v2 with a share for v1; the trigger is disabled.
    (project / "hello" / "index.py").write_text(SOURCE % 2)
    changed = RESOURCES.replace("[v1]", "[v1, v2]").replace("{version: v1}", "{version: v2, weights: {v1: 30}}") \
        .replace("ACTIVE", "DISABLED")
    (project / "fgs.yaml").write_text(MANIFEST + changed)
    r = apply(project, host)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("update    function hello (code)\nunchanged version hello:v1\ncreate    version hello:v2\n"
                        "update    alias hello:prod\nupdate    trigger hello TIMER (DISABLED)\n"), r.stdout + r.stderr
    assert apply(project, host).stdout.count("unchanged") == 5
    assert json.loads(invoke(host, "hello:v1").stdout)["v"] == 1
    assert json.loads(invoke(host, "hello:v2").stdout)["v"] == 2
    alias = requests.get("%s/v2/default/fgs/functions/hello/aliases/prod" % host).json()
    assert (alias["version"], alias["additional_version_weights"]) == ("v2", {"v1": 30})
    assert requests.get("%s/v2/default/fgs/triggers/hello" % host).json()[0]["trigger_status"] == "DISABLED"

    # A changed trigger is another trigger: created, and the old one deleted with --prune only;
    # versions and aliases the manifest no longer names go with --prune too.
    fewer = "    versions: [v2]\n    aliases: {}\n    triggers:\n" \
            "      - {type: TIMER, event: {name: daily, schedule_type: Rate, schedule: 1d}}\n"
    (project / "fgs.yaml").write_text(MANIFEST + fewer)
    assert apply(project, host, "--dry-run").stdout == \
        "unchanged function hello\nunchanged version hello:v2\ncreate    trigger hello TIMER\n"
    r = apply(project, host, "--prune")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["unchanged function hello", "unchanged version hello:v2", "create    trigger hello TIMER"]
    assert lines[3].startswith("delete    trigger hello TIMER ") and lines[4:] == \
        ["delete    alias hello:prod", "delete    version hello:v1"], r.stdout + r.stderr
    versions = requests.get("%s/v2/default/fgs/functions/hello/versions" % host).json()["versions"]
    assert sorted(v["version"] for v in versions) == ["latest", "v2"]
    assert requests.get("%s/v2/default/fgs/functions/hello/aliases" % host).json() == []
    assert [t["event_data"]["name"] for t in requests.get("%s/v2/default/fgs/triggers/hello" % host).json()] == ["daily"]
    # Left out, they are not managed: nothing of them is deleted, even with --prune.
    (project / "fgs.yaml").write_text(MANIFEST)
    assert apply(project, host, "--prune").stdout == "unchanged function hello\n"
    assert len(requests.get("%s/v2/default/fgs/triggers/hello" % host).json()) == 1

    # What the host refuses names the step and carries its code.
    (project / "fgs.yaml").write_text(MANIFEST + "    triggers:\n      - {type: SMOKE, event: {}}\n")
    bad = apply(project, host)
    assert bad.returncode == 1 and "create trigger hello SMOKE" in bad.stderr and "FSS.1101" in bad.stderr, bad.stderr


def test_manifest_errors_say_where(project, host):
    cases = [
        (MANIFEST.replace("memory: 128", "memroy: 128"), "fgs.yaml:6:5", "memroy"),
        (MANIFEST + "triggers: {}\n", "fgs.yaml:9:1", "triggers"),
        (MANIFEST.replace("timeout: 3", "timeout: soon"), "fgs.yaml:7:14", "invalid type"),
        (MANIFEST.replace("  hello:", "  9lives:"), "functions.9lives", "function name"),
        (MANIFEST.replace("./hello", "./missing"), "functions.hello.code", "./missing"),
        ("functions: [", "fgs.yaml", ""),
    ]
    for text, where, what in cases:
        (project / "fgs.yaml").write_text(text)
        r = apply(project, host)
        assert r.returncode == 1 and where in r.stderr and what in r.stderr, (text, r.stderr)
    # What the host refuses is its FSS code.
    (project / "fgs.yaml").write_text(MANIFEST.replace("Python3.9", "Cobol"))
    r = apply(project, host)
    assert r.returncode == 1 and "FSS." in r.stderr and "hello" in r.stderr, r.stderr
    assert apply(project, "http://127.0.0.1:1").returncode == 1


def test_invoke_exit_codes(project, host):
    (project / "hello" / "index.py").write_text("def handler(event, context):\n    raise ValueError('boom')\n")
    apply(project, host)
    failed = invoke(host, "hello")
    assert failed.returncode == 1 and failed.stdout == "" and "boom" in failed.stderr
    assert invoke(host, "hello", "not json").returncode == 1
    assert invoke(host, "nope").returncode == 1
    (project / "event.json").write_text('{"from": "file"}')
    (project / "hello" / "index.py").write_text(SOURCE % 3)
    apply(project, host)
    out = invoke(host, "hello", "@%s" % (project / "event.json"))
    assert json.loads(out.stdout)["event"] == {"from": "file"}
    assert invoke(host, "hello", "{}", "--project", "elsewhere").returncode == 1


def test_serve_applies_a_manifest_before_it_says_it_is_ready(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    proc = subprocess.Popen([FGS, "serve", "--ephemeral", "--listen", "127.0.0.1:0", "--prewarm", "off",
                             "--manifest", str(tmp_path / "examples" / "fgs.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        ready = json.loads(proc.stdout.readline())
        out = invoke(ready["api"], "hello", '{"name": "fgs"}')
        assert out.returncode == 0, out.stderr
        assert "Hello, fgs!" in json.loads(out.stdout)["body"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    bad = tmp_path / "bad.yaml"
    bad.write_text("functions: {x: {runtime: Python3.9}}\n")
    r = fgs("serve", "--ephemeral", "--listen", "127.0.0.1:0", "--prewarm", "off", "--manifest", str(bad))
    assert r.returncode == 1 and "bad.yaml" in r.stderr and r.stdout == ""


def test_watch_reloads_saved_code_and_survives_a_syntax_error(project):
    import time
    import urllib.request

    from conftest import report

    proc = subprocess.Popen([FGS, "serve", "--ephemeral", "--listen", "127.0.0.1:0", "--prewarm", "off",
                             "--manifest", str(project / "fgs.yaml"), "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code = project / "hello" / "index.py"

    def call():
        req = urllib.request.Request("%s/v2/default/fgs/functions/hello/invocations" % api, data=b"{}",
                                     headers={"Content-Type": "application/json", "X-Cff-Request-Version": "v1"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def until(check, within=5.0):
        start = time.perf_counter()
        while time.perf_counter() - start < within:
            answer = call()
            if check(answer):
                return (time.perf_counter() - start) * 1000
        raise AssertionError("not live within %.0f s: %s" % (within, answer))

    try:
        api = json.loads(proc.stdout.readline())["api"]
        assert json.loads(call()["result"])["v"] == 1
        times = []
        for v in range(2, 8):
            code.write_text(SOURCE % v)
            times.append(until(lambda a: a["status"] == 200 and json.loads(a["result"])["v"] == v))
            time.sleep(0.05)
        times.sort()
        report("hot reload: save to first new result p50 %.0f ms over %d edits (max %.0f ms)"
               % (times[len(times) // 2], len(times), times[-1]))
        code.write_text("def handler(event, context:\n    return 1\n")
        until(lambda a: a["status"] != 200 and "Syntax error" in a["result"])
        assert urllib.request.urlopen(api + "/healthz").status == 200
        code.write_text(SOURCE % 42)
        until(lambda a: a["status"] == 200 and json.loads(a["result"])["v"] == 42)
        # A manifest that no longer parses is logged; the host keeps what runs.
        (project / "fgs.yaml").write_text("functions: [")
        time.sleep(0.5)
        assert json.loads(call()["result"])["v"] == 42
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "hot reload: update function hello (code)" in err
    assert "the manifest does not parse" in err


def test_deploy_functions_and_streams_commands(project, host):
    created = fgs("deploy", str(project / "hello"), "--name", "dep", "--runtime", "Python3.9",
                  "--handler", "index.handler", "--endpoint", host)
    assert created.returncode == 0 and created.stderr.startswith("created function dep"), created.stderr
    (project / "hello" / "index.py").write_text(SOURCE % 5)
    updated = fgs("deploy", str(project / "hello"), "--name", "dep", "--runtime", "Python3.9",
                  "--handler", "index.handler", "--memory", "256", "--endpoint", host)
    assert updated.returncode == 0 and updated.stderr.startswith("updated function dep"), updated.stderr
    assert json.loads(invoke(host, "dep").stdout)["v"] == 5

    listed = fgs("functions", "list", "--endpoint", host)
    assert listed.returncode == 0
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "MODIFIED"]
    assert [r.split()[:3] for r in rows] == [["dep", "Python3.9", "256"]]
    as_json = json.loads(fgs("functions", "list", "--output", "json", "--endpoint", host).stdout)
    assert [f["func_name"] for f in as_json] == ["dep"]
    shown = json.loads(fgs("functions", "show", "dep", "--output", "json", "--endpoint", host).stdout)
    assert (shown["func_name"], shown["memory_size"]) == ("dep", 256)
    table = fgs("functions", "show", "dep", "--endpoint", host).stdout
    assert any(line.split()[:2] == ["handler", "index.handler"] for line in table.splitlines())
    missing = fgs("functions", "show", "nope", "--endpoint", host)
    assert missing.returncode == 1 and "FSS.1051" in missing.stderr

    streams = fgs("streams", "list", "--endpoint", host)
    assert (streams.returncode, streams.stdout.split()) == (0, ["ID", "NAME", "STATUS", "UPDATED"])
    absent = fgs("streams", "show", "no-such-id", "--endpoint", host)
    assert absent.returncode == 1 and "EG." not in absent.stdout

    assert fgs("functions", "delete", "dep", "--endpoint", host).returncode == 0
    assert fgs("functions", "show", "dep", "--endpoint", host).returncode == 1


def test_invoke_async_log_and_event_templates(project, host):
    (project / "hello" / "index.py").write_text(
        "def handler(event, context):\n    print('seen', sorted(event))\n    return sorted(event)\n")
    apply(project, host)
    logged = invoke(host, "hello", "{}", "--log")
    assert logged.returncode == 0 and "seen []" in logged.stderr
    for template, keys in (("apig", "body"), ("timer", "trigger_name"), ("kafka", "records"), ("dis", "ShardID"),
                           ("obs", "Records"), ("smn", "record")):
        out = fgs("invoke", "hello", "--event-template", template, "--endpoint", host)
        assert out.returncode == 0 and keys in json.loads(out.stdout), (template, out.stdout, out.stderr)
    both = fgs("invoke", "hello", "--event-template", "dis", "--data", "{}", "--endpoint", host)
    assert both.returncode == 2
    queued = fgs("invoke", "hello", "--async", "--endpoint", host)
    assert queued.returncode == 0 and len(queued.stdout.strip()) == 36, queued.stdout


def test_dev_serves_the_manifest_of_the_directory_with_hot_reload(project):
    proc = subprocess.Popen([FGS, "dev", "--ephemeral", "--listen", "127.0.0.1:0", "--prewarm", "off"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        api = json.loads(proc.stdout.readline())["api"]
        assert json.loads(invoke(api, "hello").stdout)["v"] == 1
        (project / "hello" / "index.py").write_text(SOURCE % 2)
        import time
        deadline = time.time() + 5
        while json.loads(invoke(api, "hello").stdout)["v"] != 2:
            assert time.time() < deadline, "not reloaded"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_the_client_commands_sign_their_requests_for_a_host_with_auth_required(auth_fgs, project):
    from conftest import AK, PROJECT, SK
    target = ["--endpoint", auth_fgs.url, "--project", PROJECT]
    env = lambda **kw: {**{k: v for k, v in os.environ.items() if not k.startswith("FGS_")}, **kw}

    # The host is shared with other tests of the project: a name of this test's own.
    name = unique("signed")
    (project / "fgs.yaml").write_text(MANIFEST.replace("  hello:", "  %s:" % name))
    unsigned = fgs("functions", "list", *target, env=env())
    assert unsigned.returncode == 1 and "401" in unsigned.stderr, unsigned.stderr
    signed = env(FGS_AK=AK, FGS_SK=SK)
    applied = fgs("apply", "-f", str(project / "fgs.yaml"), *target, env=signed)
    assert (applied.returncode, applied.stdout) == (0, "create    function %s\n" % name), applied.stderr
    out = fgs("invoke", name, "--data", '{"name": "signed"}', *target, env=signed)
    assert out.returncode == 0 and json.loads(out.stdout)["event"] == {"name": "signed"}, out.stderr
    listed = fgs("functions", "list", "--output", "json", *target, env=signed)
    assert name in [f["func_name"] for f in json.loads(listed.stdout)], listed.stdout + listed.stderr
    wait = time.time() + 5
    while "Start invoke request" not in fgs("logs", name, *target, env=signed).stdout and time.time() < wait:
        time.sleep(0.1)
    assert "Start invoke request" in fgs("logs", name, *target, env=signed).stdout

    # A wrong secret key, another project's key, a key without its secret: refused.
    wrong = fgs("functions", "list", *target, env=env(FGS_AK=AK, FGS_SK="not-the-key"))
    assert wrong.returncode == 1 and "401" in wrong.stderr, wrong.stderr
    foreign = fgs("functions", "list", *target, env=env(FGS_AK="other-ak", FGS_SK="other-sk"))
    assert foreign.returncode == 1 and "403" in foreign.stderr, foreign.stderr
    half = fgs("functions", "list", "--ak", AK, *target, env=env())
    assert half.returncode == 1 and "FGS_SK" in half.stderr


def test_serve_applies_its_manifest_through_its_own_authenticated_api(project, tmp_path):
    from conftest import AK, PROJECT, SK, write_credentials
    (project / "fgs.yaml").write_text("project: %s\n" % PROJECT + MANIFEST)
    creds = write_credentials(str(tmp_path))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FGS_")}, "FGS_AK": AK, "FGS_SK": SK}
    proc = subprocess.Popen([FGS, "serve", "--ephemeral", "--listen", "127.0.0.1:0", "--prewarm", "off",
                             "--auth", "required", "--credentials", creds, "--manifest", str(project / "fgs.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        ready = json.loads(proc.stdout.readline())
        out = fgs("invoke", "hello", "--endpoint", ready["api"], "--project", PROJECT, env=env)
        assert out.returncode == 0 and json.loads(out.stdout)["v"] == 1, out.stderr
        assert requests.get(ready["api"] + "/v2/%s/fgs/functions" % PROJECT).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_deploy_shows_progress_for_a_large_package_on_a_terminal_only(project, host):
    (project / "hello" / "blob.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    args = [FGS, "deploy", str(project / "hello"), "--name", "big", "--runtime", "Python3.9",
            "--handler", "index.handler", "--endpoint", host]
    piped = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and piped.stderr == "created function big (%s bytes of code)\n" % \
        piped.stderr.split("(")[1].split()[0], piped.stderr
    # On a terminal (script(1) gives it one), the bar and the spinner are drawn, then cleared.
    on_tty = subprocess.run(["script", "-qec", " ".join(args), "/dev/null"], capture_output=True, timeout=60)
    assert on_tty.returncode == 0, on_tty.stdout
    screen = on_tty.stdout.decode(errors="replace")
    assert "zipping" in screen and "updated function big" in screen, screen
    assert json.loads(invoke(host, "big").stdout)["v"] == 1


STREAMS = """\
dis_streams:
  clicks: {partitions: 1}
event_streams:
  orders:
    description: orders to hello
    source: {name: HC.Kafka, source_kafka: {addr: "127.0.0.1:1", group: g1, topic: orders}}
    sink: {name: HC.FunctionGraph, sink_fg: {urn: "urn:fss:cn-north-4:default:function:default:hello:latest"}}
    option: {thread_num: 1}
    running: false
"""


def test_manifest_dis_streams_and_event_streams(project, host):
    trigger = "    triggers:\n      - {type: DIS, event: {stream_name: clicks, polling_interval: 1}}\n"
    (project / "fgs.yaml").write_text(MANIFEST + trigger + STREAMS)
    first = apply(project, host)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ("create    dis_stream clicks\ncreate    function hello\ncreate    trigger hello DIS\n"
                            "create    event_stream orders\n"), first.stdout
    again = apply(project, host)
    assert again.stdout == ("unchanged dis_stream clicks\nunchanged function hello\nunchanged trigger hello DIS\n"
                            "unchanged event_stream orders\n"), again.stdout + again.stderr
    listed = requests.get("%s/v1/default/eventstreamings" % host).json()["items"]
    assert [(s["name"], s["status"]) for s in listed] == [("orders", "CREATED")]
    assert requests.get("%s/v2/default/streams/clicks" % host).json()["writable_partition_count"] == 1

    # More partitions; another option; started.
    changed = STREAMS.replace("{partitions: 1}", "{partitions: 2}").replace("thread_num: 1", "thread_num: 2") \
        .replace("running: false", "running: true")
    (project / "fgs.yaml").write_text(MANIFEST + trigger + changed)
    r = apply(project, host)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "update    dis_stream clicks (partitions 1 -> 2)"
    assert r.stdout.splitlines()[-1] == "update    event_stream orders (definition)"
    shown = requests.get("%s/v1/default/eventstreamings" % host).json()["items"][0]
    # Started (its source has no broker here: it may have gone to ERROR since).
    assert shown["status"] in ("RUNNING", "ERROR") and shown["option"]["thread_num"] == 2, shown
    paused = changed.replace("running: true", "running: false")
    (project / "fgs.yaml").write_text(MANIFEST + trigger + paused)
    assert apply(project, host).stdout.splitlines()[-1] in \
        ("update    event_stream orders (pause)", "unchanged event_stream orders")
    assert apply(project, host).stdout.count("unchanged") == 4
    # What cannot change is refused before anything is done.
    (project / "fgs.yaml").write_text(MANIFEST + trigger + paused.replace("{partitions: 2}", "{partitions: 2, type: ADVANCED}"))
    refused = apply(project, host)
    assert refused.returncode == 1 and "dis_streams.clicks.type" in refused.stderr and refused.stdout == ""

    # Pruned: the event stream and the DIS stream (after the trigger that reads it).
    (project / "fgs.yaml").write_text(MANIFEST + "    triggers: []\ndis_streams: {}\nevent_streams: {}\n")
    r = apply(project, host, "--prune")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "unchanged function hello"
    assert r.stdout.splitlines()[1].startswith("delete    trigger hello DIS ")
    assert r.stdout.splitlines()[2:] == ["delete    event_stream orders", "delete    dis_stream clicks"], r.stdout
    assert requests.get("%s/v1/default/eventstreamings" % host).json()["items"] == []
    assert requests.get("%s/v2/default/streams" % host).json()["stream_names"] == []
