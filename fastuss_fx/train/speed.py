"""Training throughput on the reference workload: audio-seconds per second and share of matmul peak.

The workload is one ``train_step`` of the training loop (forward, PIT loss, backward, gradient
clipping, AdamW) on a batch of crops with prompts ``speech, sfx, musicbg``; with ``processes > 1``
the batch and the threads are split among that many data-parallel processes (DDP over gloo, as
``torchrun`` runs the trainer), which average their gradients every step. Achieved GFLOP/s
count the model's useful products (``model.macs``: forward MACs, x3 for forward + backward,
x2 flops per MAC) without the (i)STFT, which training runs as FFTs; the peak is a torch matmul
with the same threads and precision, measured in the same run. ``compile`` times the compiled
training forward, as ``fastuss train --compile`` runs it. ``run_train(reference=...)`` also
times another trainer, rounds alternating with the others, and gives every row its ratio to it:
``benchmarks/train_reference.py`` passes the trainer of an older commit (this module needs no
git). Prints figures; asserts nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

PROMPTS = ("speech", "sfx", "musicbg")

logger = logging.getLogger(__name__)


@dataclass
class TrainBenchRow:
    """Training speed of one variant at one precision."""

    name: str
    threads: int
    precision: str  # "fp32" | "bf16" (autocast)
    batch_size: int
    crop_seconds: float
    s_per_step: float
    gflops: float  # achieved: useful flops of a step / its time
    peak_gflops: float  # torch matmul, same threads and precision
    path: str = "train"
    processes: int = 1  # data-parallel processes sharing ``threads`` and ``batch_size``
    compile: str = ""  # torch.compile backend of the training forward; empty = eager
    trainer: str = "checkout"  # or the reference commit whose trainer was timed
    vs_reference: float | None = None  # audio-s/s over the reference trainer's, same variant and run

    @property
    def audio_seconds_per_second(self) -> float:
        return self.batch_size * self.crop_seconds / self.s_per_step

    @property
    def peak_fraction(self) -> float:
        return self.gflops / self.peak_gflops

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "audio_seconds_per_second": self.audio_seconds_per_second,
            "peak_fraction": self.peak_fraction,
        }


def torch_matmul_peak_gflops(threads: int, precision: str = "fp32", size: int = 1024, seconds: float = 1.0) -> float:
    """Square matmul throughput of torch on this CPU (``bf16``: bfloat16 operands)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(size, size).to(dtype)
        a @ a  # warm-up
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ a
            runs += 1
        return 2 * size**3 * runs / (time.perf_counter() - start) / 1e9
    finally:
        torch.set_num_threads(previous)


def step_flops(config, batch_size: int, n_samples: int) -> float:
    """Useful flops of one training step: 3 x forward MACs x 2, without the (i)STFT."""
    from fastuss_fx.model.macs import count_macs

    modules = count_macs(config, len(PROMPTS), n_samples).modules
    macs = sum(v for k, v in modules.items() if k not in ("stft", "istft"))
    return 6.0 * macs * batch_size


