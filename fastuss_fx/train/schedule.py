"""Learning-rate schedule: linear warm-up times a factor that plateau decay lowers."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


def lr_at(step: int, base_lr: float, warmup_steps: int, scale: float = 1.0) -> float:
    """Learning rate for (0-based) ``step``: linear warm-up over ``warmup_steps``, then ``base_lr * scale``."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return base_lr * scale * warm


@dataclass
class Plateau:
    """Cuts ``scale`` by ``factor`` after ``patience`` evaluations without a new best (down to ``min_scale``)."""

    patience: int = 5
    factor: float = 0.5
    min_scale: float = 0.01
    best: float = math.inf
    bad: int = 0
    scale: float = 1.0

    def update(self, value: float) -> bool:
        """Record a validation loss; returns True when it is a new best."""
        if value < self.best:
            self.best, self.bad = value, 0
            return True
        self.bad += 1
        if self.bad >= self.patience:
            self.scale, self.bad = max(self.scale * self.factor, self.min_scale), 0
        return False

    def state_dict(self) -> dict[str, float]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, float]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
