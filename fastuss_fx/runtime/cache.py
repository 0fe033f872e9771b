"""Where exported graphs are cached, and their cache keys, computed without torch.

A key covers everything an exported graph depends on: the exporter version, the torch
version that traced it, the model config and the weights (the shipped file's SHA-256, or the
seeded random init used while no weights ship).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from fastuss_fx.config import config_to_dict, load_variant
from fastuss_fx.pretrained import UNTRAINED_SEED, file_sha256, shipped_weights_path

EXPORTER_VERSION = "4"
"""Part of every export cache key: bump it whenever model or export code changes the graphs."""


def cache_root() -> Path:
    """User cache folder for exported graphs (``$FASTUSS_CACHE`` or the XDG cache dir)."""
    if os.environ.get("FASTUSS_CACHE"):
        return Path(os.environ["FASTUSS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastuss-fx" / "onnx"


def export_folder(name: str, key: str, hops_per_step: int = 1) -> Path:
    """The cache folder of one export."""
    return cache_root() / f"{name}-{key[:16]}-h{hops_per_step}"


def variant_key(variant: str | Path) -> tuple[str, bool]:
    """(cache key, trained?) of a variant name or file as ``load_model`` would build it."""
    config = load_variant(variant)
    weights = None if str(variant).endswith((".yaml", ".yml")) else shipped_weights_path(str(variant))
    source = f"sha256:{file_sha256(weights)}" if weights else f"random-init-seed-{UNTRAINED_SEED}"
    payload = {
        "exporter": EXPORTER_VERSION,
        "torch": metadata.version("torch"),
        "config": config_to_dict(config),
        "weights": source,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(), weights is not None
