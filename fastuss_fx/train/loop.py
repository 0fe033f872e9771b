"""The training loop: one flat function, read top to bottom (nanoGPT style).

Data: dynamic mixtures from ``data.dataset.MixtureStream`` (batch ``i`` depends only on the
seed and ``i``). Optimisation: AdamW, warm-up then a decay over the steps to go (up to
``steps`` or the end of ``time_budget``; ``train.schedule``), gradient clipping, an EMA of the
weights (``train.ema``), bf16 autocast on CUDA (on CPU on request); with a ``teacher``
(``train.teacher``) the loss adds a term against a frozen model's outputs on the same batch.
Validation (the ``valid`` split; ``test`` and ``holdout`` are only reported, by ``fastuss eval``)
scores the EMA weights; the ``keep_best`` best
are kept in ``out/best/`` and averaged at the end into ``out/averaged.pt`` (+ ``.safetensors``);
the last EMA goes to ``out/ema.safetensors``; the summary's ``picked`` names the one of the two
with the lower validation loss.
``out/last.pt`` (atomic) captures everything needed to continue exactly (bit for bit on CPU):
every ``checkpoint_every`` steps, at the end, and when SIGTERM/SIGINT stops the run
(``train.stop``). With a time budget the run stops stepping early enough to finish all of
that in time. A resumed run logs the settings that changed and refuses another model. Under
``torchrun`` each rank draws its own batches and DDP averages the gradients; the learning rate
follows rank 0's estimate of the steps left, all ranks agree when to evaluate and stop, and
rank 0 logs and writes files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from fastuss_fx.cpus import bf16_support
from fastuss_fx.data.dataset import Batch, MixtureStream, validation_batches
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import Mixer
from fastuss_fx.data.tasks import TASKS, get_tasks
from fastuss_fx.train import checkpoint as ckpt
from fastuss_fx.train import distributed
from fastuss_fx.train.config import (
    SESSION_FIELDS,
    TrainConfig,
    check_resumable,
    config_changes,
    train_config_to_dict,
)
from fastuss_fx.train.ema import EMA, ema_weights
from fastuss_fx.train.evaluate import score_batch
from fastuss_fx.train.loss import pit_loss
from fastuss_fx.train.schedule import Plateau, Schedule, peak_warning
from fastuss_fx.train.stop import StopSignals, TimeBudget, ignore_stop_signals
from fastuss_fx.train.teacher import Teacher
from fastuss_fx.weights import build_model, load_weights, save_weights

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


def precision_for_this_cpu(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """``cfg`` with ``precision`` fp32 where bf16 on this CPU would be a silent slowdown (no AVX-512:
    bfloat16 products several times slower than float32), saying so; a warning where bf16 runs
    emulated (AVX-512 without AVX512-BF16/AMX: measure with ``fastuss bench --train``)."""
    if device.type != "cpu" or cfg.precision != "bf16":
        return cfg
    support = bf16_support()
    if support == "none":
        logger.warning(
            "--precision bf16: this CPU has no AVX-512 or bf16 instructions, so bfloat16 products run several "
            "times slower than float32; training in fp32 instead"
        )
        return replace(cfg, precision="fp32")
    if support == "emulated":
        logger.warning(
            "--precision bf16: this CPU has no bf16 instructions (AVX512-BF16/AMX); bfloat16 is emulated and may "
            "be slower than fp32 (compare: fastuss bench --train --train-precision fp32 bf16)"
        )
    return cfg


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (``auto``/``bf16``); plain float32 otherwise."""
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    batches: Sequence[Batch],
    context: distributed.Context,
    precision: str,
    interrupted: Callable[[], bool] | None = None,
) -> tuple[float, dict[str, float], dict[str, float | None]] | None:
    """Score ``model`` on the validation set (ranks share the batches); on CPU in float32 whatever
    the training precision, as the exported model runs.

    Returns:
        the mean PIT loss (dB) overall and per task, and per task the mean SI-SDRi (dB) of its
        main targets; None when ``interrupted()`` turned true on the way (one process only).
    """
    was_training = model.training
    model.eval()
    if context.device.type == "cpu":
        precision = "fp32"
    names = sorted({b.name for b in batches})
    sums = [0.0] * (4 * len(names))  # per task: loss * examples, examples, SI-SDRi sum, main sources
    try:
        for batch in batches[context.rank :: context.world_size]:
            if interrupted is not None and interrupted():
                return None
            batch = batch.to(context.device)
            with autocast_for(context.device, precision):
                estimates = model(batch.mixture, batch.prompts).float()
            loss, _ = pit_loss(estimates, batch.targets, batch.mixture, batch.prompts)
            k = names.index(batch.name)
            sums[4 * k] += float(loss) * len(batch.prompts)
            sums[4 * k + 1] += len(batch.prompts)
            main = TASKS[batch.name].main if batch.name in TASKS else None
            for record in score_batch(estimates, batch):
                if main is None or record["prompt"] in main:
                    sums[4 * k + 2] += record["si_sdri"]
                    sums[4 * k + 3] += 1
    finally:
        model.train(was_training)
    sums = distributed.all_sum(sums, context)
    per_task = {name: sums[4 * k] / max(sums[4 * k + 1], 1) for k, name in enumerate(names)}
    si_sdri = {name: sums[4 * k + 2] / sums[4 * k + 3] if sums[4 * k + 3] else None for k, name in enumerate(names)}
    return sum(sums[0::4]) / max(sum(sums[1::4]), 1), per_task, si_sdri


