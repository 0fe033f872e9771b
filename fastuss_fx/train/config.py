"""Training run configuration: one dataclass; CLI flags and YAML files fill it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fastuss_fx.config import dataclass_from_dict, dataclass_to_dict
from fastuss_fx.data.mixer import MixConfig
from fastuss_fx.train.schedule import SHAPES

DEFAULT_VARIANT = "fastuss-8.3g"
"""What ``fastuss train`` builds when neither ``variant`` nor ``init`` says."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved inside every checkpoint."""

    data: str = "../shared/data/train-pack"
    """Folder with ``manifest.jsonl`` (or the manifest file)."""
    variant: str = ""
    """Model variant name or YAML path (empty: the ``init`` weights' own variant, else ``fastuss-8.3g``).
    Given with ``init`` weights of another variant, they are transferred into this one (a warm start:
    ``model.transfer``). A checkpoint being resumed always keeps its own variant."""
    out: str = ""
    """Run folder (``last.pt``, ``best/``, ``metrics.jsonl``, ``averaged.safetensors``); empty = ``runs/<variant>``."""
    init: str | None = None
    """Start from these weights (``.safetensors`` or a training ``.pt``; ``shipped`` = the package's weights for
    ``variant``, ``shipped:NAME`` those for variant NAME); new optimizer, EMA and schedule. Used only when
    there is no ``out/last.pt`` to resume from (e.g. the run folder is gone)."""
    resume: bool = True
    """Continue from ``out/last.pt`` when it exists (exactly where it stopped)."""
    steps: int = 200_000
    """Step horizon: the run stops here, and the learning rate has decayed to ``min_lr`` by then (unless
    ``time_budget`` comes first)."""
    time_budget: float = 0.0
    """Minutes of wall time for this invocation (0 = none). Stepping stops early enough that the final
    evaluation, ``last.pt`` and the averaged and EMA weights are written before the time is up; the
    learning-rate curve then spans the budget (progress = elapsed / budget)."""
    batch_size: int = 8
    """Mixtures per step (per process)."""
    lr: float = 1e-3
    """Peak learning rate of AdamW (after the warm-up)."""
    weight_decay: float = 1e-2
    """AdamW weight decay."""
    warmup_steps: int = 2000
    """Steps of linear warm-up from 0 to ``lr``."""
    schedule: str = "cosine"
    """``cosine`` or ``linear`` decay from ``lr`` to ``min_lr`` over the horizon (``steps`` or ``time_budget``),
    after the warm-up; ``plateau`` = flat, cut by ``plateau_factor`` when validation stalls."""
    grad_clip: float = 5.0
    """Gradients are clipped to this global norm."""
    plateau_patience: int = 5
    """Evaluations without a new best validation loss before the learning rate is cut (``schedule: plateau``)."""
    plateau_factor: float = 0.5
    """Learning-rate cut when validation stalls (``schedule: plateau``)."""
    min_lr: float = 1e-5
    """Learning rate at the end of the horizon (cosine / linear) and floor of the plateau cuts."""
    log_every: int = 20
    """Steps between lines of the training log."""
    eval_every: int = 1000
    """Steps between validations (see also ``eval_minutes``)."""
    eval_minutes: float = 0.0
    """Also evaluate once this many minutes of wall time have passed since the last evaluation (0 = off):
    with ``time_budget`` the step time is rarely known in advance, the wall time is."""
    checkpoint_every: int = 500
    """Steps between writes of ``last.pt``."""
    keep_best: int = 5
    """Best checkpoints kept (by validation loss) and averaged at the end."""
    ema_decay: float = 0.999
    """Decay of the exponential moving average of the weights (0 = off). Validation scores the EMA, and
    ``best/``, ``averaged.*`` and ``ema.safetensors`` hold EMA weights."""
    valid_examples: int = 30
    """Validation mixtures per task (from the ``valid`` split; ``test`` is for ``fastuss eval`` only)."""
    valid_seconds: float = 4.0
    """Length of each validation mixture. On ``fastuss-causal`` validation costs about 1.2 CPU-seconds per
    mixture-second (measured: 4.8 CPU-s per 4-s mixture), so 30 x 5 tasks x 4 s is ~12 CPU-minutes (~6 min
    on 2 idle cores): keep to a few evaluations per run (``eval_every``, ``eval_minutes``). ``fastuss eval`` scores
    6-s mixtures."""
    valid_tasks: tuple[str, ...] = ("dialog", "cinematic", "music_stems", "denoise", "two_talkers")
    valid_batch_size: int = 4
    seed: int = 0
    """Seed of the weights' initialisation and of the mixing."""
    workers: int = 2
    """Processes that mix training batches beside the model (0 = mix in the training process)."""
    cache: str = "int16"
    """Decoded clips: ``int16``/``float32`` in memory, ``mmap`` (int16 files in the page cache, shared by
    runs side by side; decoded once), or ``none``."""
    device: str = "auto"
    """``auto`` (CUDA if present), ``cpu``, ``cuda``, ``cuda:1``..."""
    precision: str = "auto"
    """``auto`` = bf16 autocast on CUDA, float32 on CPU; or ``bf16`` / ``fp32``. On a CPU with bf16
    instructions (AVX512-BF16, AMX), ``bf16`` with ``compile`` is ~1.7x faster per step (attention
    stays float32); validation on CPU always runs in float32."""
    threads: int = 0
    """CPU threads for torch (0 = torch's default)."""
    compile: str = ""
    """``torch.compile`` the training forward with this backend (``inductor``: ~1.3x per causal step on
    2 CPU cores after a one-off compile of 5-15 min; needs gcc); empty = eager. With several processes
    (torchrun) DDP wraps the compiled forward."""
    teacher: str | None = None
    """Distil from this model (``.safetensors`` or ``.pt``) as well as from the true targets."""
    distill_weight: float = 0.5
    find_unused_parameters: bool = True
    progress: bool = True
    mix: MixConfig = field(default_factory=MixConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / Path(self.variant_or_default).stem

    @property
    def variant_or_default(self) -> str:
        return self.variant or DEFAULT_VARIANT

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "log_every",
            "eval_every",
            "checkpoint_every",
            "valid_examples",
            "valid_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        for name in ("time_budget", "eval_minutes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 minutes, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.schedule not in SHAPES:
            raise ValueError(f"schedule must be one of {', '.join(SHAPES)}, got {self.schedule!r}")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ValueError(f"plateau_factor must be in (0, 1), got {self.plateau_factor}")


def train_config_from_dict(data: dict[str, Any], where: str = "train config") -> TrainConfig:
    """Build a ``TrainConfig`` from a plain dict; unknown keys are rejected."""
    return dataclass_from_dict(TrainConfig, data, where)


def train_config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain-dict form (JSON/YAML friendly) of a ``TrainConfig``."""
    return dataclass_to_dict(config)


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """A ``TrainConfig`` from a YAML file, with ``overrides`` applied on top."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of training options, got {type(data).__name__}")
    mix = {**data.pop("mix", {}), **overrides.pop("mix", {})}
    return train_config_from_dict({**data, **overrides, "mix": mix}, str(path))
