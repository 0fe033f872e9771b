"""Evaluation on the fixed validation set: SI-SDR and SNR (and their improvements) per task and prompt.

Each source is scored against its target, and so is the mixture itself (the identity
baseline), so the improvement (``si_sdri``) is what the model adds. ``oracle`` feeds the
true targets through the same scoring: it must reach the ceiling, or the pipeline is broken.
Repeated prompts (two talkers) are matched to their targets by the best permutation.
Every mean comes with a 95 % confidence interval for SI-SDRi over the mixtures scored
(``mean ± 1.96 · sd / √n``, sources of one mixture averaged first, so ``n`` counts mixtures).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from fastuss_fx.data.dataset import Batch
from fastuss_fx.data.tasks import Task
from fastuss_fx.metrics import is_silent, si_sdr, snr
from fastuss_fx.train.loss import pit_loss

logger = logging.getLogger(__name__)

Separator = Callable[[torch.Tensor, list[list[str]]], torch.Tensor]
"""(mixture [B, N], prompts per example) -> estimates [B, S, N]."""
ORACLE_MIN_DB = 60.0
METRICS = ("si_sdr", "si_sdri", "snr", "snri")
Z95 = 1.959964
"""Normal quantile of a two-sided 95 % interval."""


def identity(mixture: torch.Tensor, prompts: list[list[str]]) -> torch.Tensor:
    """The baseline separator: every source is the mixture."""
    return mixture[:, None, :].expand(-1, len(prompts[0]), -1)


def model_separator(model: torch.nn.Module, device: torch.device | str = "cpu") -> Separator:
    """Wrap a model for ``evaluate`` (eval mode, no gradients, float32)."""
    model = model.eval().to(device)

    @torch.no_grad()
    def separate(mixture: torch.Tensor, prompts: list[list[str]]) -> torch.Tensor:
        return model(mixture.to(device), prompts).float().cpu()

    return separate


def backend_separator(backend: Any) -> Separator:
    """Wrap an inference backend (e.g. onnxruntime's) for ``evaluate``: one example at a time,
    since a backend takes one prompt list per call."""

    def separate(mixture: torch.Tensor, prompts: list[list[str]]) -> torch.Tensor:
        rows = [
            backend.separate(row[None].float().numpy(), list(p))[0]
            for row, p in zip(mixture.cpu(), prompts, strict=True)
        ]
        return torch.from_numpy(np.stack(rows))

    return separate


def score_batch(estimates: torch.Tensor, batch: Batch) -> list[dict[str, Any]]:
    """One record per audible source of every example: prompt, SI-SDR and SNR of estimate and of mixture
    (a silent target, ``metrics.is_silent`` as in the loss, has no SDR and gets no record)."""
    _, perm = pit_loss(estimates, batch.targets, batch.mixture, batch.prompts)
    targets = torch.gather(batch.targets, 1, perm[:, :, None].expand_as(batch.targets).to(batch.targets.device))
    mixture = batch.mixture[:, None, :].expand_as(targets)
    est, ref, mix = (x.detach().double().cpu().numpy() for x in (estimates, targets, mixture))
    scores = {
        "si_sdr": si_sdr(ref, est),
        "snr": snr(ref, est),
        "si_sdr_mix": si_sdr(ref, mix),
        "snr_mix": snr(ref, mix),
    }
    silent = is_silent(targets.detach().float().cpu()).tolist()  # [B, S]: in float32, as the loss decides
    records = []
    for b, prompts in enumerate(batch.prompts):
        for s, prompt in enumerate(prompts):
            if silent[b][s]:
                continue
            record: dict[str, Any] = {
                "task": batch.name,
                "prompt": prompt,
                "example": b,
                **{k: float(v[b, s]) for k, v in scores.items()},
            }
            record["si_sdri"] = record["si_sdr"] - record["si_sdr_mix"]
            record["snri"] = record["snr"] - record["snr_mix"]
            records.append(record)
    return records


def confidence_interval(values: Sequence[float]) -> float | None:
    """Half-width of the 95 % confidence interval of the mean of ``values`` (None below 2 values)."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Z95 * sd / math.sqrt(n)


def _mean(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {k: sum(r[k] for r in records) / len(records) for k in METRICS + ("si_sdr_mix",)}
    by_mixture: dict[Any, list[float]] = defaultdict(list)
    for record in records:
        by_mixture[record["mixture"]].append(record["si_sdri"])
    half = confidence_interval([sum(v) / len(v) for v in by_mixture.values()])
    summary["si_sdri_ci95"] = half
    summary["si_sdri_low"] = None if half is None else summary["si_sdri"] - half
    summary["si_sdri_high"] = None if half is None else summary["si_sdri"] + half
    return {**summary, "count": len(records), "mixtures": len(by_mixture)}


def evaluate(
    separate: Separator, batches: Sequence[Batch], tasks: Sequence[Task], *, check_oracle: bool = True
) -> dict[str, Any]:
    """Score ``separate`` on ``batches`` (named after ``tasks``).

    Returns:
        ``{"tasks": {task: {"main": {...}, "sources": {prompt: {...}}}}, "prompts": {prompt: {...}},
        "oracle_min_si_sdr": dB}``; each ``{...}`` holds mean ``si_sdr``, ``si_sdri``, ``snr``,
        ``snri``, ``si_sdr_mix`` (the baseline), ``count`` (sources), ``mixtures`` (n), and
        ``si_sdri_ci95`` (half-width of the 95 % interval; None for one mixture) with
        ``si_sdri_low`` / ``si_sdri_high``.

    Raises:
        RuntimeError: ``check_oracle`` and the true targets do not reach ``ORACLE_MIN_DB``.
    """
    records, oracle = [], []
    for number, batch in enumerate(batches):
        scored = score_batch(separate(batch.mixture, batch.prompts).float().cpu(), batch)
        records += [{**r, "mixture": (number, r["example"])} for r in scored]
        if check_oracle:
            oracle += [r["si_sdr"] for r in score_batch(batch.targets, batch)]
    if check_oracle and min(oracle) < ORACLE_MIN_DB:
        raise RuntimeError(f"oracle check failed: true targets score {min(oracle):.1f} dB SI-SDR < {ORACLE_MIN_DB} dB")
    main = {task.name: set(task.main) for task in tasks}
    by_task: dict[str, list] = defaultdict(list)
    for record in records:
        by_task[record["task"]].append(record)
    result: dict[str, Any] = {"tasks": {}, "prompts": {}}
    for name, rows in by_task.items():
        kinds = sorted({r["prompt"] for r in rows})
        result["tasks"][name] = {
            "main": _mean([r for r in rows if r["prompt"] in main.get(name, kinds)]),
            "sources": {k: _mean([r for r in rows if r["prompt"] == k]) for k in kinds},
        }
    for kind in sorted({r["prompt"] for r in records}):
        result["prompts"][kind] = _mean([r for r in records if r["prompt"] == kind])
    if check_oracle:
        result["oracle_min_si_sdr"] = min(oracle)
    return result


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table: one line per task main target and per task source, then per prompt."""
    header = (
        f"{'task / prompt':<28}{'SI-SDR':>9}{'SI-SDRi':>9}{'± 95%':>8}{'SNR':>9}{'SNRi':>9}{'mix SI-SDR':>12}"
        f"{'n':>6}{'sources':>9}"
    )
    lines = [header, "-" * len(header)]

    def line(label: str, m: dict[str, Any]) -> str:
        half = "" if m.get("si_sdri_ci95") is None else f"{m['si_sdri_ci95']:.2f}"
        return (
            f"{label:<28}{m['si_sdr']:9.2f}{m['si_sdri']:9.2f}{half:>8}{m['snr']:9.2f}{m['snri']:9.2f}"
            f"{m['si_sdr_mix']:12.2f}{m.get('mixtures', 0):6d}{m['count']:9d}"
        )

    for name, task in result["tasks"].items():
        lines.append(line(f"{name} (main)", task["main"]))
        lines += [line(f"  {name}/{kind}", m) for kind, m in task["sources"].items()]
    lines.append("-" * len(header))
    lines += [line(f"prompt {kind}", m) for kind, m in result["prompts"].items()]
    if "oracle_min_si_sdr" in result:
        lines.append(f"oracle check: true targets score >= {result['oracle_min_si_sdr']:.1f} dB SI-SDR")
    return "\n".join(lines)
