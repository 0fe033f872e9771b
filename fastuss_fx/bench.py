"""Benchmarks of the onnxruntime paths: real-time factor, per-hop compute, share of matmul peak.

Prints figures; asserts nothing (timings on shared machines are noisy, so targets are read,
not tested). The matmul peak is measured in the same run with the same engine
(onnxruntime, float32), so "fraction of peak" compares like with like.
"""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from fastuss_fx.cpus import available_cpus

logger = logging.getLogger(__name__)

PROMPTS = ("speech", "musicbg")


@dataclass
class BenchRow:
    """One measured path of one variant."""

    name: str
    path: str  # "offline" | "realtime"
    threads: int
    rtf: float  # processing seconds per audio second
    latency_ms: float  # algorithmic
    gflops: float  # achieved (2 x MACs / s)
    peak_gflops: float  # matmul peak with the same thread count
    hop_ms_p50: float | None = None
    hop_ms_p99: float | None = None
    hop_duration_ms: float | None = None
    precision: str = "float32"  # "int8": the realtime step graph with int8 matrix products
    engine: str = "onnx"  # "torch": the torch model itself (``fastuss bench --model``)
    prompts: int = 2

    @property
    def peak_fraction(self) -> float:
        return self.gflops / self.peak_gflops

    def as_dict(self) -> dict:
        return {**asdict(self), "peak_fraction": round(self.peak_fraction, 4)}