def train_step(
    model: torch.nn.Module,
    teacher: Teacher | None,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    forward: Callable[..., torch.Tensor] | None = None,
) -> tuple[float, float, bool]:
    """One optimisation step; ``forward`` (a compiled ``separate_ids`` of ``model``) replaces its call.

    The loss is the PIT loss against the targets, plus ``cfg.distill_weight`` x the PIT loss against
    the ``teacher``'s outputs when there is a teacher (it logs that term and its own time).

    Returns (loss against the targets in dB, gradient norm, whether the update was applied).
    """
    device = batch.mixture.device
    with autocast_for(device, cfg.precision):
        if forward is None:
            estimates = model(batch.mixture, batch.prompts)
        else:
            ids = cast(Any, model).prompt_ids(batch.prompts, batch.mixture.shape[0])
            estimates = forward(batch.mixture, *ids)
    loss, _ = pit_loss(estimates.float(), batch.targets, batch.mixture, batch.prompts)
    total = loss
    if teacher is not None:
        with autocast_for(device, cfg.precision):  # the teacher runs as the student does
            distill = teacher.distill_loss(estimates.float(), batch.mixture, batch.prompts)
        total = loss + cfg.distill_weight * distill
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
    applied = math.isfinite(grad_norm) and math.isfinite(float(total.detach()))
    if applied:
        optimizer.step()
    return float(loss.detach()), grad_norm, applied


