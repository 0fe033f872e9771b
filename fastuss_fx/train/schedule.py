"""Learning-rate schedules: warm-up, then a decay that knows the run's horizon (or plateau cuts).

``Schedule`` maps a step (and the wall time spent) to a learning rate. Its *progress* runs from
0 to 1 over the run's horizon: ``steps``, or the time budget when one is given (whichever is
further along). The curve is ``min_lr + (lr - min_lr) * shape(progress)`` times a linear
warm-up; ``shape`` is a half cosine or a straight line. ``plateau`` keeps the old behaviour:
flat after warm-up, cut by ``Plateau`` when validation stalls.

Resuming (the state travels in ``last.pt``):

- an *interrupted* run (signal, crash) continues its curve: with the same ``steps`` and no
  budget the progress is exactly ``step / steps``, as if never stopped; with a new ``steps`` or a
  time budget the rest of the curve (from the progress reached) is stretched over the new horizon;
- a *finished* run (it reached its steps or its budget) given more steps or a new budget starts
  a new cycle: warm-up again, then decay from ``lr`` to ``min_lr`` over the new horizon.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

SHAPES = ("cosine", "linear", "plateau")


def lr_at(step: int, base_lr: float, warmup_steps: int, scale: float = 1.0) -> float:
    """Learning rate for (0-based) ``step``: linear warm-up over ``warmup_steps``, then ``base_lr * scale``."""
    return base_lr * scale * warmup_factor(step, warmup_steps)


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up from ``1 / warmup_steps`` at (0-based) ``step`` 0 to 1."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def decay_factor(progress: float, shape: str) -> float:
    """1 at progress 0, 0 at progress 1: a half cosine or a straight line (``plateau``: always 1)."""
    progress = min(max(progress, 0.0), 1.0)
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if shape == "linear":
        return 1.0 - progress
    if shape == "plateau":
        return 1.0
    raise ValueError(f"unknown schedule {shape!r}; choose from {', '.join(SHAPES)}")


@dataclass
class Schedule:
    """Warm-up then decay to ``min_lr`` over the horizon; see the module docstring for resuming."""

    shape: str = "cosine"
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 0
    steps: int = 1
    """Step horizon of this session."""
    budget_s: float = 0.0
    """Wall-time horizon of this session in seconds (0 = none)."""
    # state (saved in checkpoints)
    cycle_start: int = 0
    anchor_step: int = 0
    anchor_progress: float = 0.0
    anchor_steps: int = 0
    progress: float = 0.0
    finished: bool = False

    def __post_init__(self) -> None:
        decay_factor(0.0, self.shape)  # validates the shape
        if not self.anchor_steps:
            self.anchor_steps = self.steps

    def begin(self, step: int) -> None:
        """Start a session at ``step`` (after ``load_state_dict`` when resuming)."""
        if self.finished and (step < self.steps or self.budget_s > 0):
            self.cycle_start, self.anchor_step, self.anchor_progress, self.progress, self.finished = (
                step,
                step,
                0.0,
                0.0,
                False,
            )
        elif self.anchor_steps != self.steps or self.budget_s > 0:
            self.anchor_step, self.anchor_progress = step, self.progress
        self.anchor_steps = self.steps

    def progress_at(self, step: int, elapsed_s: float = 0.0) -> float:
        """Fraction of the horizon done before (0-based) ``step``, ``elapsed_s`` into the session."""
        rest = 1.0 - self.anchor_progress
        by_steps = (
            self.anchor_progress + rest * (step - self.anchor_step) / (self.steps - self.anchor_step)
            if self.steps > self.anchor_step
            else 1.0
        )
        by_time = self.anchor_progress + rest * elapsed_s / self.budget_s if self.budget_s > 0 else 0.0
        return min(1.0, max(by_steps, by_time))

    def __call__(self, step: int, elapsed_s: float = 0.0, scale: float = 1.0) -> float:
        """Learning rate of (0-based) ``step``; ``scale`` is the plateau factor (``plateau`` shape only)."""
        self.progress = self.progress_at(step, elapsed_s)
        warm = warmup_factor(step - self.cycle_start, self.warmup_steps)
        if self.shape == "plateau":
            return self.lr * scale * warm
        return (self.min_lr + (self.lr - self.min_lr) * decay_factor(self.progress, self.shape)) * warm

    def state_dict(self) -> dict[str, Any]:
        keys = ("cycle_start", "anchor_step", "anchor_progress", "anchor_steps", "progress", "finished")
        return {k: v for k, v in asdict(self).items() if k in keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


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
