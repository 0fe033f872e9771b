"""Other web sites cannot drive ``fastuss serve``: foreign Origins and Host names are refused.

A page on ``http://evil.example`` can send requests to 127.0.0.1 (its POSTs carry ``Origin:
http://evil.example``) or re-point its own DNS name at 127.0.0.1 (then every request carries
``Host: evil.example:PORT``). Both are refused before anything is read, stored or run; clients that
are not browsers (no Origin, e.g. curl) still work.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from serve_helpers import RATE, Client, start, tone

from fastuss_fx.io import write_audio
from fastuss_fx.serve import ServeConfig
from fastuss_fx.serve.guard import own_hosts, refusal

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EVIL = "http://evil.example"


def own(server) -> str:
    return f"127.0.0.1:{server.server_address[1]}"


def send(client: Client, method: str, path: str, body: dict | bytes | None = None, **headers: str):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return client.request(method, path, data, {k.replace("_", "-"): v for k, v in headers.items()})


def test_own_hosts_are_the_loopback_names_and_the_bound_host():
    assert own_hosts("127.0.0.1", 8765) == {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}
    assert own_hosts("::1", 9000) == {"127.0.0.1:9000", "localhost:9000", "[::1]:9000"}
    assert "192.168.1.5:8765" in own_hosts("192.168.1.5", 8765)
    assert own_hosts("0.0.0.0", 8765) is None and own_hosts("::", 8765) is None  # any name; the token guards
    extra = own_hosts("127.0.0.1", 8765, ["Box.Local", "localhost:9000", "[fe80::1]"])
    assert {"box.local:8765", "localhost:9000", "[fe80::1]:8765"} <= extra
    assert {"127.0.0.1", "localhost:80"} <= own_hosts("127.0.0.1", 80)  # port 80 is left out by browsers


@pytest.mark.parametrize(
    ("host", "origin", "refused"),
    [
        ("127.0.0.1:8765", None, None),
        ("LOCALHOST:8765", "http://127.0.0.1:8765", None),  # the page opened as localhost posts to itself
        (None, None, None),  # HTTP/1.0 without Host: not a browser
        ("evil.example:8765", None, "DNS rebinding"),
        ("127.0.0.1:9999", None, "not this server's"),
        ("127.0.0.1", None, "not this server's"),
        ("127.0.0.1:8765", EVIL, "other web sites"),
        ("127.0.0.1:8765", "http://127.0.0.1:3000", "other web sites"),  # another local server's page
        ("127.0.0.1:8765", "https://127.0.0.1:8765", "other web sites"),
        ("127.0.0.1:8765", "null", "other web sites"),  # sandboxed frames, file:// pages
    ],
)
def test_refusal(host, origin, refused):
    reason = refusal(host, origin, own_hosts("127.0.0.1", 8765))
    assert reason is None if refused is None else refused in reason


def test_any_host_server_still_checks_origin_against_the_request_host():
    assert refusal("box.lan:8765", None, None) is None
    assert refusal("box.lan:8765", "http://box.lan:8765", None) is None
    assert "other web sites" in refusal("box.lan:8765", EVIL, None)


def test_foreign_origins_change_nothing(client: Client, server, tmp_path: Path):
    wav = write_audio(tmp_path / "a.wav", tone(), RATE).read_bytes()
    _, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only"})
    job = client.wait(job["id"])
    jobs_before = len(server.app.jobs._jobs)
    attempts = [
        ("POST", "/api/upload", wav, {"X-Filename": "a.wav"}),
        ("POST", "/api/presets", {"yaml": "name: evil\nprompts: [speech]\n"}, {}),
        ("POST", "/api/jobs", {"pick": "clip.wav", "preset": "music_stems"}, {}),
        ("POST", f"/api/jobs/{job['id']}/export", {"gains": {"dialogue": 1.0}}, {}),
        ("POST", f"/api/jobs/{job['id']}/export-stems", {}, {}),
        ("POST", f"/api/jobs/{job['id']}/cancel", {}, {}),
        ("PUT", "/api/presets", {}, {}),
        ("DELETE", f"/api/jobs/{job['id']}", None, {}),
    ]
    for origin in (EVIL, "null", f"http://localhost:{server.server_address[1] + 1}"):
        for method, path, body, headers in attempts:
            status, answer = send(client, method, path, body, Origin=origin, **headers)
            assert status == 403 and "other web sites" in answer["error"], (method, path, answer)
    assert list((server.app.work / "uploads").iterdir()) == []
    assert list((server.app.work / "presets").iterdir()) == []
    assert len(server.app.jobs._jobs) == jobs_before and not list(job_folder(server, job).glob("exports/*"))
    assert client.get(f"/api/jobs/{job['id']}")[1]["state"] == "done"  # not cancelled


def job_folder(server, job: dict) -> Path:
    return server.app.work / "jobs" / job["id"]


def test_own_origin_and_no_origin_are_served(client: Client, server, tmp_path: Path):
    wav = write_audio(tmp_path / "a.wav", tone(), RATE).read_bytes()
    port = server.server_address[1]
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        status, up = send(client, "POST", "/api/upload", wav, Origin=origin, X_Filename="a.wav")
        assert status == 200, up
    status, up = client.upload(wav, "a.wav")  # no Origin: curl, scripts
    assert status == 200, up
    status, job = send(client, "POST", "/api/jobs", {"file": up["file"], "preset": "dialog_only"}, Origin=origin)
    assert status == 200 and client.wait(job["id"])["state"] == "done"
    status, answer = send(client, "PUT", "/api/presets", {})  # no route: a JSON 405, not the stdlib's HTML 501
    assert status == 405 and "no route" in answer["error"]


def raw_get(port: int, path: str, host: str) -> tuple[int, bytes]:
    """A GET by hand with this Host header (as a browser sends it after DNS rebinding)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_foreign_host_names_are_refused_on_every_request(client: Client, server):
    _, job = client.post("/api/jobs", {"pick": "clip.wav", "preset": "dialog_only"})
    job = client.wait(job["id"])
    port = server.server_address[1]
    paths = ["/", "/static/mixer.js", "/api/files", "/api/presets", f"/api/jobs/{job['id']}"]
    paths.append(f"/api/jobs/{job['id']}/audio/dialogue.wav")
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", f"127.0.0.1.evil.example:{port}"):
        for path in paths:
            status, body = raw_get(port, path, host)
            assert status == 403 and b"DNS rebinding" in body and b"clip.wav" not in body, (host, path, body)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        status, body = raw_get(port, "/api/files", host)
        assert status == 200 and json.loads(body) == {"files": ["clip.wav"]}, (host, body)
        assert raw_get(port, f"/api/jobs/{job['id']}/audio/dialogue.wav", host)[0] == 200


def test_allowed_hosts_add_names(folder: Path, tmp_path: Path):
    server, thread = start(ServeConfig(folder=folder, work=tmp_path / "w", port=0, allowed_hosts=("box.lan",)))
    try:
        port = server.server_address[1]
        assert raw_get(port, "/api/files", f"box.lan:{port}")[0] == 200
        assert raw_get(port, "/api/files", f"other.lan:{port}")[0] == 403
        status, answer = send(Client(server.url()), "POST", "/api/jobs", {}, Origin=f"http://box.lan:{port}")
        assert status == 400 and "either" in answer["error"]  # past the guard, refused for its content
    finally:
        server.shutdown()
        server.close()
        thread.join(5)


def test_a_refused_body_is_dropped_and_the_connection_goes_on(server):
    """A refused POST's body is read and dropped, so the next request on the connection is parsed right."""
    port = server.server_address[1]
    body = json.dumps({"pick": "clip.wav", "preset": "dialog_only"}).encode()
    head = (
        f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {EVIL}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    follow = f"GET /api/files HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + body + follow.encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 403") and raw.count(b"HTTP/1.1 200") == 1 and raw.endswith(b'["clip.wav"]}')
    assert len(server.app.jobs._jobs) == 0
