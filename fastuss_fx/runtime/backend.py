"""The contract between the runtime and a model, whatever runs it (torch now, onnxruntime later).

Arrays are float32 numpy at the model's ``sample_rate``; B is the batch (the caller's
channels), S the sources (one per prompt), N samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


class UntrainedWeightsWarning(UserWarning):
    """The model runs randomly initialised weights (no trained weights shipped for it)."""


@runtime_checkable
class Backend(Protocol):
    """Whole-array separation."""

    sample_rate: int
    """The model's sample rate in Hz."""
    trained: bool
    """False when the weights are a random initialisation."""

    def separate(self, mix: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        """Separate ``mix`` ``(B, N)`` into ``(B, S, N)``, one source per prompt, same length."""
        ...


@runtime_checkable
class StreamingBackend(Backend, Protocol):
    """A causal model run hop by hop with explicit state.

    The stream is delayed: stream output sample ``i`` equals whole-clip output sample
    ``i - stream_delay_samples``.
    """

    hop_samples: int
    stream_delay_samples: int

    def initial_state(self, batch_size: int, prompts: Sequence[str]) -> Any:
        """Fresh state for a stream of ``batch_size`` channels asking for ``prompts``."""
        ...

    def stream(self, chunk: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """Feed ``(B, k * hop_samples)``; get ``(B, S, k * hop_samples)`` and the next state."""
        ...


def is_backend(obj: object) -> bool:
    """Whether ``obj`` offers whole-array separation."""
    return callable(getattr(obj, "separate", None)) and hasattr(obj, "sample_rate")


def is_streaming_backend(obj: object) -> bool:
    """Whether ``obj`` can also stream hop by hop."""
    return is_backend(obj) and all(
        hasattr(obj, name) for name in ("hop_samples", "stream_delay_samples", "initial_state", "stream")
    )
