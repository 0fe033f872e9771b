"""The benchmark runs and reports the figures it promises (values are not asserted: timing is noisy)."""

import json

from fastuss_fx.bench import matmul_peak_gflops
from fastuss_fx.cli import main


def test_matmul_peak_is_measured():
    assert matmul_peak_gflops(1, size=128, seconds=0.05) > 0


def test_bench_json_rows(capsys):
    args = ["bench", "--offline", "tiny", "--realtime", "tiny-causal", "--seconds", "0.3", "--threads", "1", "--json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["path"], r["precision"]) for r in rows] == [
        ("tiny", "offline", "float32"),
        ("tiny-causal", "realtime", "float32"),
        ("tiny-causal", "realtime", "int8"),
    ]
    for row in rows:
        assert {"name", "path", "threads", "rtf", "latency_ms", "gflops", "peak_gflops", "peak_fraction"} <= set(row)
        assert row["rtf"] > 0 and row["gflops"] > 0 and row["peak_gflops"] > 0
    for realtime in rows[1:]:
        assert realtime["threads"] == 1 and realtime["hop_ms_p50"] <= realtime["hop_ms_p99"]


def test_bench_table(capsys):
    assert main(["bench", "--offline", "tiny", "--realtime", "--seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "of peak" in out


def test_bench_train_json_rows(capsys):
    args = [
        "bench",
        "--train",
        "tiny-causal",
        "--train-precision",
        "fp32",
        "bf16",
        "--train-steps",
        "1",
        "--train-batch",
        "1",
        "--train-seconds",
        "0.2",
        "--threads",
        "1",
        "--json",
    ]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["path"], r["precision"], r["processes"]) for r in rows] == [
        ("tiny-causal", "train", "fp32", 1),
        ("tiny-causal", "train", "bf16", 1),
    ]
    for row in rows:
        assert {
            "name",
            "path",
            "threads",
            "precision",
            "audio_seconds_per_second",
            "gflops",
            "peak_gflops",
            "peak_fraction",
        } <= set(row)
        assert (
            row["threads"] == 1 and row["audio_seconds_per_second"] > 0 and row["gflops"] > 0 and row["peak_gflops"] > 0
        )
        assert abs(row["audio_seconds_per_second"] - 0.2 / row["s_per_step"]) < 1e-3 * row["audio_seconds_per_second"]
        assert abs(row["peak_fraction"] - row["gflops"] / row["peak_gflops"]) < 1e-9


def test_train_step_flops_leave_out_the_fft_transforms():
    from fastuss_fx.config import load_variant
    from fastuss_fx.model.macs import count_macs
    from fastuss_fx.train.speed import step_flops

    config = load_variant("tiny-causal")
    modules = count_macs(config, 3, 4800).modules
    assert step_flops(config, 2, 4800) == 6 * 2 * (sum(modules.values()) - modules["stft"] - modules["istft"])


def test_bench_train_data_parallel_rows(capsys):
    """Two gloo processes of one thread each, batch split between them, beside one process of two
    threads; two alternating rounds."""
    args = ["bench", "--train", "tiny-causal", "--train-steps", "1", "--train-batch", "2", "--train-seconds", "0.2"]
    args += ["--threads", "2", "--train-processes", "1", "2", "--train-rounds", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "procs" in out and "data-parallel" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("tiny-causal")]
    assert [(line[1], line[4], line[5], line[6]) for line in lines] == [
        ("checkout", "2", "1", "2x0.2s"),
        ("checkout", "2", "2", "2x0.2s"),
    ]
    assert main(args[:-5] + ["--train-processes", "3"]) == 2
    assert "3 processes must split 2 threads and a batch of 2 evenly" in capsys.readouterr().err
