"""Shipped trained weights (fp16 safetensors, one file per variant) and the model card.

Lookups here are torch-free, so the ONNX path can find cached graphs without torch.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

UNTRAINED_SEED = 0
"""Seed of the random init used while no weights ship for a variant (stable, so exports cache)."""


def shipped_weights_path(variant: str) -> Path | None:
    """Path of the weights shipped for ``variant``, or None if there are none."""
    candidate = resources.files(__name__).joinpath(f"{variant}.safetensors")
    return Path(str(candidate)) if candidate.is_file() else None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
