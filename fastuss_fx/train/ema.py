"""Exponential moving average of a model's weights (what validation scores and what ships).

After every optimiser step ``shadow <- shadow + (1 - d) * (weights - shadow)`` for every
floating-point tensor of the state dict (parameters and float buffers; others are copied),
with ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` earlier updates, so the average is not
dominated by the first weights of a short run. One fused ``torch._foreach_lerp_`` per step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


class EMA:
    """Shadow weights of ``model`` (unwrapped from DDP); ``decay`` in [0, 1)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        model = getattr(model, "module", model)
        self.decay, self.updates = decay, 0
        self._live = model.state_dict()  # detached views that share storage with the model
        self.shadow = {k: v.detach().clone() for k, v in self._live.items()}
        floats = [k for k, v in self._live.items() if v.is_floating_point()]
        self._pairs = ([self.shadow[k] for k in floats], [self._live[k] for k in floats])
        self._other = [k for k, v in self._live.items() if not v.is_floating_point()]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move the shadow towards the model's current weights (call after each optimiser step)."""
        weight = 1.0 - self.current_decay()
        if self._pairs[0]:
            torch._foreach_lerp_(*self._pairs, weight)
        for key in self._other:
            self.shadow[key].copy_(self._live[key])
        self.updates += 1

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the model holds the shadow weights; its own come back afterwards."""
        kept = {k: v.clone() for k, v in self._live.items()}
        for key, value in self._live.items():
            value.copy_(self.shadow[key])
        try:
            yield
        finally:
            for key, value in self._live.items():
                value.copy_(kept[key])

    def state_dict(self) -> dict[str, Any]:
        return {
            "decay": self.decay,
            "updates": self.updates,
            "shadow": {k: v.detach().to("cpu", copy=True) for k, v in self.shadow.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for key, value in state["shadow"].items():
            self.shadow[key].copy_(value)


@contextlib.contextmanager
def ema_weights(ema: EMA | None) -> Iterator[None]:
    """``ema.applied()``, or nothing when the EMA is off."""
    if ema is None:
        yield
    else:
        with ema.applied():
            yield
