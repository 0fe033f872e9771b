"""DDP: two CPU processes (gloo) launched by torchrun run `fastuss train` for a few steps."""

import json
import os
import subprocess
import sys

import pytest

from fastuss_fx.train.checkpoint import load_checkpoint


def torchrun_train(corpus, out, *options: str) -> list[dict]:
    """``fastuss train`` of ``tiny`` in two gloo processes; returns the lines of ``metrics.jsonl``."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += ["-m", "fastuss_fx.cli", "train", "--data", str(corpus), "--variant", "tiny", "--out", str(out)]
    command += ["--batch-size", "1", "--log-every", "1", "--valid-examples", "2", "--valid-seconds", "0.25"]
    command += ["--valid-tasks", "denoise", "--workers", "0", "--threads", "1", "--no-progress"]
    command += ["--mix-chunk-seconds", "0.25", "--mix-max-sources", "2", *options]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("compile_backend", ["", "eager"])
def test_two_process_gloo_training(corpus, tmp_path, compile_backend):
    """Eager, and compiled (DDP then wraps the compiled forward): the ranks see different mixtures,
    so they end with the same weights only if their gradients were averaged."""
    out = tmp_path / "ddp"
    log = torchrun_train(corpus, out, "--steps", "3", "--eval-every", "3", "--compile", compile_backend)
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 3
    assert log[0]["world_size"] == 2
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
    assert all(r["examples_per_s"] > 0 for r in log if "loss" in r)
    evaluations = [r for r in log if "val_loss" in r]
    assert evaluations and all(r["ranks_in_sync"] is True for r in evaluations)
    assert log[-1]["event"] == "end" and log[-1]["ranks_in_sync"] is True


def test_time_budgeted_ranks_share_one_clock(corpus, tmp_path):
    """With a time budget the learning rate follows the wall time spent; the ranks started at
    different moments, so each rank's own clock would give it another rate (and other weights)."""
    log = torchrun_train(corpus, tmp_path / "ddp", "--time-budget", "0.35", "--eval-every", "100000")
    steps = [r for r in log if "loss" in r]
    assert len({r["lr"] for r in steps}) > 2  # the rate moved with the clock
    assert log[-1]["event"] == "end" and log[-1]["stopped"] == "time_budget"
    assert all(r["ranks_in_sync"] is True for r in log if "val_loss" in r)
    assert log[-1]["ranks_in_sync"] is True