def bench_train(
    variant: str,
    threads: int = 2,
    precision: str = "fp32",
    steps: int = 3,
    batch_size: int = 4,
    crop_seconds: float = 2.0,
    peak: float | None = None,
    seed: int = 0,
    processes: int = 1,
    compile: str = "",
    seconds: float | None = None,
) -> TrainBenchRow:
    """Time ``steps`` training steps (after untimed warm-up steps) of ``variant`` on noise mixtures.

    ``processes > 1``: data-parallel processes of ``threads // processes`` threads, each
    stepping ``batch_size // processes`` mixtures; both must divide evenly. ``compile``: a
    ``torch.compile`` backend for the training forward (as ``fastuss train --compile``).
    ``seconds``: a step time measured elsewhere (the row is only filled in).
    """
    from fastuss_fx.config import load_variant

    if processes < 1 or threads % processes or batch_size % processes:
        raise ValueError(f"{processes} processes must split {threads} threads and a batch of {batch_size} evenly")
    share = (variant, threads // processes, precision, steps, batch_size // processes, crop_seconds, seed, compile)
    if seconds is None:
        seconds = step_seconds(*share) if processes == 1 else _data_parallel_step_seconds(processes, share)
    config = load_variant(variant)
    if peak is None:
        peak = torch_matmul_peak_gflops(threads, precision)
    n = round(crop_seconds * config.stft.sample_rate)
    return TrainBenchRow(
        variant,
        threads,
        precision,
        batch_size,
        crop_seconds,
        seconds,
        step_flops(config, batch_size, n) / seconds / 1e9,
        peak,
        processes=processes,
        compile=compile,
    )


def step_seconds(
    variant: str,
    threads: int,
    precision: str,
    steps: int,
    batch_size: int,
    crop_seconds: float,
    seed: int,
    compile: str = "",
    *,
    data_parallel: bool = False,
) -> float:
    """Seconds per training step in this process (``data_parallel``: the model in DDP, in the
    process group this process has joined), set up as the trainer sets it up.

    Eager and in one process this only uses the API the trainer had at commit 0ed1e96, so it
    also times that trainer (``benchmarks/reference_commit.py`` runs it in that commit's package).
    """
    from fastuss_fx.config import load_variant
    from fastuss_fx.data.dataset import Batch
    from fastuss_fx.model import TUSS
    from fastuss_fx.train.config import TrainConfig
    from fastuss_fx.train.loop import make_optimizer, train_step

    config = load_variant(variant)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model: torch.nn.Module = TUSS(config).train()
            n = round(crop_seconds * config.stft.sample_rate)
            targets = 0.1 * torch.randn(batch_size, len(PROMPTS), n)
        batch = Batch(targets.sum(1), targets, [list(PROMPTS)] * batch_size)
        cfg = TrainConfig(variant=variant, batch_size=batch_size, precision=precision, threads=threads)
        if compile:  # not a field of the 0ed1e96 config
            cfg = replace(cfg, compile=compile)
        optimizer = make_optimizer(model, cfg)
        extra: tuple = ()  # the 0ed1e96 train_step has no ``forward`` argument
        if compile or data_parallel:
            from fastuss_fx.train.loop import step_callables

            model, forward = step_callables(model, cfg, torch.device("cpu"), data_parallel)
            extra = (forward,) if forward is not None else ()

        def step() -> None:
            train_step(model, None, batch, optimizer, cfg, *extra)

        for _ in range(2 if compile else 1):  # warm-up: allocations; compiling
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - start) / steps
    finally:
        torch.set_num_threads(previous)


def _data_parallel_step_seconds(processes: int, share: tuple) -> float:
    """``step_seconds`` of rank 0 when ``processes`` ranks step together (they wait for each other
    in every gradient average, so rank 0's time is the step time of all)."""
    import tempfile

    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    with tempfile.TemporaryDirectory(prefix="fastuss-bench-") as tmp:
        mp.start_processes(
            _rank_step_seconds,
            args=(processes, f"file://{tmp}/rendezvous", results, share),
            nprocs=processes,
            start_method="spawn",
        )
    return float(results.get())


def _rank_step_seconds(rank: int, processes: int, rendezvous: str, results: Any, share: tuple) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=processes)
    try:
        seconds = step_seconds(*share, data_parallel=True)
        if rank == 0:
            results.put(seconds)
    finally:
        dist.destroy_process_group()