class SeparateIds(torch.nn.Module):
    """``model.separate_ids`` as a module's forward: what ``torch.compile`` (and, with several
    processes, DDP around it) runs in a training step."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, mix: torch.Tensor, kinds: torch.Tensor, occurrences: torch.Tensor) -> torch.Tensor:
        return cast(Any, self.model).separate_ids(mix, kinds, occurrences)


def step_callables(
    raw: torch.nn.Module, cfg: TrainConfig, device: torch.device, data_parallel: bool
) -> tuple[torch.nn.Module, Callable[..., torch.Tensor] | None]:
    """What ``train_step`` is given: the model and, with ``cfg.compile``, the compiled forward.

    Compiled, a step calls ``separate_ids`` (tensors in, no prompt strings) through a module of its
    own; DDP (``data_parallel``) wraps whatever a step calls, so its hooks see that call
    (``train_step`` takes ``prompt_ids`` from ``raw``).
    """
    stepped: torch.nn.Module = SeparateIds(raw) if cfg.compile else raw
    if data_parallel:
        stepped = DistributedDataParallel(
            stepped,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters,
        )
    if not cfg.compile:
        return stepped, None
    return raw, torch.compile(stepped, backend=cfg.compile)


def prepare_model(cfg: TrainConfig, state: dict[str, Any] | None, model: torch.nn.Module | None) -> torch.nn.Module:
    """The model to train: from the checkpoint, ``--init`` weights, the given module, or a fresh variant."""
    if model is None:
        if state is not None:
            from fastuss_fx.config import config_from_dict
            from fastuss_fx.model import TUSS

            model = TUSS(config_from_dict(state["model_config"], "checkpoint"))
            if cfg.variant:
                check_same_variant(model.config, cfg.variant, cfg.run_dir / "last.pt")
        elif cfg.init:
            model = load_weights(init_path(cfg))
            logger.info("starting from the weights in %s", init_path(cfg))
            if cfg.variant:
                model = warm_start(model, cfg.variant)
        else:
            model = build_model(cfg.variant_or_default)
    elif state is None and cfg.init:
        model.load_state_dict(load_weights(init_path(cfg)).state_dict())
    if state is not None:
        model.load_state_dict(state["model"])
    return model.float().train()


def check_same_variant(saved: Any, variant: str, where: Path) -> None:
    """Raise ``ValueError`` when ``variant`` describes another model than the checkpoint's ``saved``
    config (a differing name alone is fine: a copied variant file)."""
    from fastuss_fx.config import load_variant

    given = load_variant(variant)
    differ = sorted(k for k, v in asdict(saved).items() if k != "name" and asdict(given)[k] != v)
    if differ:
        raise ValueError(
            f"{where}: variant cannot change when resuming: the checkpoint holds a {saved.name!r} model, "
            f"--variant {variant} differs in {', '.join(differ)}; use another --out, or --no-resume "
            "(with --init to start from these weights)"
        )


def resume_changes(cfg: TrainConfig, state: dict[str, Any], where: Path) -> dict[str, tuple[Any, Any]]:
    """The settings that differ from the checkpoint's run (logged); raises for those that cannot change."""
    changes = config_changes(state.get("train_config") or {}, cfg)
    changes.pop("variant", None)  # checked against the checkpoint's model (``check_same_variant``)
    check_resumable(changes, str(where))
    recipe = {k: v for k, v in changes.items() if k not in SESSION_FIELDS}
    session = {k: v for k, v in changes.items() if k in SESSION_FIELDS}
    if recipe:
        logger.warning("resuming %s with other settings: %s", where, _describe(recipe))
    if session:
        logger.info("resuming %s with other session settings: %s", where, _describe(session))
    return changes


def _describe(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changes.items())


def warm_start(source: torch.nn.Module, variant: str) -> torch.nn.Module:
    """``source`` itself if it is a ``variant`` model, else a new ``variant`` model with its weights transferred."""
    from fastuss_fx.config import load_variant
    from fastuss_fx.model import TUSS
    from fastuss_fx.model.transfer import transfer_weights

    config = load_variant(variant)
    if not isinstance(source, TUSS) or source.config == config:
        return source
    target = TUSS(config)
    report = transfer_weights(source, target)
    logger.info("warm start of %s from %s weights: %s", config.name, source.config.name, report)
    return target


def init_path(cfg: TrainConfig) -> Path:
    """``cfg.init`` as a path; ``shipped`` means the weights shipped in the package for ``cfg.variant``,
    ``shipped:NAME`` those for variant NAME."""
    if cfg.init != "shipped" and not (cfg.init or "").startswith("shipped:"):
        return Path(cfg.init or "")
    from fastuss_fx import pretrained

    variant = cfg.init.partition(":")[2] if cfg.init and ":" in cfg.init else cfg.variant_or_default
    path = pretrained.shipped_weights_path(variant)
    if path is None:
        raise FileNotFoundError(f"--init {cfg.init}: no weights are shipped for variant {variant!r}")
    return path


def model_config_dict(model: torch.nn.Module) -> dict[str, Any] | None:
    from fastuss_fx.config import ModelConfig, config_to_dict

    config = getattr(model, "config", None)
    return config_to_dict(config) if isinstance(config, ModelConfig) else None


def train(cfg: TrainConfig, model: torch.nn.Module | None = None) -> dict[str, Any]:
    """Train (or continue training) as ``cfg`` says; returns the final summary (also logged).

    ``summary["stopped"]`` says why stepping ended: ``steps``, ``time_budget``, or the name of
    the signal (``SIGTERM``, ``SIGINT``) that asked for a stop; after a signal only ``last.pt``
    is written (no final evaluation or averaging), so the run resumes where it stopped.

    Args:
        cfg: the run configuration.
        model: train this module instead of building ``cfg.variant`` (tests, custom models).
    """
    if not cfg.data:
        raise ValueError(
            "no training data: pass --data CORPUS (a folder with manifest.jsonl, e.g. the corpus/ that "
            "`fastuss data build` writes, or the manifest file itself)"
        )
    budget = TimeBudget(cfg.time_budget)  # the clock starts before anything else
    context = distributed.setup(cfg.device)
    cfg = precision_for_this_cpu(cfg, context.device)
    try:
        with StopSignals() as signals:
            return _train(cfg, context, model, budget, signals)
    finally:
        distributed.teardown(context)


