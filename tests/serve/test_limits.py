"""What a long-running ``fastuss serve`` holds stays bounded, files are streamed, and no answer shows a
server path: uploads, jobs (with their stems and exports) and processors are capped; the caller's
config is left alone; a busy port leaves no work folder."""

from __future__ import annotations

import socket
import tempfile
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import RATE, Client, serving, tiny_config, tone

from fastuss_fx.io import write_audio
from fastuss_fx.serve import ServeConfig, make_server
from fastuss_fx.serve.errors import public_message, without_paths
from fastuss_fx.serve.jobs import EXPORTS_PER_JOB
from fastuss_fx.serve.kept import Kept

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def small_server(folder: Path, tmp_path: Path):
    with serving(tiny_config(folder, tmp_path / "work", max_uploads=2, max_jobs=2, max_processors=2)) as server:
        yield server


def test_kept_drops_the_least_recently_used_but_never_a_pinned_item():
    kept: Kept[str, int] = Kept(2, pinned=lambda v: v < 0)
    assert kept.add("a", 1) == [] and kept.add("b", 2) == []
    assert kept.get("a") == 1  # used: now the newest
    assert kept.add("c", 3) == [2] and list(kept) == ["a", "c"]
    assert kept.add("d", -4) == [1] and kept.add("e", -5) == [3]
    assert kept.add("f", 6) == [] and len(kept) == 3  # only pinned ones left to drop: over the limit
    with pytest.raises(ValueError, match="limit must be a positive integer, got 0"):
        Kept(0)
    with pytest.raises(ValueError, match="max_jobs must be a positive integer, got 0"):
        ServeConfig(max_jobs=0)


def test_uploads_are_capped(small_server, tmp_path: Path):
    client = Client(small_server.url())
    ids = []
    for i in range(3):
        wav = write_audio(tmp_path / f"{i}.wav", tone() * (i + 1) / 3, RATE).read_bytes()
        status, up = client.upload(wav, f"{i}.wav")
        assert status == 200, up
        ids.append(up["file"])
    assert sorted(p.stem for p in (small_server.app.work / "uploads").iterdir()) == sorted(ids[1:])
    status, body = client.post("/api/jobs", {"file": ids[0], "preset": "dialog_only"})
    assert status == 404 and "upload the file again" in body["error"]
    assert client.wait(client.post("/api/jobs", {"file": ids[2], "preset": "dialog_only"})[1]["id"])["state"] == "done"


def test_an_upload_a_queued_job_reads_stays(small_server, tmp_path: Path):
    app = small_server.app
    wav = write_audio(tmp_path / "a.wav", tone(), RATE).read_bytes()
    first = app.upload(wav, "first.wav")["file"]
    path = app.uploads.get(first)[0]
    hold = threading.Event()
    original = app.jobs._run
    app.jobs._run = lambda job: (hold.wait(30), original(job))  # the worker waits: the job stays queued
    try:
        job = app.submit({"file": first, "preset": "dialog_only"})
        for name in ("b.wav", "c.wav", "d.wav"):
            app.upload(wav, name)
        assert path.exists() and first in app.uploads
    finally:
        hold.set()
    assert Client(small_server.url()).wait(job["id"])["state"] == "done"


def test_jobs_are_capped_with_their_stems_and_exports(small_server):
    client = Client(small_server.url())
    jobs_folder = small_server.app.work / "jobs"
    _, first = client.post("/api/jobs", {"pick": "clip.wav", "prompts": ["speech"]})
    client.wait(first["id"])
    _, export = client.post(f"/api/jobs/{first['id']}/export", {"gains": {"speech": 1.0}})
    assert client.get(export["url"])[0] == 200
    for prompts in (["sfx"], ["speech", "sfx"]):
        _, job = client.post("/api/jobs", {"pick": "clip.wav", "prompts": prompts})
        assert client.wait(job["id"])["state"] == "done"
    assert client.get(f"/api/jobs/{first['id']}")[0] == 404
    assert client.get(export["url"])[0] == 404
    assert len(list(jobs_folder.iterdir())) == 2 and not (jobs_folder / first["id"]).exists()
    # a forgotten job is not served from the cache: the same request runs again
    _, again = client.post("/api/jobs", {"pick": "clip.wav", "prompts": ["speech"]})
    assert again["id"] != first["id"] and client.wait(again["id"])["state"] == "done"
    assert len(small_server.app.jobs._processors) == 2


