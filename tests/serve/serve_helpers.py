"""Helpers for the ``fastuss serve`` tests: a test tone, a JSON client, a server in a thread, a browser."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fastuss_fx.serve import ServeConfig, make_server

RATE = 16000
MICRO = Path(__file__).with_name("micro.yaml")
"""A smaller untrained variant than ``tiny`` (coarse STFT, short windows): a 60-s file in seconds."""
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


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
        return self.request(
            "POST", "/api/upload", data, {"X-Filename": name, "Content-Type": "application/octet-stream"}
        )

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


@contextlib.contextmanager
def serving(config: ServeConfig) -> Iterator:
    """A server for ``config`` in a thread, shut down and closed on exit."""
    server, thread = start(config)
    try:
        yield server
    finally:
        server.shutdown()
        server.close()
        thread.join(5)


def tiny_config(folder: Path, work: Path, **settings) -> ServeConfig:
    """The tests' server settings: the tiny untrained model on the torch engine, any port."""
    return ServeConfig(folder=folder, work=work, port=0, engine="torch", model="tiny", allow_untrained=True, **settings)


def handler_threads() -> int:
    """How many request-handler threads (one per open connection) are alive."""
    return sum("process_request_thread" in t.name for t in threading.enumerate())


def worker_threads() -> int:
    """How many job-worker threads are alive (every server has one)."""
    return sum(t.name == "fastuss-serve-jobs" for t in threading.enumerate())


def settle(count, want: int, timeout: float = 5.0) -> int:
    """Poll ``count()`` until it is at most ``want`` (threads end a little after their socket); the last value."""
    end = time.monotonic() + timeout
    while (n := count()) > want and time.monotonic() < end:
        time.sleep(0.05)
    return n


def browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not CHROMIUM or not DRIVER:
        return "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    return None


def chrome():
    """A new headless Chromium session (Selenium); call ``quit()`` on it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)


def wait_for(driver, script: str, timeout: float = 90.0, allow_error: bool = False):
    """Poll ``script`` until it returns something true; fail at once if the page shows an error."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        error = driver.execute_script("return mixer.error")
        assert allow_error or not error, f"the page shows an error: {error}"
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}; page error: {driver.execute_script('return mixer.error')}")
