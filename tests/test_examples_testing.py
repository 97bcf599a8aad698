"""examples/testing: the pytest fixture a project copies runs here as a project would run it."""

import os
import subprocess
import sys

from conftest import EXAMPLES, FGS


def test_the_fixture_example_passes_against_this_build():
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        os.path.join(EXAMPLES, "testing")],
                       env={**os.environ, "FGS_BIN": FGS}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout
