"""The training loop: one flat function, read top to bottom (nanoGPT style).

Data: dynamic mixtures from ``data.dataset.MixtureStream`` (batch ``i`` depends only on the
seed and ``i``). Optimisation: AdamW, linear warm-up, learning-rate cuts on validation
plateaus, gradient clipping, bf16 autocast on CUDA and float32 on CPU. Every
``checkpoint_every`` steps ``out/last.pt`` captures everything needed to continue exactly
(bit for bit on CPU); the ``keep_best`` best evaluations are kept in ``out/best/`` and
averaged at the end into ``out/averaged.pt`` (+ ``.safetensors``). Under ``torchrun`` each
rank draws its own batches and DDP averages the gradients; rank 0 logs and writes files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from fastuss_fx.data.dataset import Batch, MixtureStream, validation_batches
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import Mixer
from fastuss_fx.data.tasks import get_tasks
from fastuss_fx.train import checkpoint as ckpt
from fastuss_fx.train import distributed
from fastuss_fx.train.config import TrainConfig, train_config_to_dict
from fastuss_fx.train.loss import pit_loss
from fastuss_fx.train.schedule import Plateau, lr_at

logger = logging.getLogger(__name__)


class MetricsLog:
    """Appends one JSON object per line to ``path`` (flushed at once, safe to tail)."""

    def __init__(self, path: Path | None):
        self.path = path

    def write(self, **record: Any) -> None:
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and kernels only (not on biases, norms or 1-D tables)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (``auto``/``bf16``); plain float32 otherwise."""
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def validate(model: torch.nn.Module, batches: Sequence[Batch], context: distributed.Context, precision: str) -> tuple[float, dict[str, float]]:
    """Mean PIT loss over the validation set (ranks share the batches), overall and per task."""
    was_training = model.training
    model.eval()
    names = sorted({b.name for b in batches})
    sums = [0.0] * (2 * len(names))  # per task: loss * examples, examples
    for batch in batches[context.rank :: context.world_size]:
        batch = batch.to(context.device)
        with autocast_for(context.device, precision):
            estimates = model(batch.mixture, batch.prompts)
        loss, _ = pit_loss(estimates.float(), batch.targets, batch.mixture, batch.prompts)
        k = names.index(batch.name)
        sums[2 * k] += float(loss) * len(batch.prompts)
        sums[2 * k + 1] += len(batch.prompts)
    sums = distributed.all_sum(sums, context)
    model.train(was_training)
    per_task = {name: sums[2 * k] / max(sums[2 * k + 1], 1) for k, name in enumerate(names)}
    return sum(sums[0::2]) / max(sum(sums[1::2]), 1), per_task


