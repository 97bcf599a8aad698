"""A pytest fixture for testing a FunctionGraph project against fgs: a fresh, ephemeral fgs
host per test session, with the project's manifest applied, and an official-SDK client for it.

Copy this file next to your tests. It needs the `fgs` binary (on PATH, or FGS_BIN) and
`pip install huaweicloudsdkfunctiongraph pytest`."""

import json
import os
import shutil
import signal
import subprocess

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.environ.get("FGS_MANIFEST", os.path.join(HERE, "fgs.yaml"))


@pytest.fixture(scope="session")
def fgs_host():
    """The API URL of an fgs host that serves the manifest's functions (in project
    `default`); stopped, and its data removed, after the session."""
    binary = os.environ.get("FGS_BIN") or shutil.which("fgs")
    if not binary:
        pytest.fail("fgs not found: put it on PATH or set FGS_BIN")
    proc = subprocess.Popen(
        [binary, "serve", "--ephemeral", "--listen", "127.0.0.1:0", "--manifest", MANIFEST],
        stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        pytest.fail("fgs did not start (exit %s)" % proc.wait())
    yield json.loads(line)["api"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def functiongraph(fgs_host):
    """The official SDK's client, pointed at the host (any keys: it runs without auth)."""
    return (FunctionGraphClient.new_builder()
            .with_credentials(BasicCredentials("test-ak", "test-sk", "default"))
            .with_endpoints([fgs_host])
            .build())
