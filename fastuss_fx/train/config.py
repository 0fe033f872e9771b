"""Training run configuration: one dataclass; CLI flags and YAML files fill it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fastuss_fx.config import dataclass_from_dict, dataclass_to_dict
from fastuss_fx.data.mixer import MixConfig
from fastuss_fx.pretrained import DEFAULT_MODELS
from fastuss_fx.train.schedule import SHAPES

DEFAULT_VARIANT = DEFAULT_MODELS["offline"]
"""What ``fastuss train`` builds when neither ``variant`` nor ``init`` says: the offline default model."""

SESSION_FIELDS = (
    "steps",
    "time_budget",
    "resume",
    "init",
    "device",
    "precision",
    "threads",
    "compile",
    "workers",
    "cache",
    "progress",
    "log_every",
    "eval_every",
    "eval_minutes",
    "checkpoint_every",
    "allow_untrained_teacher",
)
"""Settings of one invocation: a resumed run may change them without changing what it learns."""
FIXED_ON_RESUME = {"mix.sample_rate": "the model in the checkpoint was trained at the saved rate"}
"""Settings a resumed run cannot change, and why (the model's variant is checked against the checkpoint)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved inside every checkpoint."""

    data: str = ""
    """Corpus folder with ``manifest.jsonl`` (or the manifest file), e.g. the ``corpus/`` of ``fastuss data
    build``; required."""
    variant: str = ""
    """Model variant name or YAML path (empty: the ``init`` weights' own variant, else the offline default).
    Given with ``init`` weights of another variant, they are transferred into this one (a warm start:
    ``model.transfer``). A checkpoint being resumed keeps its own variant (another one is refused)."""
    out: str = ""
    """Run folder (``last.pt``, ``best/``, ``metrics.jsonl``, ``averaged.safetensors``); empty = ``runs/<variant>``."""
    init: str | None = None
    """Start from these weights (``.safetensors`` or a training ``.pt``; ``shipped`` = the package's weights for
    ``variant``, ``shipped:NAME`` those for variant NAME); new optimizer, EMA and schedule. Used only when
    there is no ``out/last.pt`` to resume from (e.g. the run folder is gone)."""
    resume: bool = True
    """Continue from ``out/last.pt`` when it exists (exactly where it stopped, schedule included; changed
    settings are logged, a changed variant or sample rate is refused)."""
    steps: int = 200_000
    """The run stops at this step, and the learning rate has decayed to ``min_lr`` by then (unless
    ``time_budget`` ends stepping first)."""
    time_budget: float = 0.0
    """Minutes of wall time for this invocation (0 = none). Stepping stops early enough that the final
    evaluation, ``last.pt`` and the averaged and EMA weights are written before the time is up; the
    learning-rate curve then ends where stepping ends (the steps that fit, estimated every step)."""
    batch_size: int = 8
    """Mixtures per step (per process)."""
    lr: float = 1e-3
    """Peak learning rate of AdamW (after the warm-up)."""
    weight_decay: float = 1e-2
    """AdamW weight decay."""
    warmup_fraction: float = 0.05
    """Share of the run's steps (up to ``steps``, or the steps that fit in ``time_budget``) spent warming up
    linearly from ``min_lr`` to ``lr``; only once per run, not again when it resumes."""
    schedule: str = "cosine"
    """``cosine`` or ``linear`` decay from ``lr`` to ``min_lr`` over the rest of the run's steps (up to ``steps``
    or the end of ``time_budget``); ``plateau`` = flat, cut by ``plateau_factor`` when validation stalls. A run
    resumed after its end starts a new decay from ``lr`` (no warm-up)."""
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
    """Distil from this model as well as learn from the true targets: a shipped variant with weights, an
    installed model (``fastuss models import``: e.g. the official ``tuss.medium.2-4src``), a ``.safetensors``
    file or a training ``.pt``. It separates each training batch (frozen, eval mode; any size or STFT, but
    the training sample rate) and the loss adds ``distill_weight`` x the student's loss against its
    outputs. Its time per step is logged (``teacher_s`` beside ``step_s``)."""
    distill_weight: float = 0.5
    """Weight of the loss against the teacher's outputs, added to the loss against the true targets
    (0 = no teacher term: the teacher is not loaded)."""
    allow_untrained_teacher: bool = False
    """Accept a ``teacher`` without trained weights (random init: tests only; refused otherwise)."""
    find_unused_parameters: bool = False
    """DDP: search the autograd graph for parameters without a gradient every step. Off: every
    parameter gets one in every variant and task mix (tests/train/test_distributed.py); torch warns
    that the search found none and only costs a traversal per step."""
    progress: bool = True
    mix: MixConfig = field(default_factory=MixConfig)

    @property
    def run_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        variant = Path(self.variant_or_default)  # a name (``fastuss-4.6g``: no suffix to strip) or a YAML file
        return Path("runs") / (variant.stem if variant.suffix in (".yaml", ".yml") else variant.name)

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
        if not 0.0 <= self.distill_weight < float("inf"):
            raise ValueError(f"distill_weight must be a finite number >= 0, got {self.distill_weight}")
        for name in ("time_budget", "eval_minutes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 minutes, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.schedule not in SHAPES:
            raise ValueError(f"schedule must be one of {', '.join(SHAPES)}, got {self.schedule!r}")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ValueError(f"plateau_factor must be in (0, 1), got {self.plateau_factor}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")


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


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def config_changes(saved: dict[str, Any], config: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Settings that differ between a checkpoint's ``train_config`` and ``config``, as
    ``{"lr": (saved, new), "mix.snr_db": (saved, new), ...}`` (``"<unset>"`` where one side lacks the key:
    a setting of an older or newer version)."""
    old, new = _flat(saved), _flat(train_config_to_dict(config))
    return {
        key: (old.get(key, "<unset>"), new.get(key, "<unset>"))
        for key in sorted(old.keys() | new.keys())
        if old.get(key, "<unset>") != new.get(key, "<unset>")
    }


def check_resumable(changes: dict[str, tuple[Any, Any]], where: str) -> None:
    """Raise ``ValueError`` naming the first change (from ``config_changes``) a resumed run cannot make."""
    for key, why in FIXED_ON_RESUME.items():
        if key in changes and "<unset>" not in changes[key]:
            old, new = changes[key]
            raise ValueError(
                f"{where}: {key} cannot change when resuming ({old!r} saved, {new!r} given): {why}; "
                "use another --out, or --no-resume"
            )