def _train(
    cfg: TrainConfig,
    context: distributed.Context,
    model: torch.nn.Module | None,
    budget: TimeBudget,
    signals: StopSignals,
) -> dict[str, Any]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device, out = context.device, cfg.run_dir
    out.mkdir(parents=True, exist_ok=True)
    last = out / "last.pt"
    state = ckpt.load_checkpoint(last) if cfg.resume and last.is_file() else None
    changes = resume_changes(cfg, state, last) if state is not None else {}
    torch.manual_seed(cfg.seed)

    # model, optimizer, schedule, EMA and counters; a checkpoint overrides all of them
    model = prepare_model(cfg, state, model).to(device)
    raw = model
    optimizer = make_optimizer(raw, cfg)
    plateau = Plateau(cfg.plateau_patience, cfg.plateau_factor, cfg.min_lr / cfg.lr)
    schedule = Schedule(cfg.schedule, cfg.lr, cfg.min_lr, cfg.warmup_fraction)
    best = ckpt.BestKeeper(out / "best", cfg.keep_best)
    step, seen, evaluated_at = 0, {"audio_seconds": 0.0, "wall_seconds": 0.0}, -1
    if state is not None:
        decays = [group["weight_decay"] for group in optimizer.param_groups]
        optimizer.load_state_dict(state["optimizer"])
        for group, decay in zip(optimizer.param_groups, decays, strict=True):  # as configured now, not as saved
            group["weight_decay"] = decay
        plateau.load_state_dict(state["plateau"])
        best.load_state_dict(state["best"])
        schedule.load_state_dict(state.get("schedule", {"finished": True}))
        seen.update(state.get("seen", {}))
        if state.get("timing"):
            budget.load_state_dict(state["timing"])
        step, evaluated_at = state["step"], state.get("evaluated_at", -1)
        ckpt.restore_rng(state["rng"])
        logger.info("resuming %s at step %d", last, step)
    schedule.begin(steps_to_go=step < cfg.steps)
    model, forward = step_callables(raw, cfg, device, context.distributed)  # validation: eager ``raw``
    ema = EMA(raw, cfg.ema_decay) if cfg.ema_decay > 0 else None  # after DDP's broadcast: every rank starts alike
    if ema is not None and state is not None and state.get("ema"):
        ema.load_state_dict(state["ema"])
    teacher = None
    if cfg.teacher and cfg.distill_weight > 0:
        teacher = Teacher.load(cfg.teacher, raw, cfg.mix.sample_rate, device, cfg.allow_untrained_teacher)
    elif cfg.teacher:
        logger.warning("--teacher %s ignored: --distill-weight is 0", cfg.teacher)

    # data: an endless resumable stream and a fixed validation set (the valid split; never test)
    store = ClipStore.from_manifest(cfg.data, cache=cfg.cache, sample_rate=cfg.mix.sample_rate)
    valid = validation_batches(
        store,
        get_tasks(list(cfg.valid_tasks)),
        replace(cfg.mix, chunk_seconds=cfg.valid_seconds),
        cfg.valid_examples,
        batch_size=cfg.valid_batch_size,
        split="valid",
    )
    mixer = Mixer(store, store.subset("train"), cfg.mix)
    if cfg.workers > 0:  # decode once before the workers fork, so they share the clips
        store.preload(store.subset("train"), progress=cfg.progress and context.is_main)
    stream = MixtureStream(mixer, cfg.batch_size, cfg.seed, step=step, rank=context.rank, world_size=context.world_size)
    loader = DataLoader(
        stream,
        batch_size=None,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=ignore_stop_signals if cfg.workers > 0 else None,
    )
    batches = iter(loader)
    step_audio = cfg.batch_size * context.world_size * cfg.mix.chunk_seconds

    log = MetricsLog(out / "metrics.jsonl" if context.is_main else None)
    common = {
        "world_size": context.world_size,
        "device": str(device),
        "time_budget_min": cfg.time_budget,
        "init": str(init_path(cfg)) if cfg.init and state is None else None,
    }
    if context.is_main and state is None:
        log.write(event="start", config=train_config_to_dict(cfg), **common)
    elif context.is_main:
        log.write(event="resume", step=step, config=train_config_to_dict(cfg), changed=changes, **common)

    def counters() -> dict[str, float]:
        wall, audio = seen["wall_seconds"] + budget.elapsed(), seen["audio_seconds"]
        return {"wall_s": round(wall, 2), "audio_seconds": audio, "audio_hours": round(audio / 3600, 4)}

    def save_last() -> None:
        tic = time.perf_counter()
        state: dict[str, Any] = {
            "model": ckpt.model_state(raw),
            "model_config": model_config_dict(raw),
            "optimizer": optimizer.state_dict(),
        }
        state.update(
            plateau=plateau.state_dict(),
            best=best.state_dict(),
            step=step,
            rng=ckpt.capture_rng(),
            train_config=train_config_to_dict(cfg),
        )
        state.update(
            schedule=schedule.state_dict(),
            ema=ema.state_dict() if ema is not None else None,
            timing=budget.state_dict(),
            evaluated_at=evaluated_at,
        )
        state["seen"] = {
            "audio_seconds": seen["audio_seconds"],
            "wall_seconds": seen["wall_seconds"] + budget.elapsed(),
        }
        ckpt.save_checkpoint(state, last)
        budget.observe_save(time.perf_counter() - tic)

    evaluated_clock = budget.elapsed()  # the session starts the clock of eval_minutes
    last_val_loss = math.inf  # of the latest evaluation (at ``evaluated_at``)

    def evaluate_now() -> bool:
        """Score the (EMA) weights, offer them to ``best/``, log; False if a signal cut it short."""
        nonlocal evaluated_at, evaluated_clock, last_val_loss
        tic = time.perf_counter()
        with ema_weights(ema):
            result = validate(
                raw, valid, context, cfg.precision, interrupted=None if context.distributed else signals.__bool__
            )
            if result is None:
                return False
            val_loss, per_task, si_sdri = result
            improved = plateau.update(val_loss)
            if context.is_main:
                snapshot = {
                    "model": ckpt.model_state(raw),
                    "model_config": model_config_dict(raw),
                    "step": step,
                    "ema": ema is not None,
                }
                best.offer(
                    val_loss, step, {**snapshot, "val_loss": val_loss, "val_tasks": per_task, "val_si_sdri": si_sdri}
                )
        seconds = time.perf_counter() - tic
        budget.observe_eval(seconds)
        evaluated_at, evaluated_clock, last_val_loss = step, budget.elapsed(), val_loss
        # every rank evaluates together, so the ranks can compare weights here (logged: drift shows early)
        sync = {"ranks_in_sync": distributed.in_sync(raw, context)} if context.distributed else {}
        if sync and not sync["ranks_in_sync"]:
            logger.warning("step %d: the ranks' weights differ", step)
        log.write(
            step=step,
            **sync,
            val_loss=val_loss,
            val_tasks=per_task,
            val_si_sdri=si_sdri,
            best=improved,
            **({"lr_scale": plateau.scale} if cfg.schedule == "plateau" else {}),
            ema=ema is not None,
            eval_s=round(seconds, 2),
            **counters(),
        )
        logger.info("step %d: validation loss %.3f dB%s", step, val_loss, " (best)" if improved else "")
        return True

    def eval_due(at: int, ahead_s: float = 0.0) -> bool:
        """Whether an evaluation is due after step ``at`` (``ahead_s``: seconds from now until then)."""
        by_time = cfg.eval_minutes > 0 and budget.elapsed() + ahead_s - evaluated_clock >= 60 * cfg.eval_minutes
        return at % cfg.eval_every == 0 or by_time

    def stop_reason() -> str | None:
        """Why to stop before the next step (the same answer on every rank)."""
        eval_next = eval_due(step + 1, ahead_s=max(budget.steps, default=0.0))
        flags = [float(bool(signals)), float(budget.should_stop(eval_next=eval_next)), float(step >= cfg.steps)]
        flags = distributed.all_sum(flags, context)
        if flags[0]:
            return signals.name or "signal"
        return "time_budget" if flags[1] else "steps" if flags[2] else None

    def steps_left() -> float:
        """Steps still to run: up to ``steps``, fewer when the time budget ends stepping first (rank
        0's estimate, so that every rank steps with the same rate)."""
        by_time = budget.steps_left(cfg.eval_every, cfg.eval_minutes)
        return distributed.from_main(min(float(cfg.steps - step), by_time), context)

    peak_checked = False

    def check_peak(left: float) -> None:
        """Warn once per session, as soon as the steps to go are known, if the peak rate is out of reach."""
        nonlocal peak_checked
        if peak_checked or step >= cfg.steps or (budget.limited and budget.typical_step() is None):
            return
        peak_checked = True
        warning = peak_warning(schedule, left)
        if warning and context.is_main:
            logger.warning("%s", warning)
            log.write(event="warning", step=step, message=warning)

    bar = tqdm(
        total=cfg.steps,
        initial=step,
        unit="step",
        disable=None if cfg.progress and context.is_main else True,
        dynamic_ncols=True,
    )
    window: list[float] = []
    tic, skipped, lr, stopped, teacher_reported = time.perf_counter(), 0, cfg.lr, None, False
    try:
        if budget.limited and budget.eval_s is None and step < cfg.steps:
            evaluate_now()  # measures what an evaluation costs (and scores the starting weights)
        check_peak(steps_left())
        while (stopped := stop_reason()) is None:
            started = time.perf_counter()
            batch = next(batches).to(device)
            lr, progress = schedule.rate(plateau.scale), schedule.progress
            for group in optimizer.param_groups:
                group["lr"] = lr

            loss, grad_norm, applied = train_step(model, teacher, batch, optimizer, cfg, forward)
            if applied and ema is not None:
                ema.update()
            if not applied:  # all ranks see the same reduced gradients, so all skip together
                skipped += 1
                logger.warning("step %d: non-finite loss or gradient (%s, %s); update skipped", step, loss, grad_norm)
            step += 1
            seen["audio_seconds"] += step_audio
            budget.observe_step(time.perf_counter() - started)
            left = steps_left()
            schedule.advance(left)
            check_peak(left)
            window.append(loss)
            bar.update(1)

            if step % cfg.log_every == 0 or step == cfg.steps:
                seconds = time.perf_counter() - tic
                rate = len(window) * cfg.batch_size * context.world_size / max(seconds, 1e-9)
                taught = teacher.take_window() if teacher is not None else {}
                log.write(
                    step=step,
                    loss=sum(window) / len(window),
                    **taught,  # distill_loss, teacher_s: the teacher's share of step_s
                    lr=lr,
                    progress=round(progress, 5),
                    grad_norm=grad_norm,
                    examples_per_s=rate,
                    step_s=round(seconds / len(window), 4),
                    skipped=skipped,
                    **counters(),
                )
                if taught and not teacher_reported:
                    teacher_reported = True
                    logger.info(
                        "teacher %s: %.3f s of %.3f s per step", cfg.teacher, taught["teacher_s"], seconds / len(window)
                    )
                shown = {"loss": f"{sum(window) / len(window):.2f}", "lr": f"{lr:.2e}"}
                bar.set_postfix(shown | ({"teacher": f"{taught['teacher_s']:.2f}s"} if taught else {}))
                window, tic = [], time.perf_counter()
            if signals and not context.distributed:  # stop at once: no evaluation first
                continue
            due = eval_due(step)
            if cfg.eval_minutes > 0:  # the ranks' clocks may disagree: all evaluate or none
                due = distributed.all_sum([float(due)], context)[0] > 0
            if due:
                evaluate_now()
            if context.is_main and step % cfg.checkpoint_every == 0:
                save_last()
    except KeyboardInterrupt:  # only where no handler could be installed (not the main thread)
        if context.is_main:
            save_last()
            logger.warning("interrupted: saved %s at step %d", last, step)
        raise
    finally:
        bar.close()
        del batches  # shuts the data workers down
    summary: dict[str, Any] = {
        "step": step,
        "stopped": stopped,
        "best_val_loss": plateau.best if math.isfinite(plateau.best) else None,
        "skipped": skipped,
    }
    if teacher is not None and teacher.total_steps:
        summary["teacher_s_per_step"] = round(teacher.total_seconds / teacher.total_steps, 4)
    if stopped not in ("steps", "time_budget"):  # a signal: save and leave (resume finishes the run)
        if context.is_main:
            save_last()
            logger.warning("%s: saved %s at step %d", stopped, last, step)
        log.write(event="stopped", signal=stopped, step=step, **counters())
        return summary

    # the end: the checkpoint first (safe from here on), then the final evaluation and averaging
    schedule.finished = True
    if context.is_main:
        save_last()
        if ema is not None:
            write_ema(raw, ema, out / "ema.safetensors", step)
    if evaluated_at != step and not signals:
        evaluate_now()
        if context.is_main:
            save_last()
    if context.distributed:
        summary["ranks_in_sync"] = distributed.in_sync(raw, context)
    if context.is_main and best.entries and not signals:
        summary.update(average_best(raw, best, valid, context, cfg, out))
    if context.is_main and not signals and model_config_dict(raw) is not None:
        summary.update(pick_on_valid(summary, last_val_loss if ema is not None and evaluated_at == step else None))
    if signals:  # the end work was cut short; last.pt (written first) is safe
        summary["stopped"] = signals.name
    summary["best_val_loss"] = plateau.best if math.isfinite(plateau.best) else None
    summary.update(counters())
    log.write(event="end", **summary)
    return summary


def pick_on_valid(summary: dict[str, Any], ema_val_loss: float | None) -> dict[str, Any]:
    """``picked``: the weights file to ship, ``averaged.safetensors`` or ``ema.safetensors`` (the final
    EMA, scored ``ema_val_loss``), whichever has the lower loss on the ``valid`` split."""
    candidates = {"averaged.safetensors": summary.get("averaged_val_loss"), "ema.safetensors": ema_val_loss}
    scored = {name: loss for name, loss in candidates.items() if loss is not None and math.isfinite(loss)}
    if not scored:
        return {}
    picked = min(scored, key=lambda name: scored[name])
    logger.info("picked on valid: %s (validation loss %.3f dB)", picked, scored[picked])
    return {"picked": picked, "picked_val_loss": scored[picked]}


def write_ema(model: torch.nn.Module, ema: EMA, path: Path, step: int) -> None:
    """The EMA weights as a weights file (when the model has a config)."""
    if model_config_dict(model) is None:
        return
    with ema.applied():
        save_weights(model, path, {"step": str(step), "ema_decay": str(ema.decay)})


def average_best(
    model: torch.nn.Module,
    best: ckpt.BestKeeper,
    valid: Sequence[Batch],
    context: distributed.Context,
    cfg: TrainConfig,
    out: Path,
) -> dict[str, Any]:
    """Average the kept best snapshots (EMA weights when the EMA is on) into ``out/averaged.pt`` (+ ``.safetensors``).

    One snapshot is its own average: its scores are reused instead of evaluating it again.
    """
    snapshots = [ckpt.load_checkpoint(path) for path in best.paths()]
    states = [snapshot["model"] for snapshot in snapshots]
    averaged = ckpt.average_state_dicts(states)
    kept = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(averaged)
    if len(snapshots) == 1 and "val_tasks" in snapshots[0]:
        val_loss, per_task, si_sdri = snapshots[0]["val_loss"], snapshots[0]["val_tasks"], snapshots[0]["val_si_sdri"]
    else:
        solo = replace(context, rank=0, world_size=1)  # only rank 0 gets here: no collectives
        val_loss, per_task, si_sdri = validate(model, valid, solo, cfg.precision)  # type: ignore[misc]
    config = model_config_dict(model)
    steps = [step for _, step, _ in best.entries]
    ckpt.save_checkpoint(
        {"model": ckpt.model_state(model), "model_config": config, "steps": steps, "val_loss": val_loss},
        out / "averaged.pt",
    )
    if config is not None:
        meta = {
            "steps": json.dumps(steps),
            "val_loss": f"{val_loss:.4f}",
            "val_tasks": json.dumps(per_task),
            "val_si_sdri": json.dumps(si_sdri),
            "ema": str(cfg.ema_decay > 0),
        }
        save_weights(model, out / "averaged.safetensors", meta)
    model.load_state_dict(kept)
    logger.info("averaged %d checkpoints (steps %s): validation loss %.3f dB", len(states), steps, val_loss)
    return {
        "averaged_steps": steps,
        "averaged_val_loss": val_loss,
        "averaged_val_tasks": per_task,
        "averaged_val_si_sdri": si_sdri,
    }
