"""DDP: two CPU processes (gloo) launched by torchrun run `fastuss train` for a few steps."""

import json
import os
import subprocess
import sys

import pytest

from fastuss_fx.train.checkpoint import load_checkpoint


@pytest.mark.parametrize("compile_backend", ["", "eager"])
def test_two_process_gloo_training(corpus, tmp_path, compile_backend):
    """Eager, and compiled (DDP then wraps the compiled forward): the ranks see different mixtures,
    so they end with the same weights only if their gradients were averaged."""
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "fastuss_fx.cli",
        "train",
        "--data",
        str(corpus),
        "--variant",
        "tiny",
        "--out",
        str(out),
        "--steps",
        "3",
        "--batch-size",
        "1",
        "--eval-every",
        "3",
        "--log-every",
        "1",
        "--valid-examples",
        "2",
        "--valid-seconds",
        "0.25",
        "--valid-tasks",
        "denoise",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
        "--mix-chunk-seconds",
        "0.25",
        "--mix-max-sources",
        "2",
        "--compile",
        compile_backend,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 3
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert log[0]["world_size"] == 2
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
    assert all(r["examples_per_s"] > 0 for r in log if "loss" in r)
    evaluations = [r for r in log if "val_loss" in r]
    assert evaluations and all(r["ranks_in_sync"] is True for r in evaluations)
    assert log[-1]["event"] == "end" and log[-1]["ranks_in_sync"] is True
