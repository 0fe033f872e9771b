"""``fastuss serve`` as a process: SIGINT, SIGTERM and SIGHUP each stop it and remove its work folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import Client


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_removes_the_work_folder(tmp_path: Path, signum: int):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    process = subprocess.Popen(
        [sys.executable, "-m", "fastuss_fx.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        assert "open http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() is not None else "")
        url = line.split("open ")[1].split()[0]
        assert Client(url).get("/api/files")[0] == 200
        [work] = temp.glob("fastuss-serve-*")
        assert (work / "uploads").is_dir()
        process.send_signal(signum)
        assert process.wait(30) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    assert not work.exists() and list(temp.glob("fastuss-*")) == []
