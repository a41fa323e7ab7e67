"""Fixtures: the repository's paths, the test device, the models and the bertcl command.

Tests that need all-MiniLM-L6-v2 ($BERTCL_MINILM_DIR, else <repo>/models/all-MiniLM-L6-v2, from
scripts/fetch-model.sh) are skipped without it; tests that need a device are skipped when there
is none ($BERTCL_TEST_DEVICE picks one, as for the C tests; default: pocl, else any)."""
import os
import shutil
import subprocess
import sysconfig

import pytest

import bertcl

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TINY = os.path.join(REPO, "tests", "data", "tiny-bert")


def _matches(sel, d):
    if ":" in sel:
        return sel == d.selector
    s = sel.lower()
    return s in d.name.lower() or s in d.vendor.lower() or s in d.platform.lower() or s == d.type


@pytest.fixture(scope="session")
def device():
    devs = bertcl.devices()
    if not devs:
        pytest.skip("no OpenCL device")
    want = os.environ.get("BERTCL_TEST_DEVICE", "pocl")
    for d in devs:
        if _matches(want, d):
            return d.selector
    return devs[0].selector


@pytest.fixture(scope="session")
def minilm_dir():
    d = os.environ.get("BERTCL_MINILM_DIR") or os.path.join(REPO, "models", "all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(d, "model.safetensors")):
        pytest.skip(f"all-MiniLM-L6-v2 not found at {d} (scripts/fetch-model.sh)")
    return d


@pytest.fixture(scope="session")
def minilm(minilm_dir, device):
    enc = bertcl.Encoder(minilm_dir, device=device)
    yield enc
    enc.close()


@pytest.fixture(scope="session")
def tiny(device):
    enc = bertcl.Encoder(TINY, device=device)
    yield enc
    enc.close()


@pytest.fixture(scope="session")
def cli():
    """The bertcl command built with this module's library: $BERTCL_BIN, else the one
    `pip install ./python` put beside this interpreter, else the build tree's."""
    cands = [os.environ.get("BERTCL_BIN"),
             os.path.join(sysconfig.get_path("scripts"), "bertcl"),
             os.path.join(REPO, "build", "bertcl"),
             shutil.which("bertcl")]
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    pytest.skip("no bertcl command found (set $BERTCL_BIN)")


def run_cli(cli, *args):
    r = subprocess.run([cli, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join([cli, *args])} failed ({r.returncode}): {r.stderr}")
    return r
