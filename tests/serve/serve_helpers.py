"""Helpers for the ``fastuss serve`` tests: a test tone, a JSON client, a server in a thread."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np

from fastuss_fx.serve import ServeConfig, make_server

RATE = 16000


def tone(seconds: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)[None]


class Client:
    """Minimal JSON client; every answer is ``(status, body)`` (body parsed when JSON)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base, self.token = base.rstrip("/"), token

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        headers = dict(headers or {})
        if self.token:
            headers["X-Token"] = self.token
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, kind, raw = r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as err:
            status, kind, raw = err.code, err.headers.get("Content-Type", ""), err.read()
        return status, (json.loads(raw) if "json" in kind else raw)

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, data: dict):
        return self.request("POST", path, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def upload(self, data: bytes, name: str):
        return self.request("POST", "/api/upload", data, {"X-Filename": name, "Content-Type": "application/octet-stream"})

    def wait(self, job_id: str, timeout: float = 120.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status, job = self.get(f"/api/jobs/{job_id}")
            assert status == 200, job
            if job["state"] not in ("queued", "running"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def start(config: ServeConfig):
    server = make_server(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


