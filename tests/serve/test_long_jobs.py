"""Long files and clients that go away: progress, cancel mid-job, dropped connections, no leaked threads.

A 60-s file on the ``micro`` test variant (seconds to separate) stands in for a long file.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import MICRO, Client, handler_threads, serving, settle, worker_threads

from fastuss_fx.io import write_audio
from fastuss_fx.serve import ServeConfig

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

LONG_RATE = 16000


@pytest.fixture
def long_server(tmp_path: Path):
    folder = tmp_path / "served"
    folder.mkdir()
    audio = 0.1 * np.random.default_rng(1).standard_normal((1, 60 * LONG_RATE))
    write_audio(folder / "long.wav", audio.astype(np.float32), LONG_RATE, "16")
    write_audio(folder / "short.wav", audio[:, :LONG_RATE].astype(np.float32), LONG_RATE, "16")
    config = ServeConfig(
        folder=folder,
        work=tmp_path / "work",
        port=0,
        engine="torch",
        model=str(MICRO),
        allow_untrained=True,
        idle_timeout=0.5,
    )
    with serving(config) as server:
        yield server


def watch(client: Client, job_id: str, until: float = 1.1, timeout: float = 120.0) -> tuple[list[float], dict]:
    """Poll a job until it ends or its progress reaches ``until``: the progress values seen, the last answer."""
    seen, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/api/jobs/{job_id}")[1]
        seen.append(job["progress"])
        if job["state"] not in ("queued", "running") or job["progress"] >= until:
            return seen, job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


def test_progress_follows_a_long_file_and_cancel_stops_it(long_server):
    client = Client(long_server.url())
    workers = worker_threads()
    status, job = client.post("/api/jobs", {"pick": "long.wav", "prompts": ["speech", "sfx"]})
    assert status == 200, job
    seen, job = watch(client, job["id"])
    assert job["state"] == "done" and job["progress"] == 1.0 and job["seconds"] == 60.0
    middle = sorted({p for p in seen if 0 < p < 0.95})
    assert len(middle) >= 3, seen  # several windows reported on the way, not a jump from 0 to 1
    assert seen == sorted(seen)  # never goes back

    # cancel while it runs: the worker stops at its next window and keeps nothing
    _, other = client.post("/api/jobs", {"pick": "long.wav", "prompts": ["speech"]})
    seen, running = watch(client, other["id"], until=0.1)
    assert running["state"] == "running" and 0.1 <= running["progress"] < 0.95, running
    assert client.post(f"/api/jobs/{other['id']}/cancel", {})[0] == 200
    _, ended = watch(client, other["id"])
    assert ended["state"] == "cancelled" and ended["progress"] < 0.95, ended
    assert not (long_server.app.work / "jobs" / other["id"]).exists()
    # the worker goes on with the next job
    _, again = client.post("/api/jobs", {"pick": "short.wav", "prompts": ["speech"]})
    assert watch(client, again["id"])[1]["state"] == "done"
    assert worker_threads() == workers


def raw_request(port: int, head: str, body: bytes = b"", receive_buffer: int | None = None) -> socket.socket:
    """A socket that sent ``head`` (and ``body``) by hand; the caller decides how it goes away."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.sendall(head.encode() + body)
    return sock


def read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (then closes ours)."""
    sock.settimeout(timeout)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a killed browser's socket does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_clients_gone_mid_request_leave_nothing_behind(long_server, caplog):
    client = Client(long_server.url())
    port = long_server.server_address[1]
    before, workers = handler_threads(), worker_threads()
    _, job = client.post("/api/jobs", {"pick": "long.wav", "prompts": ["sfx"]})  # runs meanwhile
    given = long_server.app.jobs.add_result({"big": np.zeros((2, 60 * 48000), np.float32)}, 48000)  # a 23-MB stem

    with caplog.at_level(logging.DEBUG, logger="fastuss_fx.serve"):
        # an upload cut short: the client sends half the bytes and closes; nothing is stored
        wav = write_audio(long_server.app.work / "half.wav", np.zeros((1, 8000), np.float32), 8000).read_bytes()
        head = (
            f"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Filename: a.wav\r\n"
            f"Content-Length: {len(wav)}\r\n\r\n"
        )
        sock = raw_request(port, head, wav[: len(wav) // 2])
        sock.shutdown(socket.SHUT_WR)
        assert b"cut short" in read_all(sock)
        # a download dropped half-way: the server's write fails; that connection ends, nothing else
        head = f"GET /api/jobs/{given.id}/audio/big.wav HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        sock = raw_request(port, head, receive_buffer=4096)  # a small window: the server blocks mid-write
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        time.sleep(0.2)
        reset(sock)
        # a client that opens a connection, sends half a request and never returns: closed after idle_timeout
        sock = raw_request(port, "GET /api/presets HTTP/1.1\r\n")
        assert read_all(sock) == b""  # the server hung up on it
        assert settle(handler_threads, before) == before  # every connection's thread has ended

    assert list((long_server.app.work / "uploads").iterdir()) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("went away" in r.getMessage() for r in caplog.records)
    # the job ran on meanwhile, and still cancels; the server answers the next request
    assert client.get(f"/api/jobs/{job['id']}")[1]["state"] in ("running", "done")
    client.post(f"/api/jobs/{job['id']}/cancel", {})
    assert client.wait(job["id"])["state"] in ("cancelled", "done")
    _, again = client.post("/api/jobs", {"pick": "short.wav", "prompts": ["speech"]})
    assert client.wait(again["id"])["state"] == "done"
    assert worker_threads() == workers
