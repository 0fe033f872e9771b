"""Shared test setup: small thread counts, seeded randomness, a private ONNX cache."""

import os
import shutil

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _private_export_cache(tmp_path_factory):
    """Exported graphs go to a folder of this test session, removed at its end, never the user's cache
    (unless ``FASTUSS_CACHE`` names one)."""
    if os.environ.get("FASTUSS_CACHE"):
        yield
        return
    cache = tmp_path_factory.mktemp("export-cache")
    os.environ["FASTUSS_CACHE"] = str(cache)
    try:
        yield
    finally:
        os.environ.pop("FASTUSS_CACHE", None)
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