def train_step(model: torch.nn.Module, teacher: torch.nn.Module | None, batch: Batch, optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> tuple[float, float, bool]:
    """One optimisation step; returns (loss against the targets in dB, gradient norm, whether the update was applied)."""
    device = batch.mixture.device
    with autocast_for(device, cfg.precision):
        estimates = model(batch.mixture, batch.prompts)
    loss, _ = pit_loss(estimates.float(), batch.targets, batch.mixture, batch.prompts)
    total = loss
    if teacher is not None:
        with torch.no_grad(), autocast_for(device, cfg.precision):
            taught = teacher(batch.mixture, batch.prompts).float()
        distill, _ = pit_loss(estimates.float(), taught, batch.mixture, batch.prompts)
        total = (1 - cfg.distill_weight) * loss + cfg.distill_weight * distill
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
    applied = math.isfinite(grad_norm) and math.isfinite(float(total.detach()))
    if applied:
        optimizer.step()
    return float(loss.detach()), grad_norm, applied


def prepare_model(cfg: TrainConfig, state: dict[str, Any] | None, model: torch.nn.Module | None) -> torch.nn.Module:
    """The model to train: from the checkpoint, ``--init`` weights, the given module, or a fresh variant."""
    if model is None:
        if state is not None:
            from fastuss_fx.config import config_from_dict
            from fastuss_fx.model import TUSS

            model = TUSS(config_from_dict(state["model_config"], "checkpoint"))
            if model.config.name != Path(cfg.variant).stem:
                logger.warning("resuming a %r model from the checkpoint; --variant %s is ignored", model.config.name, cfg.variant)
        elif cfg.init:
            model = ckpt.load_model(init_path(cfg))
            logger.info("starting from the weights in %s", init_path(cfg))
        else:
            model = ckpt.build_model(cfg.variant)
    elif state is None and cfg.init:
        model.load_state_dict(ckpt.load_model(init_path(cfg)).state_dict())
    if state is not None:
        model.load_state_dict(state["model"])
    return model.float().train()


def init_path(cfg: TrainConfig) -> Path:
    """``cfg.init`` as a path; ``shipped`` means the weights shipped in the package for ``cfg.variant``."""
    if cfg.init != "shipped":
        return Path(cfg.init or "")
    from fastuss_fx.weights import shipped_weights_path

    path = shipped_weights_path(cfg.variant)
    if path is None:
        raise FileNotFoundError(f"--init shipped: no weights are shipped for variant {cfg.variant!r}")
    return path


def model_config_dict(model: torch.nn.Module) -> dict[str, Any] | None:
    from fastuss_fx.config import ModelConfig, config_to_dict

    config = getattr(model, "config", None)
    return config_to_dict(config) if isinstance(config, ModelConfig) else None


def train(cfg: TrainConfig, model: torch.nn.Module | None = None) -> dict[str, Any]:
    """Train (or continue training) as ``cfg`` says; returns the final summary (also logged).

    Args:
        cfg: the run configuration.
        model: train this module instead of building ``cfg.variant`` (tests, custom models).
    """
    context = distributed.setup(cfg.device)
    try:
        return _train(cfg, context, model)
    finally:
        distributed.teardown(context)


def _train(cfg: TrainConfig, context: distributed.Context, model: torch.nn.Module | None) -> dict[str, Any]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device, out = context.device, cfg.run_dir
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    state = ckpt.load_checkpoint(last) if cfg.resume and last.is_file() else None
    torch.manual_seed(cfg.seed)

    # model, optimizer, schedule state; a checkpoint overrides all of them
    model = prepare_model(cfg, state, model).to(device)
    raw = model
    optimizer = make_optimizer(raw, cfg)
    plateau = Plateau(cfg.plateau_patience, cfg.plateau_factor, cfg.min_lr / cfg.lr)
    best = ckpt.BestKeeper(out / "best", cfg.keep_best)
    step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        plateau.load_state_dict(state["plateau"])
        best.load_state_dict(state["best"])
        step = state["step"]
        ckpt.restore_rng(state["rng"])
        logger.info("resuming %s at step %d", last, step)
    if context.distributed:
        model = DistributedDataParallel(raw, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=cfg.find_unused_parameters)
    teacher = None
    if cfg.teacher:
        teacher = ckpt.load_model(cfg.teacher).float().to(device).eval().requires_grad_(False)

    # data: an endless resumable stream and a fixed validation set
    store = ClipStore.from_manifest(cfg.data, cache=cfg.cache, sample_rate=cfg.mix.sample_rate)
    valid = validation_batches(store, get_tasks(list(cfg.valid_tasks)), replace(cfg.mix, chunk_seconds=cfg.valid_seconds), cfg.valid_examples, batch_size=cfg.valid_batch_size)
    mixer = Mixer(store, store.subset("train"), cfg.mix)
    if cfg.workers > 0:  # decode once before the workers fork, so they share the clips
        store.preload(store.subset("train"), progress=cfg.progress and context.is_main)
    stream = MixtureStream(mixer, cfg.batch_size, cfg.seed, step=step, rank=context.rank, world_size=context.world_size)
    batches = iter(DataLoader(stream, batch_size=None, num_workers=cfg.workers, pin_memory=device.type == "cuda"))

    log = MetricsLog(out / "metrics.jsonl" if context.is_main else None)
    if context.is_main and step == 0:
        log.write(event="start", config=train_config_to_dict(cfg), world_size=context.world_size, device=str(device))
    elif context.is_main:
        log.write(event="resume", step=step, world_size=context.world_size, device=str(device))
    def save_last() -> None:
        state = {"model": ckpt.model_state(raw), "model_config": model_config_dict(raw), "optimizer": optimizer.state_dict()}
        state.update(plateau=plateau.state_dict(), best=best.state_dict(), step=step, rng=ckpt.capture_rng(), train_config=train_config_to_dict(cfg))
        ckpt.save_checkpoint(state, last)

    bar = tqdm(total=cfg.steps, initial=step, unit="step", disable=None if cfg.progress and context.is_main else True, dynamic_ncols=True)
    window: list[float] = []
    tic, skipped = time.perf_counter(), 0
    try:
        while step < cfg.steps:
            batch = next(batches).to(device)
            lr = lr_at(step, cfg.lr, cfg.warmup_steps, plateau.scale)
            for group in optimizer.param_groups:
                group["lr"] = lr

            loss, grad_norm, applied = train_step(model, teacher, batch, optimizer, cfg)
            if not applied:  # all ranks see the same reduced gradients, so all skip together
                skipped += 1
                logger.warning("step %d: non-finite loss or gradient (%s, %s); update skipped", step, loss, grad_norm)
            step += 1
            window.append(loss)
            bar.update(1)

            if step % cfg.log_every == 0 or step == cfg.steps:
                seconds = time.perf_counter() - tic
                rate = len(window) * cfg.batch_size * context.world_size / max(seconds, 1e-9)
                log.write(step=step, loss=sum(window) / len(window), lr=lr, grad_norm=grad_norm, examples_per_s=rate, skipped=skipped)
                bar.set_postfix(loss=f"{sum(window) / len(window):.2f}", lr=f"{lr:.2e}")
                window, tic = [], time.perf_counter()
            if step % cfg.eval_every == 0:
                val_loss, per_task = validate(raw, valid, context, cfg.precision)
                improved = plateau.update(val_loss)
                if context.is_main:
                    best.offer(val_loss, step, {"model": ckpt.model_state(raw), "model_config": model_config_dict(raw), "step": step, "val_loss": val_loss})
                log.write(step=step, val_loss=val_loss, val_tasks=per_task, best=improved, lr_scale=plateau.scale)
                logger.info("step %d: validation loss %.3f dB%s", step, val_loss, " (best)" if improved else "")
            if context.is_main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                save_last()
    except KeyboardInterrupt:  # batches are keyed by step, so a run stopped anywhere resumes exactly
        if context.is_main:
            save_last()
            logger.warning("interrupted: saved %s at step %d", last, step)
        raise
    bar.close()
    summary: dict[str, Any] = {"step": step, "best_val_loss": plateau.best, "skipped": skipped}
    if context.distributed:
        summary["ranks_in_sync"] = distributed.in_sync(raw, context)
    if context.is_main and best.entries:
        summary.update(average_best(raw, best, valid, context, cfg, out))
    log.write(event="end", **summary)
    return summary


def average_best(model: torch.nn.Module, best: ckpt.BestKeeper, valid: Sequence[Batch], context: distributed.Context, cfg: TrainConfig, out: Path) -> dict[str, Any]:
    """Average the kept best snapshots into ``out/averaged.pt`` (and ``.safetensors`` when the model has a config)."""
    states = [ckpt.load_checkpoint(path)["model"] for path in best.paths()]
    averaged = ckpt.average_state_dicts(states)
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(averaged)
    solo = replace(context, rank=0, world_size=1)  # only rank 0 gets here: no collectives
    val_loss, per_task = validate(model, valid, solo, cfg.precision)
    config = model_config_dict(model)
    steps = [step for _, step, _ in best.entries]
    ckpt.save_checkpoint({"model": ckpt.model_state(model), "model_config": config, "steps": steps, "val_loss": val_loss}, out / "averaged.pt")
    if config is not None:
        try:
            from fastuss_fx.weights import save_weights

            save_weights(model, out / "averaged.safetensors", {"steps": json.dumps(steps), "val_loss": f"{val_loss:.4f}", "val_tasks": json.dumps(per_task)})
        except ImportError:
            logger.warning("fastuss_fx.weights is missing; wrote only %s", out / "averaged.pt")
    model.load_state_dict(kept)
    logger.info("averaged %d checkpoints (steps %s): validation loss %.3f dB", len(states), steps, val_loss)
    return {"averaged_steps": steps, "averaged_val_loss": val_loss, "averaged_val_tasks": per_task}
