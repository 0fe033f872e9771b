"""Training checkpoints: atomic save/load, RNG capture, best-k bookkeeping and averaging.

A training checkpoint (``.pt``, our own trusted files) holds the model and optimizer state,
the step, the plateau state, the RNG states, the run config and the model config, so a run
resumes exactly where it stopped. Shipped weights are fp16 safetensors; ``fastuss_fx.weights``
(``load_weights``) reads the model of either.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastuss_fx.atomic import atomic_path

logger = logging.getLogger(__name__)


def capture_rng() -> dict[str, Any]:
    """The global RNG states (python, numpy, torch CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo ``capture_rng``; CUDA states are restored only where CUDA is present."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically (``fastuss_fx.atomic``): a crash or a kill at any moment leaves
    either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint written by ``save_checkpoint``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location=map_location, weights_only=False)  # our own files: RNG states need pickle


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the state dict of ``model`` (unwrapping DDP)."""
    model = getattr(model, "module", model)
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point entries; other entries are taken from the last state."""
    if not states:
        raise ValueError("need at least one state dict to average")
    keys = states[-1].keys()
    for number, state in enumerate(states):
        if state.keys() != keys:
            raise ValueError(f"state dict {number} has different keys: {sorted(set(state) ^ set(keys))[:5]}")
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = torch.stack([s[key].double() for s in states]).mean(0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


@dataclass
class BestKeeper:
    """Keeps the ``keep`` best model snapshots of a run (lowest validation loss) on disk."""

    folder: Path
    keep: int = 5
    entries: list[tuple[float, int, str]] = field(default_factory=list)

    def offer(self, value: float, step: int, state: dict[str, Any]) -> bool:
        """Save ``state`` as ``folder/step_XXXXXXX.pt`` if it ranks among the best; returns whether kept."""
        if any(e[1] == step for e in self.entries):  # the same step offered again replaces itself
            self.entries = [e for e in self.entries if e[1] != step]
            (Path(self.folder) / f"step_{step:07d}.pt").unlink(missing_ok=True)
        if self.keep < 1:
            return False
        kept = len(self.entries) < self.keep or value < self.entries[self.keep - 1][0]
        if kept:
            path = save_checkpoint(state, Path(self.folder) / f"step_{step:07d}.pt")
            self.entries = sorted(self.entries + [(value, step, path.name)])
        for _, _, name in self.entries[self.keep :]:  # also after ``keep`` was lowered on resume
            (Path(self.folder) / name).unlink(missing_ok=True)
        self.entries = self.entries[: self.keep]
        return kept

    def paths(self) -> list[Path]:
        return [Path(self.folder) / name for _, _, name in self.entries]

    def state_dict(self) -> dict[str, Any]:
        return {"keep": self.keep, "entries": list(self.entries)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The saved entries; ``keep`` stays as configured (a resumed run may change it)."""
        self.entries = sorted(tuple(e) for e in state["entries"])
