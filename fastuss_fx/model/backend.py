"""The torch model behind the runtime's ``Backend`` protocol (numpy in, numpy out).

Matches ``fastuss_fx.runtime.backend`` by shape only; it does not import the runtime.
Building a variant's model (weights) and its backend is ``fastuss_fx.engines``' job.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fastuss_fx.model.tuss import TUSS


class TorchBackend:
    """Run a ``TUSS`` model on numpy float32 arrays; ``trained`` says whether weights were loaded.

    The backend owns ``model`` (it is put in eval mode): pass ``model.inference_copy()`` to keep yours.
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
