"""Model weights as fp16 safetensors, with the model config in the file's metadata.

A weights file rebuilds its own model (like demucs' ``states.py``): ``load_weights(path)``
reads the config from the metadata, builds ``TUSS`` and loads the tensors. Shipped weights
live in ``fastuss_fx/pretrained/<variant>.safetensors``; ``load_model(variant)`` gives a
variant's model with them, else with the seeded random init.
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
from fastuss_fx.pretrained import UNTRAINED_SEED, shipped_weights_path

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
    """Build the model described by a weights file and load its tensors (as float32)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    meta = read_metadata(path)
    if "config" not in meta:
        raise ValueError(f"{path}: not a fastuss weights file (no 'config' in its metadata)")
    model = TUSS(config_from_dict(json.loads(meta["config"]), where=str(path)))
    state = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            state[name] = f.get_tensor(name).float()
    model.load_state_dict(state)
    return model.to(device).eval()


def load_default(variant: str) -> TUSS | None:
    """The shipped trained model for ``variant`` (eval mode), or None if none is shipped."""
    path = shipped_weights_path(variant)
    if path is None:
        return None
    logger.info("loading shipped weights %s", path)
    return load_weights(path)


def load_model(variant: str | Path) -> tuple[TUSS, bool]:
    """(fused eval model, trained?) for a variant name or file: shipped weights, else a seeded random init."""
    model = None if str(variant).endswith((".yaml", ".yml")) else load_default(str(variant))
    trained = model is not None
    if model is None:
        logger.info("no trained weights for %s; building it with random weights", variant)
        with torch.random.fork_rng():
            torch.manual_seed(UNTRAINED_SEED)
            model = TUSS(load_variant(variant))
    return model.eval().fuse(), trained
