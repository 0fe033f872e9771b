"""Shared test setup: small thread counts, seeded randomness, a private ONNX cache."""

import os
import tempfile

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
# exported graphs go to a folder of this test session, never the user's cache
os.environ.setdefault("FASTUSS_CACHE", tempfile.mkdtemp(prefix="fastuss-test-cache-"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)
