"""``fastuss render --address`` on a real two-node Ray cluster, started on this machine with ``ray start``.

Each node is a ``ray start --block`` process with 1 CPU, on free ports and in its own temporary
folder; stopping that process (SIGTERM) stops every process of its node, so teardown ends only
what this module started (``ray stop`` would stop every Ray on the machine). The cluster uses
token authentication with a token of its own, and the render driver runs as its own process
(``python -m fastuss_fx.cli``) with that token, as on a real cluster: Ray caches the auth mode
and token per process, so the test process never connects to this cluster itself.
Needs Ray (the ``dev`` extra): skipped without it, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

from fastuss_fx.cli import main

pytestmark = [
    pytest.mark.ray_cluster,
    pytest.mark.filterwarnings("ignore::fastuss_fx.runtime.UntrainedWeightsWarning"),
]

try:
    import ray  # noqa: F401 -- only to know it is installed; the nodes and the driver run in processes of their own
except ImportError:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise  # the dev extra installs Ray: in CI this test must run
    pytest.skip("Ray is not installed (pip install -e '.[dev]')", allow_module_level=True)

RAY = Path(sys.executable).with_name("ray")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 40
RENDER_TIMEOUT_S = 120
WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + float(sys.argv[3])
while sum(n["Alive"] for n in ray.nodes()) < int(sys.argv[2]):
    if time.monotonic() > deadline:
        sys.exit(f"the Ray cluster has {ray.nodes()}")
    time.sleep(0.2)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_env(token: str) -> dict[str, str]:
    """This environment, with the cluster's own auth token and no other Ray address or auth setting."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    return {
        **env,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_memory_monitor_refresh_ms": "0",
    }  # the memory monitor kills small workers on a busy CI machine


def start_node(root: Path, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """``ray start --block`` for one node; returns once it says it started (or fails with its log)."""
    log = root / f"{name}.log"
    common = [
        "--num-cpus",
        "1",
        "--num-gpus",
        "0",
        "--disable-usage-stats",
        "--temp-dir",
        str(root / name),
        "--dashboard-agent-listen-port",
        str(free_port()),
        "--min-worker-port",
        "0",
        "--max-worker-port",
        "0",
        "--object-store-memory",
        str(80 * 1024 * 1024),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(RAY), "start", "--block", *args, *common],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while b"Ray runtime started" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_node(proc)
            pytest.fail(f"ray start ({name}) did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return proc


def stop_node(proc: subprocess.Popen) -> None:
    """SIGTERM the ``ray start --block`` process (it stops its node), then kill whatever is left of its session."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the process group of this node only (start_new_session)
    proc.wait()


@pytest.fixture(scope="module")
def cluster():
    """(GCS address, environment) of a head node plus one more node, each with 1 CPU; both stopped at the end."""
    root = Path(tempfile.mkdtemp(prefix="fxray-", dir="/tmp"))  # short: Ray's socket paths must stay < 108 bytes
    env = cluster_env(secrets.token_hex(32))
    nodes: list[subprocess.Popen] = []
    try:
        port = free_port()
        nodes.append(
            start_node(
                root,
                "head",
                ["--head", "--port", str(port), "--include-dashboard", "false", "--dashboard-port", str(free_port())],
                env,
            )
        )
        address = f"127.0.0.1:{port}"
        nodes.append(start_node(root, "node", ["--address", address], env))
        # a node registers shortly after its ``ray start`` says it started
        waited = subprocess.run(
            [sys.executable, "-c", WAIT_FOR_NODES, address, "2", str(START_TIMEOUT_S)],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 30,
        )
        assert waited.returncode == 0, waited.stderr[-3000:]
        yield address, env
    finally:
        for proc in reversed(nodes):
            stop_node(proc)
        shutil.rmtree(root, ignore_errors=True)


def write(path: Path, seed: int, rate: int = 16000, seconds: float = 0.2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = (0.1 * np.random.default_rng(seed).standard_normal((1, int(rate * seconds)))).astype(np.float32)
    with AudioFile(str(path), "w", rate, 1) as f:
        f.write(audio)


def read(path: Path) -> np.ndarray:
    with AudioFile(str(path)) as f:
        return f.read(f.frames)


def test_render_joins_a_two_node_cluster(cluster, tmp_path):
    address, env = cluster
    names = ["a.wav", "b.wav"]
    for seed, name in enumerate(names):
        write(tmp_path / "in" / name, seed)
    out = tmp_path / "out"
    tiny = ["-p", "remove_music", "--model", "tiny", "--allow-untrained"]
    driver = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastuss_fx.cli",
            "-v",
            "render",
            str(tmp_path / "in"),
            *tiny,
            "-o",
            str(out),
            "--address",
            address,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_S,
    )
    assert driver.returncode == 0, driver.stderr[-3000:]
    assert "render: 2 done, 0 skipped, 0 failed" in driver.stdout
    # two 1-CPU nodes and 1-CPU workers: both workers ready means one ran on each node
    assert "2 workers of 1 threads ready" in driver.stderr and "Ray cluster of 2 CPUs on 2 nodes" in driver.stderr

    assert main(["separate", *(str(tmp_path / "in" / n) for n in names), *tiny, "-o", str(tmp_path / "single")]) == 0
    for name in names:
        rendered = name.replace(".", "_remove_music.")
        np.testing.assert_allclose(read(out / rendered), read(tmp_path / "single" / rendered), rtol=0, atol=1e-6)