def test_exports_per_job_are_capped(client: Client, server):
    _, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only"})
    client.wait(job["id"])
    urls = [client.post(f"/api/jobs/{job['id']}/export", {"gains": {"music": 1.0}})[1]["url"] for _ in range(3)]
    urls += [f["url"] for f in client.post(f"/api/jobs/{job['id']}/export-stems", {})[1]["files"]]
    while len(urls) <= EXPORTS_PER_JOB:
        urls.append(client.post(f"/api/jobs/{job['id']}/export", {"gains": {"music": 1.0}})[1]["url"])
    exports = server.app.work / "jobs" / job["id"] / "exports"
    assert len(list(exports.iterdir())) == EXPORTS_PER_JOB
    assert client.get(urls[0])[0] == 404 and client.get(urls[-1])[0] == 200


def test_stems_are_streamed_not_read_whole(server):
    big = np.zeros((2, 60 * 48000), np.float32)  # a 23-MB stem
    job = server.app.jobs.add_result({"big": big}, 48000)
    port, received = server.server_address[1], 0
    tracemalloc.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            request = f"GET /api/jobs/{job.id}/audio/big.wav HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            sock.sendall(request.encode() + b"Connection: close\r\n\r\n")
            while chunk := sock.recv(65536):
                received += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert received > big.nbytes
    assert peak < 4_000_000, f"serving a {big.nbytes / 1e6:.0f}-MB stem took {peak / 1e6:.1f} MB"


def test_error_messages_have_no_server_paths():
    err = FileNotFoundError(2, "No such file or directory", "/tmp/fastuss-serve-x/uploads/0123.wav")
    assert public_message(err) == "[Errno 2] No such file or directory: '0123.wav'"
    assert public_message(err, {"/tmp/fastuss-serve-x/uploads/0123.wav": "my clip.wav"}).endswith("'my clip.wav'")
    assert without_paths("model C:\\Users\\me\\m.onnx: bad") == "model m.onnx: bad"
    kept = "see http://example.com/a/b, 1/2 of the MB/s, ratio a/b"
    assert without_paths(kept) == kept


def test_a_failed_job_shows_no_server_path(client: Client, server, folder: Path, tmp_path: Path):
    long = write_audio(tmp_path / "long.wav", np.tile(tone(), 40), RATE).read_bytes()
    _, up = client.upload(long, "long.wav")
    _, busy = client.post("/api/jobs", {"file": up["file"], "preset": "dialog_only"})  # keeps the worker busy
    status, queued = client.post("/api/jobs", {"pick": "clip.wav", "preset": "music_stems"})
    assert status == 200, queued
    (folder / "clip.wav").unlink()  # gone before its job runs: the job fails reading it
    client.post(f"/api/jobs/{busy['id']}/cancel", {})
    failed = client.wait(queued["id"])
    assert failed["state"] == "failed" and "clip.wav" in failed["error"], failed
    assert str(tmp_path) not in failed["error"] and "/" not in failed["error"], failed


def test_a_file_gone_from_disk_is_a_404_without_its_path(client: Client, server, tmp_path: Path):
    _, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only"})
    client.wait(job["id"])
    _, export = client.post(f"/api/jobs/{job['id']}/export", {"gains": {"music": 1.0}})
    [gone] = server.app.work.rglob(export["name"])
    gone.unlink()
    status, body = client.get(export["url"])
    assert status == 404 and str(tmp_path) not in body["error"] and "/" not in body["error"], body


def test_make_server_leaves_the_callers_config_alone(tmp_path: Path):
    config = ServeConfig(work=tmp_path / "w", host="0.0.0.0", port=0)
    server = make_server(config)
    try:
        assert config.token is None and server.app.config.token  # the server's own copy got the token
        assert server.app.config is not config
    finally:
        server.close()


def test_a_busy_port_leaves_no_work_folder(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            make_server(ServeConfig(port=taken.getsockname()[1]))
    assert list(tmp_path.iterdir()) == []
