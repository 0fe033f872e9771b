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
        ("tiny", "offline", "float32"), ("tiny-causal", "realtime", "float32"), ("tiny-causal", "realtime", "int8")
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
