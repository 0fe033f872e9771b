"""The FasTUSS model family (torch ``nn`` modules only: no files, no numpy audio).

Axis legend used in shape comments throughout ``model/``:
B batch, C channels, S sources (prompts), K bands, F frequency bins, T frames,
N samples, D features, H heads, E head features, W attention window (frames).
"""

from fastuss_fx.model.tuss import TUSS

__all__ = ["TUSS"]
