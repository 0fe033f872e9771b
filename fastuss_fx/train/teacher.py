"""The teacher of a distillation run: a trained model, named like any other, run frozen beside the student.

``fastuss train --teacher MODEL`` names a shipped variant with weights (``fastuss-causal``), an
installed model (``tuss.medium.2-4src`` after ``fastuss models import``), a weights file
(``.safetensors``) or a training checkpoint (``.pt``). The teacher may have another STFT, band
layout or size than the student; it must run at the training sample rate, since it hears the
same mixtures. Each step it separates the student's batch (eval mode, fused, no gradients), and
the training step adds ``distill_weight`` x the student's loss against those outputs (the
capped-SNR PIT loss of ``train.loss``, as against the true targets) to the loss against the
targets. The teacher keeps what it cost and scored since the last ``take_window`` for the log.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from fastuss_fx.train.loss import pit_loss
from fastuss_fx.weights import load_model, load_weights

logger = logging.getLogger(__name__)

WEIGHTS_SUFFIXES = (".safetensors", ".pt")


def load_teacher_model(name: str, allow_untrained: bool = False) -> torch.nn.Module:
    """The teacher ``name`` in eval mode, fused, frozen (on the CPU).

    Raises:
        ValueError: an unknown name, or a model without trained weights (a variant with no shipped or
            installed weights, a variant YAML) unless ``allow_untrained``: random weights teach noise.
    """
    if Path(name).suffix in WEIGHTS_SUFFIXES:
        model = load_weights(name).fuse()  # a weights file or checkpoint holds trained weights by definition
    else:
        try:
            model, trained = load_model(name)
        except ValueError as err:
            raise ValueError(f"--teacher {name}: {err}") from None
        if not trained and not allow_untrained:
            raise ValueError(
                f"--teacher {name}: no trained weights for {name!r} (none shipped or installed), and a teacher "
                "with random weights teaches noise; name a model with weights (`fastuss models list`; the "
                "official TUSS: `fastuss models import`), a .safetensors or .pt file, or pass "
                "--allow-untrained-teacher (tests only)"
            )
    return model.float().eval().requires_grad_(False)  # fused: the inference form, no train-time branches


def model_sample_rate(model: torch.nn.Module) -> int | None:
    """The sample rate a model runs at (its STFT config), or None for a model without a config."""
    config = getattr(model, "config", None)
    stft = getattr(config, "stft", None)
    return getattr(stft, "sample_rate", None)


def check_sample_rates(name: str, teacher: torch.nn.Module, student: torch.nn.Module, mix_rate: int) -> None:
    """Raise ``ValueError`` unless the teacher runs at the rate of the training mixtures (and of the student)."""
    teacher_rate, student_rate = model_sample_rate(teacher), model_sample_rate(student)
    if teacher_rate is not None and teacher_rate != mix_rate:
        raise ValueError(
            f"--teacher {name} runs at {teacher_rate} Hz, but training mixes at {mix_rate} Hz "
            "(--mix-sample-rate): the teacher must hear the student's mixtures at its own rate; "
            "choose a teacher at that rate"
        )
    if teacher_rate is not None and student_rate is not None and teacher_rate != student_rate:
        raise ValueError(f"--teacher {name} runs at {teacher_rate} Hz, the student at {student_rate} Hz")


class Teacher:
    """A frozen model that separates the training batches; the distillation term of the loss."""

    def __init__(self, name: str, model: torch.nn.Module) -> None:
        self.name, self.model = name, model
        self.seconds: list[float] = []  # per step since ``take_window``
        self.losses: list[torch.Tensor] = []  # detached: read at ``take_window`` (no sync per step)
        self.total_seconds, self.total_steps = 0.0, 0

    @classmethod
    def load(
        cls,
        name: str,
        student: torch.nn.Module,
        mix_rate: int,
        device: torch.device,
        allow_untrained: bool = False,
    ) -> Teacher:
        """Load ``name`` (see ``load_teacher_model``) onto ``device``, checked against the student and the mixtures."""
        model = load_teacher_model(name, allow_untrained)
        check_sample_rates(name, model, getattr(student, "module", student), mix_rate)
        config = getattr(model, "config", None)
        parameters = sum(p.numel() for p in model.parameters())
        logger.info(
            "teacher %s: %s, %.2f M parameters, %s Hz",
            name,
            getattr(config, "name", type(model).__name__),
            parameters / 1e6,
            model_sample_rate(model) or "?",
        )
        return cls(name, model.to(device))

    @torch.no_grad()
    def __call__(self, mixture: torch.Tensor, prompts: Any) -> tuple[torch.Tensor, float]:
        """Separate ``mixture`` [B, N] with ``prompts``: ([B, S, N] float32 outputs, seconds it took).

        On CUDA the clock waits for the GPU before and after, so the seconds are the teacher's own.
        """
        device = mixture.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tic = time.perf_counter()
        outputs = self.model(mixture, prompts).float()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return outputs, time.perf_counter() - tic

    def distill_loss(self, estimates: torch.Tensor, mixture: torch.Tensor, prompts: Any) -> torch.Tensor:
        """The student's PIT loss (dB) against the teacher's outputs on the same ``mixture`` [B, N].

        Args:
            estimates: [B, S, N] the student's outputs (with gradients).
            prompts: one list of S prompt kinds per example.
        """
        taught, seconds = self(mixture, prompts)
        if taught.shape != estimates.shape:
            raise ValueError(
                f"--teacher {self.name} returned {tuple(taught.shape)} for a batch the student separates into "
                f"{tuple(estimates.shape)}"
            )
        loss, _ = pit_loss(estimates.float(), taught, mixture, prompts)
        self.seconds.append(seconds)
        self.losses.append(loss.detach())
        self.total_seconds, self.total_steps = self.total_seconds + seconds, self.total_steps + 1
        return loss

    def take_window(self) -> dict[str, float]:
        """Mean ``distill_loss`` (dB) and ``teacher_s`` (seconds per step) since the last call; resets them."""
        if not self.seconds:
            return {}
        window = {
            "distill_loss": float(torch.stack(self.losses).mean()),
            "teacher_s": sum(self.seconds) / len(self.seconds),
        }
        self.seconds, self.losses = [], []
        return window
