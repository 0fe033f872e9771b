"""The torch model behind the runtime's ``Backend`` protocol (numpy in, numpy out).

Matches ``fastuss_fx.runtime.backend`` by shape only; it does not import the runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
import numpy as np
import torch

from fastuss_fx.config import load_variant
from fastuss_fx.pretrained import UNTRAINED_SEED
from fastuss_fx.model.tuss import TUSS

logger = logging.getLogger(__name__)


class TorchBackend:
    """Run a ``TUSS`` model on numpy float32 arrays; ``trained`` says whether weights were loaded.

    Causal models also offer ``initial_state``/``stream`` (hop-by-hop with explicit state).
    """

    def __init__(self, model: TUSS, *, trained: bool = True) -> None:
        self.model = model.eval()
        config = model.config
        self.name = config.name
        self.trained = trained
        self.sample_rate = int(config.stft.sample_rate)
        self.causal = bool(config.causal)
        self.hop_samples = int(config.stft.hop)
        self.latency_samples = int(config.latency_samples)

    @torch.inference_mode()
    def separate(self, mix: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        """``(B, N)`` -> ``(B, S, N)`` float32."""
        return self.model(torch.from_numpy(np.ascontiguousarray(mix, np.float32)), list(prompts)).numpy()


class CausalTorchBackend(TorchBackend):
    """A ``TorchBackend`` over a causal model: adds the streaming half of the protocol."""

    def __init__(self, model: TUSS, *, trained: bool = True) -> None:
        super().__init__(model, trained=trained)
        self.stream_delay_samples = int(model.stream_delay_samples)

    @torch.inference_mode()
    def initial_state(self, batch_size: int, prompts: Sequence[str]) -> list[torch.Tensor]:
        return self.model.initial_state(batch_size, list(prompts))

    @torch.inference_mode()
    def stream(self, chunk: np.ndarray, state: list[torch.Tensor]) -> tuple[np.ndarray, list[torch.Tensor]]:
        """``(B, k * hop)`` -> ``(B, S, k * hop)`` and the next state."""
        out, state = self.model.stream(torch.from_numpy(np.ascontiguousarray(chunk, np.float32)), state)
        return out.numpy(), state


def wrap_model(model: TUSS, *, trained: bool = True) -> TorchBackend:
    """The right backend class for a model (streaming methods only for causal models)."""
    cls = CausalTorchBackend if model.config.causal else TorchBackend
    return cls(model, trained=trained)


def load_model(variant: str | Path) -> tuple[TUSS, bool]:
    """(fused eval model, trained?) for a variant name or file: shipped weights, else a seeded random init."""
    model = None
    if not str(variant).endswith((".yaml", ".yml")):
        from fastuss_fx.weights import load_default

        model = load_default(str(variant))
    trained = model is not None
    if model is None:
        logger.info("no trained weights for %s; building it with random weights", variant)
        with torch.random.fork_rng():
            torch.manual_seed(UNTRAINED_SEED)
            model = TUSS(load_variant(variant))
    return model.eval().fuse(), trained


@lru_cache(maxsize=4)
def load_backend(variant: str | Path) -> TorchBackend:
    """Torch backend for a variant name or variant file (cached per variant)."""
    model, trained = load_model(variant)
    return wrap_model(model, trained=trained)
