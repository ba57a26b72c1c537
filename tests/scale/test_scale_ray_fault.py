"""Fault injection: SIGKILL a Ray worker mid-scan; the scan completes and every case is stored exactly once.

A real cluster (`ray start --head --block` on 127.0.0.1, its own process group, stopped by this
test alone) runs a two-model scan driven by `faultlens scan ... --executor ray` in a subprocess,
writing to a real PostgreSQL server. When some results have landed, the test kills one
`UnitWorker` actor process. Ray restarts the actor and re-runs its unit; the store's unique keys
skip the chunks the dead worker had already committed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from faultlens.store import Store
from tests.pgserver import postgres_server, unavailable_reason

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))]

N_CASES = 120  # position, --n-per-cell 24: 24 minimal sets x 5 positions, one margin row each


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.time() + limit
    while time.time() < deadline:
        assert proc.poll() is None, "ray start exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the Ray head did not come up")


def _workers(head: subprocess.Popen) -> list:
    """This cluster's live UnitWorker actor processes (descendants of our own `ray start`)."""
    out = []
    for p in psutil.Process(head.pid).children(recursive=True):
        try:
            if "UnitWorker" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _results(url: str) -> int:
    try:
        st = Store(url)
        n = st.count("results")
        st.close()
        return n
    except Exception:  # the driver may not have created the schema yet
        return 0


@pytest.fixture
def ray_env():
    """Token authentication with a token of this test's own (Ray's default when ~/.ray/auth_token exists)."""
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex, "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def ray_head(ray_env):
    port, tmp = _free_port(), tempfile.mkdtemp(prefix="flr-", dir="/tmp")  # short: Ray's socket paths are bounded
    head = subprocess.Popen(["ray", "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
                             "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=ray_env)
    seen: set = set()
    try:
        _wait_port(port, head)
        yield head, f"127.0.0.1:{port}", seen
    finally:
        family = [head.pid, *[p.pid for p in psutil.Process(head.pid).children(recursive=True)]] if head.poll() is None else []
        os.killpg(head.pid, signal.SIGTERM)  # only the process group this fixture started
        try:
            head.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        for pid in family:  # anything that left the group (daemons) but is still ours
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass


def test_killed_worker_is_retried_and_every_case_is_stored_once(two_models, ray_head, ray_env):
    head, address, _ = ray_head
    with postgres_server() as url:
        cmd = [sys.executable, "-m", "faultlens.cli", "scan", *map(str, two_models), "--probes", "position",
               "--n-per-cell", "24", "--chunk", "3", "--shard-size", "20", "--run-id", "kill", "--executor", "ray",
               "--ray-address", address, "--store", url]
        scan = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ray_env)
        try:
            deadline = time.time() + 600
            while _results(url) < 12 and scan.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            victims = _workers(head)
            at_kill = _results(url)
            assert scan.poll() is None and victims, "the scan ended before a worker could be killed: " + scan.stderr.read().decode()[-800:]
            assert at_kill < 2 * N_CASES
            victim = victims[0].pid
            os.kill(victim, signal.SIGKILL)
            out, err = scan.communicate(timeout=900)
        finally:
            if scan.poll() is None:
                scan.kill()
        assert scan.returncode == 0, err.decode()[-2000:]
        assert "1 worker(s) died and were restarted by Ray" in " ".join(out.decode().split())  # a fresh pid finished units
        st = Store(url)
        res = st.to_pandas("results", ["kill-1", "kill-2"])
        assert len(res) == 2 * N_CASES  # all of them ...
        assert not res.duplicated(["run_id", "probe", "case_id", "metric"]).any()  # ... exactly once
        feats = st.to_pandas("features", ["kill-1", "kill-2"]).groupby(["run_id", "case_id"]).size()
        assert len(feats) == 2 * N_CASES and feats.nunique() == 1  # each chunk's features landed with its results
        assert {st.get_run(r)["status"] for r in ("kill-1", "kill-2")} == {"done"}
        assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE
