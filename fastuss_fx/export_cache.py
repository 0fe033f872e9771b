"""Where exported graphs are: shipped with the weights, or cached with keys computed without torch.

Graphs exported from the shipped weights ship as package data (``fastuss_fx/pretrained/onnx/``)
and are used while the weights digest in their manifest matches the shipped weights file.
Graphs of anything else are exported (with torch) into the user cache on first use.

A cache key covers everything an exported graph depends on: ``EXPORTER_VERSION``, the torch
version that traced it, a hash of the source code that builds and exports the model
(``EXPORT_SOURCES``), the model config and the weights (the shipped file's SHA-256, or the seeded
random init used while no weights ship; ``fastuss_fx.export.fingerprint`` hashes an in-memory
model's tensors).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from fastuss_fx.config import config_to_dict, load_variant
from fastuss_fx.pretrained import (
    UNTRAINED_SEED,
    file_sha256,
    shipped_graphs_path,
    shipped_weights_path,
    weights_path,
)

logger = logging.getLogger(__name__)

EXPORTER_VERSION = "5"
"""Part of every export cache key, for changes the source hash cannot see (e.g. in the manifest's meaning)."""

PACKAGE = Path(__file__).resolve().parent

EXPORT_SOURCES = (
    "config.py",
    "prompts.py",
    "weights.py",
    "export.py",
    "export_cache.py",
    "model",
    "runtime/stream_state.py",
)
"""Files and folders (relative to the package) whose code shapes an exported graph or its manifest."""


def cache_root() -> Path:
    """User cache folder for exported graphs (``$FASTUSS_CACHE`` or the XDG cache dir)."""
    if os.environ.get("FASTUSS_CACHE"):
        return Path(os.environ["FASTUSS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastuss-fx" / "onnx"


def export_folder(name: str, key: str, hops_per_step: int = 1) -> Path:
    """The cache folder of one export."""
    return cache_root() / f"{name}-{key[:16]}-h{hops_per_step}"


@lru_cache(maxsize=8)
def source_hash(root: Path = PACKAGE) -> str:
    """SHA-256 over the ``EXPORT_SOURCES`` Python files under ``root`` (names and contents)."""
    digest = hashlib.sha256()
    for entry in EXPORT_SOURCES:
        path = root / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            digest.update(file.read_bytes() if file.is_file() else b"<missing>")
            digest.update(b"\0")
    return digest.hexdigest()


def key_prefix() -> str:
    """The part of every key that is not the model: exporter version, torch version, source hash."""
    return f"{EXPORTER_VERSION}|torch {metadata.version('torch')}|source {source_hash()}|"


def variant_key(variant: str | Path) -> tuple[str, bool]:
    """(cache key, trained?) of a variant name or file as ``fastuss_fx.weights.load_model`` builds it."""
    config = load_variant(variant)
    weights = None if str(variant).endswith((".yaml", ".yml")) else weights_path(str(variant))
    source = f"sha256:{file_sha256(weights)}" if weights else f"random-init-seed-{UNTRAINED_SEED}"
    payload = {"config": config_to_dict(config), "weights": source}
    digest = hashlib.sha256(key_prefix().encode() + json.dumps(payload, sort_keys=True).encode())
    return digest.hexdigest(), weights is not None


def shipped_graph_folder(variant: str | Path) -> Path | None:
    """The shipped graphs of ``variant`` if they were exported from the weights that ship, else None.

    Graphs whose manifest records another weights digest (weights retrained, graphs not rebuilt with
    ``make graphs``) are passed over with a warning, so the variant is exported again from its weights.
    """
    folder = shipped_graphs_path(str(variant))
    weights = shipped_weights_path(str(variant))
    if folder is None or weights is None:
        return None
    recorded = json.loads((folder / "manifest.json").read_text()).get("weights", {}).get("sha256")
    if recorded != file_sha256(weights):
        logger.warning(
            "%s: the shipped ONNX graphs were exported from other weights than %s (run `make graphs`); "
            "exporting them again",
            folder,
            weights.name,
        )
        return None
    return folder
