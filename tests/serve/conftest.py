"""Fixtures: a served folder, a ``fastuss serve`` server in a thread (tiny untrained model, torch
engine), and one headless Chromium for the browser tests (skipped without one, except in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serve_helpers import RATE, Client, browser_missing, chrome, serving, tiny_config, tone

from fastuss_fx.io import write_audio


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    write_audio(root / "clip.wav", tone(), RATE)
    (root / "notes.txt").write_text("not audio")
    return root


@pytest.fixture
def server(folder: Path, tmp_path: Path):
    with serving(tiny_config(folder, tmp_path / "work", max_upload_bytes=2_000_000)) as srv:
        yield srv


@pytest.fixture
def client(server) -> Client:
    return Client(server.url())


@pytest.fixture(scope="session")
def browser():
    missing = browser_missing()
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)
    driver = chrome()
    yield driver
    driver.quit()