def run_train(
    variants: list[str],
    threads: int = 2,
    precisions: tuple[str, ...] = ("fp32",),
    steps: int = 3,
    batch_size: int = 4,
    crop_seconds: float = 2.0,
    processes: tuple[int, ...] = (1,),
    rounds: int = 1,
    compile: str = "",
    reference: tuple[str, Callable[[str], float]] | None = None,
) -> list[TrainBenchRow]:
    """Rows for every variant, precision and process count; the peak is measured once per precision.

    ``reference``: ``(name, seconds)``, another trainer and the seconds of one of its steps of a
    variant (fp32, eager, one process, the same threads and workload, e.g. an older commit's);
    its rows are labelled ``name`` and every row gets its ratio to it (``vs_reference``). With
    ``rounds > 1`` every configuration is timed once per round, the rounds alternating and every
    other one reversed (so a machine that slows down slows all rows alike), and each row keeps its
    median step time.
    """
    import statistics

    peaks = {p: torch_matmul_peak_gflops(threads, p) for p in {*precisions, *(("fp32",) if reference else ())}}
    configs = [(v, p, k, "") for v in variants for p in precisions for k in processes]
    if reference:
        configs = [(v, "fp32", 1, reference[0]) for v in variants] + configs
    timed: dict[tuple[str, str, int, str], list[TrainBenchRow]] = {c: [] for c in configs}
    for round_ in range(max(1, rounds)):
        for v, p, k, ref in configs if round_ % 2 == 0 else configs[::-1]:
            if reference and ref:
                seconds = reference[1](v)
                row = bench_train(v, threads, p, steps, batch_size, crop_seconds, peaks[p], seconds=seconds)
                row.trainer = ref
            else:
                row = bench_train(v, threads, p, steps, batch_size, crop_seconds, peaks[p], 0, k, compile)
            timed[v, p, k, ref].append(row)
            logger.info(
                "round %d: %s, %s trainer, %s, %d process(es): %.2f s/step",
                round_ + 1,
                v,
                row.trainer,
                p,
                k,
                row.s_per_step,
            )
    rows = []
    for rounds_of_config in timed.values():
        median = statistics.median(r.s_per_step for r in rounds_of_config)
        rows.append(min(rounds_of_config, key=lambda r: abs(r.s_per_step - median)))
    base = {r.name: r.audio_seconds_per_second for r in rows if r.trainer != "checkout"}
    for r in rows:
        if r.name in base:
            r.vs_reference = r.audio_seconds_per_second / base[r.name]
    return rows


def format_train_rows(rows: list[TrainBenchRow]) -> str:
    head = (
        f"{'variant':<16}{'trainer':<15}{'precision':>10}{'compile':>10}{'threads':>8}{'procs':>6}{'batch':>7}"
        f"{'s/step':>8}{'audio-s/s':>11}{'GFLOP/s':>9}{'peak':>8}{'of peak':>9}{'vs ref':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r.vs_reference:.2f}x" if r.vs_reference is not None else ""
        lines.append(
            f"{r.name:<16}{r.trainer:<15}{r.precision:>10}{r.compile or '-':>10}{r.threads:>8}{r.processes:>6}"
            f"{f'{r.batch_size}x{r.crop_seconds:g}s':>7}{r.s_per_step:>8.2f}{r.audio_seconds_per_second:>11.2f}"
            f"{r.gflops:>9.1f}{r.peak_gflops:>8.1f}{100 * r.peak_fraction:>8.1f}%{ratio:>8}"
        )
    lines.append(
        "one step = forward + PIT loss + backward + clip + AdamW, prompts speech/sfx/musicbg; GFLOP/s = 6 x model MACs"
    )
    lines.append("(without the (i)STFT) / step time; peak = torch matmul, same threads and precision, same run;")
    lines.append("procs > 1: data-parallel processes (DDP, gloo) sharing the threads and the batch;")
    lines.append("vs ref: audio-s/s over the reference trainer's (same variant, rounds alternating in this run).")
    return "\n".join(lines)


__all__ = [
    "TrainBenchRow",
    "bench_train",
    "run_train",
    "step_seconds",
    "format_train_rows",
    "torch_matmul_peak_gflops",
    "step_flops",
]
