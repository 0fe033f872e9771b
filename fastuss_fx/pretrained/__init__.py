"""Shipped trained weights (fp16 safetensors, one file per variant), the ONNX graphs exported from
them (``onnx/<variant>/``, rebuilt by ``make graphs``), the model card, and which model each mode
runs by default.

This is the one place that knows which variants have trained weights and which of them is
best for a mode. Lookups here are torch-free, so the ONNX path finds graphs without torch.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from fastuss_fx.installed import installed_weights, user_default

UNTRAINED_SEED = 0
"""Seed of the random init used while no weights ship for a variant (stable, so exports cache)."""

DEFAULT_MODELS: dict[str, str] = {"offline": "fastuss-4.6g", "realtime": "fastuss-causal"}
"""The variant each mode is designed around (what runs once it has trained weights): for offline the
non-causal twin of the realtime model, which starts from its trained weights (README, "Model size
for our budget"); ``fastuss-8.3g`` and ``fastuss-11.7g`` are the paper's sizes."""

RANKING: dict[str, tuple[str, ...]] = {
    "offline": ("fastuss-4.6g", "fastuss-4.7g", "fastuss-8.3g", "fastuss-11.7g", "tuss-medium", "fastuss-causal"),
    "realtime": ("fastuss-causal",),
}
"""Variants a mode may run, best first: a mode runs the first one with shipped weights.

Offline prefers a non-causal model with weights, else the causal one (run in windows, whole
clip). Put a newly trained variant ahead of another only once it scores better on the ``valid``
split (``fastuss eval --split valid``): checkpoints are picked and shipped on ``valid``; ``test``
and ``holdout`` are only reported. Realtime lists causal variants only.
"""


def shipped_weights_path(variant: str) -> Path | None:
    """Path of the weights shipped for ``variant``, or None if there are none."""
    if not variant or "/" in variant or "\\" in variant or variant.endswith((".yaml", ".yml")):
        return None  # a variant file (or a path) is always built with random weights
    candidate = resources.files(__name__).joinpath(f"{variant}.safetensors")
    return Path(str(candidate)) if candidate.is_file() else None


def shipped_graphs_path(variant: str) -> Path | None:
    """Folder of the ONNX graphs shipped for ``variant`` (``onnx/<variant>/manifest.json``), or None."""
    if shipped_weights_path(variant) is None:
        return None  # graphs ship only beside the weights they were exported from
    candidate = resources.files(__name__).joinpath("onnx", variant, "manifest.json")
    return Path(str(candidate)).parent if candidate.is_file() else None


def weights_path(variant: str) -> Path | None:
    """The trained weights that come with a model name: shipped with the package, or installed by
    the user (``fastuss models import``); None for a name without weights or a variant file."""
    return shipped_weights_path(variant) or installed_weights(variant)


def has_trained_weights(variant: str | Path) -> bool:
    """Whether loading ``variant`` by name gives trained weights (a ``.yaml`` file never does)."""
    return weights_path(str(variant)) is not None


def trained_variants() -> list[str]:
    """Names of the variants with shipped weights, sorted."""
    folder = resources.files(__name__)
    return sorted(p.name[: -len(".safetensors")] for p in folder.iterdir() if p.name.endswith(".safetensors"))


def best_trained(mode: str) -> str | None:
    """The best variant with shipped weights for ``mode`` (see ``RANKING``), or None if none has weights."""
    return next((v for v in RANKING[mode] if has_trained_weights(v)), None)


def default_model(mode: str, allow_untrained: bool = False) -> str:
    """The variant a processor runs in ``mode`` when no model is named.

    The user's choice (``fastuss models default``, e.g. an installed official TUSS), else the mode's
    design variant (``DEFAULT_MODELS``) if it has trained weights or ``allow_untrained``, else the
    best trained one for the mode.

    Raises:
        ValueError: no variant usable in ``mode`` has trained weights and untrained ones are not allowed.
    """
    chosen = user_default(mode)
    if chosen is not None:
        if weights_path(chosen) is None:
            raise ValueError(
                f"the default {mode} model {chosen!r} (set with `fastuss models default`) has no weights here; "
                f"install it or run `fastuss models default --mode {mode} --clear`"
            )
        return chosen
    preferred = DEFAULT_MODELS[mode]
    if allow_untrained or has_trained_weights(preferred):
        return preferred
    best = best_trained(mode)
    if best is None:
        raise ValueError(
            f"no trained weights ship for any {mode} model ({', '.join(RANKING[mode])}); "
            "pass allow_untrained=True (CLI: --allow-untrained) to run random weights"
        )
    return best


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (weights identity, graph manifests,
    export cache keys, uploads): the package's file hash; torch-free like the rest of this module."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
