"""Inference runtime: numpy in, numpy out, never torch.

``backend`` defines what a model must offer; ``offline`` runs a backend over overlapping
windows, ``streaming`` runs a streaming backend hop by hop, ``pipeline`` adds sample-rate
conversion and a constant latency at the caller's rate.
"""

from fastuss_fx.runtime.backend import (
    Backend,
    StreamingBackend,
    UntrainedWeightsWarning,
    is_backend,
    is_streaming_backend,
)

__all__ = ["Backend", "StreamingBackend", "UntrainedWeightsWarning", "is_backend", "is_streaming_backend"]
