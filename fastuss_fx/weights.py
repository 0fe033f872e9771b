"""Model weights as fp16 safetensors, with the model config in the file's metadata, and the one
place that builds and loads models.

A weights file rebuilds its own model (like demucs' ``states.py``): ``load_weights(path)``
reads the config from the metadata, builds ``TUSS`` and loads the tensors; it also reads the
model of a training checkpoint (``.pt``, ``fastuss_fx.train.checkpoint``). ``build_model``
gives a variant's model with random weights. Shipped weights live in
``fastuss_fx/pretrained/<variant>.safetensors``; ``load_model(variant)`` gives a variant's
model for inference with them, else with the seeded random init.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fastuss_fx.atomic import atomic_path
from fastuss_fx.config import ModelConfig, config_from_dict, config_to_dict, load_variant
from fastuss_fx.model.tuss import TUSS
from fastuss_fx.pretrained import UNTRAINED_SEED, weights_path

logger = logging.getLogger(__name__)

FORMAT_VERSION = "1"


def save_weights(
    model: torch.nn.Module, path: str | Path, metadata: dict[str, Any] | None = None, dtype: torch.dtype = torch.float16
) -> Path:
    """Write ``model``'s (training-form) weights to ``path`` atomically; returns the path."""
    path = Path(path)
    config = getattr(model, "config", None)  # a TUSS, or a training model with the same ``config``
    if not isinstance(config, ModelConfig):
        raise TypeError(f"{type(model).__name__} has no ModelConfig ``config``: its weights cannot be saved")
    tensors = {name: t.detach().to("cpu", dtype).contiguous() for name, t in model.state_dict().items()}
    meta = {"format": FORMAT_VERSION, "config": json.dumps(config_to_dict(config))}
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata dict of a weights file."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> TUSS:
    """Build the model a weights file (``.safetensors``) or a training / averaged checkpoint
    (``.pt``) describes and load its tensors (as float32; training form, eval mode).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file holds no fastuss model config.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    config, state = _read_checkpoint(path) if path.suffix == ".pt" else _read_safetensors(path)
    model = TUSS(config)
    model.load_state_dict(state)
    return model.to(device).eval()


def _read_safetensors(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    meta = read_metadata(path)
    if "config" not in meta:
        raise ValueError(f"{path}: not a fastuss weights file (no 'config' in its metadata)")
    config = config_from_dict(json.loads(meta["config"]), where=str(path))
    with safe_open(str(path), framework="pt") as f:
        return config, {name: f.get_tensor(name).float() for name in f.keys()}


def _read_checkpoint(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    # our own training checkpoints: their RNG states need pickle (never load a .pt you did not write)
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise ValueError(f"{path} is not a fastuss training checkpoint (needs 'model' and 'model_config')")
    config = config_from_dict(state["model_config"], str(path))
    return config, state["model"]


def build_model(variant: str | Path, seed: int | None = None) -> TUSS:
    """A model of a variant name or variant file with random weights (training form, train mode):
    drawn from torch's global RNG (training from scratch), or from ``seed`` without touching it."""
    if seed is None:
        return TUSS(load_variant(variant))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return TUSS(load_variant(variant))


def load_default(variant: str) -> TUSS | None:
    """The trained model for ``variant`` (shipped or installed weights; eval mode), or None if it has none."""
    path = weights_path(variant)
    if path is None:
        return None
    logger.info("loading weights %s", path)
    return load_weights(path)


def load_model(variant: str | Path) -> tuple[TUSS, bool]:
    """(fused eval model, trained?) for a variant name or file: its shipped or installed weights,
    else the random init of ``UNTRAINED_SEED`` (the same weights every time, so exports cache)."""
    model = None if str(variant).endswith((".yaml", ".yml")) else load_default(str(variant))
    trained = model is not None
    if model is None:
        logger.info("no trained weights for %s; building it with random weights", variant)
        model = build_model(variant, seed=UNTRAINED_SEED)
    return model.eval().fuse(), trained
