"""Learning-rate schedule: warm-up, then a decay, both as functions of one progress measure.

Progress runs from 0 to 1 over a cycle and is counted in steps: each step advances it by its
share of the steps still to come, ``(1 - progress) / (steps_left + 1)``. ``steps_left`` is what
remains before stepping stops: ``steps - step``, or fewer when a time budget ends stepping first
(``TimeBudget.steps_left`` estimates it every step from the measured step and evaluation times
and the time kept for the end work). So warm-up and decay share one measure, the horizon ends
where stepping ends, and a horizon that moves (a new ``--steps`` or budget, a slower machine)
stretches the rest of the curve instead of cutting it. Steps, not wall time: the first step of
a session may compile for minutes and evaluations take minutes; counted in time, they would use
up the warm-up without a step taken.

The curve at progress ``p``: in the run's first cycle a linear warm-up from ``min_lr`` to ``lr``
over ``p < warmup_fraction``, then ``min_lr + (lr - min_lr) * shape(q)``, ``q`` the progress through
the rest (a half cosine or a straight line); ``plateau``: flat at ``lr`` times the ``Plateau`` scale.

Resuming (the state travels in ``last.pt``): progress continues where it stopped, with no new
warm-up. A run whose cycle ended (it reached its steps or its budget) resumed with steps to go
starts a new cycle: the decay starts again from ``lr``, without warm-up (a warm restart: the
optimizer's moment estimates are already in place; pass a lower ``--lr`` for a gentler one).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

SHAPES = ("cosine", "linear", "plateau")
PEAK_SHORTFALL = 0.95
"""A planned run whose highest learning rate stays below this share of ``lr`` gets a warning."""


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


def learning_rate(
    progress: float, *, shape: str, lr: float, min_lr: float, warmup_fraction: float, scale: float = 1.0
) -> float:
    """The rate at ``progress`` (0..1) of a cycle whose first ``warmup_fraction`` warms up.

    ``scale`` is the ``Plateau`` factor, used by the ``plateau`` shape only.
    """
    progress = min(max(progress, 0.0), 1.0)
    decay_factor(0.0, shape)  # validates the shape
    if progress < warmup_fraction:
        return min_lr + (lr - min_lr) * progress / warmup_fraction
    if shape == "plateau":
        return lr * scale
    decay = decay_factor((progress - warmup_fraction) / (1.0 - warmup_fraction), shape)
    return min_lr + (lr - min_lr) * decay


@dataclass
class Schedule:
    """Warm-up then decay over the steps to come; see the module docstring for resuming."""

    shape: str = "cosine"
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_fraction: float = 0.0
    """Share of the first cycle spent warming up (0 <= warmup_fraction < 1)."""
    # state (saved in checkpoints)
    progress: float = 0.0
    """Share of the cycle done before the next step."""
    cycle: int = 0
    """0 for the run's first cycle (the one with the warm-up), then 1, 2... after restarts."""
    finished: bool = False
    """The cycle reached its horizon (the run stopped on its steps or its time budget)."""

    def __post_init__(self) -> None:
        decay_factor(0.0, self.shape)  # validates the shape
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")

    @property
    def warmup(self) -> float:
        """The warm-up share of this cycle (restarts have none)."""
        return self.warmup_fraction if self.cycle == 0 else 0.0

    def begin(self, steps_to_go: bool) -> None:
        """Start a session (after ``load_state_dict`` when resuming): a finished cycle with
        ``steps_to_go`` gives way to a new one."""
        if self.finished and steps_to_go:
            self.cycle, self.progress, self.finished = self.cycle + 1, 0.0, False

    def rate(self, scale: float = 1.0) -> float:
        """Learning rate of the next step (``scale``: the plateau factor, ``plateau`` shape only)."""
        return self.rate_at(self.progress, scale)

    def rate_at(self, progress: float, scale: float = 1.0) -> float:
        return learning_rate(
            progress, shape=self.shape, lr=self.lr, min_lr=self.min_lr, warmup_fraction=self.warmup, scale=scale
        )

    def advance(self, steps_left: float) -> None:
        """One step done, ``steps_left`` (about) to come before stepping stops."""
        self.progress = min(1.0, self.progress + (1.0 - self.progress) / (max(steps_left, 0.0) + 1.0))

    def planned_peak(self, steps_left: float) -> float:
        """The highest rate of the next ``steps_left`` steps (their progress evenly spaced from here to
        the horizon); ``lr`` once the peak lies behind (the warm-up is over)."""
        if self.progress >= self.warmup:
            return self.lr
        count = max(1, math.ceil(steps_left))
        at = (self.warmup - self.progress) / (1.0 - self.progress) * count  # step number of the peak
        candidates = {min(max(j, 0), count - 1) for j in (math.floor(at), math.ceil(at))}
        return max(self.rate_at(self.progress + (1.0 - self.progress) * j / count) for j in candidates)

    def state_dict(self) -> dict[str, Any]:
        return {"progress": self.progress, "cycle": self.cycle, "finished": self.finished}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load ``state_dict()``; a checkpoint of the older step-or-time schedule (no ``cycle``) has
        warmed up already, so it continues as a restart cycle (no warm-up)."""
        self.progress = float(state.get("progress", 0.0))
        self.finished = bool(state.get("finished", False))
        self.cycle = int(state.get("cycle", 1))


def peak_warning(schedule: Schedule, steps_left: float) -> str | None:
    """A warning when the planned ``steps_left`` steps never come near the peak rate ``lr``, else None."""
    peak = schedule.planned_peak(steps_left)
    if peak >= PEAK_SHORTFALL * schedule.lr:
        return None
    return (
        f"the planned run will not reach its peak learning rate: about {steps_left:.0f} steps to go, "
        f"the highest rate is {peak:.3g} ({100 * peak / schedule.lr:.0f} % of lr {schedule.lr:.3g}) with "
        f"warmup_fraction {schedule.warmup_fraction}; lower --warmup-fraction or plan more steps"
    )


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
        """The run's state (best, bad, scale); ``patience``, ``factor`` and ``min_scale`` stay as
        configured, so they can change on resume."""
        self.best, self.bad, self.scale = state["best"], int(state["bad"]), state["scale"]