def matmul_peak_gflops(threads: int, size: int = 1024, seconds: float = 1.0) -> float:
    """float32 matmul throughput of onnxruntime on this CPU with ``threads`` threads."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = min(model.ir_version, 10)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    feed = {"a": a, "b": a}
    session.run(None, feed)  # warm-up
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, feed)
        runs += 1
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e9


def bench_offline(
    variant: str,
    threads: int,
    audio_seconds: float,
    peak: float,
    engine: str = "onnx",
    prompts: tuple[str, ...] = PROMPTS,
) -> BenchRow:
    """The offline graph (or, ``engine="torch"``, the torch model) over ``audio_seconds`` of noise
    in the processor's segments (the variant's reference length, 6 s for ours and TUSS)."""
    from fastuss_fx.config import load_variant
    from fastuss_fx.engines import load_onnx_backend, load_torch_backend
    from fastuss_fx.model.macs import count_macs

    config = load_variant(variant)
    if engine == "torch":
        import torch

        torch.set_num_threads(threads)
        backend = load_torch_backend(variant)
    else:
        backend = load_onnx_backend(variant, threads)
    segment = round(config.reference_seconds * config.stft.sample_rate)
    n_segments = max(1, round(audio_seconds / config.reference_seconds))
    mix = (0.1 * np.random.default_rng(0).standard_normal((1, segment))).astype(np.float32)
    backend.separate(mix, prompts)  # warm-up
    start = time.perf_counter()
    for _ in range(n_segments):
        backend.separate(mix, prompts)
    elapsed = time.perf_counter() - start
    macs = count_macs(config, len(prompts), segment).total * n_segments
    return BenchRow(
        variant,
        "offline",
        threads,
        elapsed / (n_segments * config.reference_seconds),
        config.latency_ms,
        2 * macs / elapsed / 1e9,
        peak,
        engine=engine,
        prompts=len(prompts),
    )


def bench_models(names: list[str], threads: int, audio_seconds: float, prompts: tuple[str, ...]) -> list[BenchRow]:
    """Each model's offline path through onnxruntime and its torch forward, side by side, rounds
    alternating (three rounds, each row keeps its median RTF) so both see the same machine load."""
    peak = matmul_peak_gflops(threads)
    rows = []
    for name in names:
        rounds: dict[str, list[BenchRow]] = {"onnx": [], "torch": []}
        for _ in range(3):
            for engine in rounds:
                rounds[engine].append(bench_offline(name, threads, audio_seconds, peak, engine, prompts))
        rows += [sorted(measured, key=lambda r: r.rtf)[1] for measured in rounds.values()]
    return rows


def bench_realtime(
    variant: str, threads: int, audio_seconds: float, peak: float, int8: bool = True, rounds: int = 5
) -> list[BenchRow]:
    """The causal step graph, one hop per call, timing every hop: float32 and (if ``int8``) the
    int8 graph, measured in alternating rounds so that both see the same machine load."""
    from fastuss_fx.config import load_variant
    from fastuss_fx.engines import load_onnx_backend
    from fastuss_fx.model.macs import count_stream_step_macs

    config = load_variant(variant)
    backends = {"float32": load_onnx_backend(variant, threads)}
    if int8:
        backends["int8"] = load_onnx_backend(variant, threads, int8=True)
    hop = backends["float32"].step_samples
    n_hops = max(rounds, int(audio_seconds * config.stft.sample_rate) // hop)
    audio = (0.1 * np.random.default_rng(0).standard_normal((1, (n_hops + 20) * hop))).astype(np.float32)
    states: dict[str, list[np.ndarray]] = {}
    times: dict[str, list[float]] = {}
    for name, backend in backends.items():
        states[name], times[name] = backend.initial_state(1, PROMPTS), []
        for i in range(20):  # warm-up
            _, states[name] = backend.stream(audio[:, i * hop : (i + 1) * hop], states[name])
    bounds = np.linspace(0, n_hops, rounds + 1).astype(int)
    for first, last in itertools.pairwise(bounds):
        for name, backend in backends.items():
            for i in range(first, last):
                chunk = audio[:, (i + 20) * hop : (i + 21) * hop]
                start = time.perf_counter()
                _, states[name] = backend.stream(chunk, states[name])
                times[name].append(time.perf_counter() - start)
    hop_s = hop / config.stft.sample_rate
    macs = count_stream_step_macs(config, len(PROMPTS), backends["float32"].entry["hops_per_step"]).total
    rows = []
    for name, measured in times.items():
        t = np.asarray(measured)
        rows.append(
            BenchRow(
                variant,
                "realtime",
                threads,
                float(t.sum() / (len(t) * hop_s)),
                config.latency_ms,
                2 * macs * len(t) / t.sum() / 1e9,
                peak,
                hop_ms_p50=float(np.percentile(t, 50) * 1e3),
                hop_ms_p99=float(np.percentile(t, 99) * 1e3),
                hop_duration_ms=hop_s * 1e3,
                precision=name,
            )
        )
    return rows


def peak_rss_offline_mb(variant: str, minutes: float, channels: int = 2) -> float:
    """Peak RSS (MB) of a fresh process running ``FasTUSS.process`` on ``minutes`` of audio."""
    code = (
        "import numpy as np, resource, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from fastuss_fx import FasTUSS\n"
        f"fx = FasTUSS(['speech', 'musicbg'], {{'speech': 0.0}}, model={variant!r}, allow_untrained=True)\n"
        f"x = (0.1 * np.random.default_rng(0).standard_normal(({channels}, int({minutes} * 60 * 48000))))"
        ".astype(np.float32)\n"
        "fx(x, 48000)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def run(
    offline: list[str], realtime: list[str], seconds: float, threads_offline: int | None = None, int8: bool = True
) -> list[BenchRow]:
    """Measure every requested path (realtime also with the int8 step graph, if ``int8``);
    peaks are measured once per thread count."""
    all_cores = threads_offline or available_cpus()
    peaks = {t: matmul_peak_gflops(t) for t in {1, all_cores}}
    rows = [bench_offline(v, all_cores, seconds, peaks[all_cores]) for v in offline]
    for variant in realtime:
        rows += bench_realtime(variant, 1, seconds, peaks[1], int8)
    return rows


def format_rows(rows: list[BenchRow]) -> str:
    head = (
        f"{'variant':<20}{'path':<10}{'engine':>7}{'weights':>8}{'threads':>8}{'RTF':>8}{'latency ms':>12}"
        f"{'hop p50 ms':>12}{'hop p99 ms':>12}{'GFLOP/s':>10}{'peak':>9}{'of peak':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        p50 = f"{r.hop_ms_p50:.2f}" if r.hop_ms_p50 is not None else "-"
        p99 = f"{r.hop_ms_p99:.2f}" if r.hop_ms_p99 is not None else "-"
        lines.append(
            f"{r.name:<20}{r.path:<10}{r.engine:>7}{'int8' if r.precision == 'int8' else 'fp32':>8}{r.threads:>8}"
            f"{r.rtf:>8.3f}"
            f"{r.latency_ms:>12.2f}{p50:>12}{p99:>12}"
            f"{r.gflops:>10.1f}{r.peak_gflops:>9.1f}{100 * r.peak_fraction:>8.1f}%"
        )
    counts = sorted({r.prompts for r in rows})
    lines.append(
        f"RTF = processing s / audio s ({'/'.join(map(str, counts))} prompts); "
        "peak = onnxruntime float32 matmul, same thread count, same run"
    )
    lines.append("(int8 rows: float32-equivalent GFLOP/s against the same float32 peak).")
    return "\n".join(lines)


__all__ = ["BenchRow", "bench_models", "matmul_peak_gflops", "run", "format_rows", "peak_rss_offline_mb"]
