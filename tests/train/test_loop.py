"""Training on the tiny variant and a synthetic corpus: learning, exact resume, init, distillation,
time budget, signals."""

import json
import os
import signal
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from fakes import non_causal_twin

from fastuss_fx.config import load_variant
from fastuss_fx.data.dataset import validation_batches
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import MixConfig
from fastuss_fx.data.tasks import get_tasks
from fastuss_fx.model import TUSS
from fastuss_fx.pretrained import shipped_weights_path
from fastuss_fx.train.checkpoint import load_checkpoint
from fastuss_fx.train.config import TrainConfig
from fastuss_fx.train.distributed import Context
from fastuss_fx.train.loop import make_optimizer, prepare_model, train, train_step, validate
from fastuss_fx.train.stop import TimeBudget
from fastuss_fx.weights import load_weights, save_weights

MIX = MixConfig(
    chunk_seconds=0.5, max_sources=2, reverb_probability=0.0, lowpass_probability=0.0, mix_lowpass_probability=0.0
)


def tiny_config(corpus, out, **changes):
    config = TrainConfig(
        data=str(corpus),
        variant="tiny",
        out=str(out),
        steps=4,
        batch_size=2,
        lr=3e-3,
        warmup_fraction=0.25,
        log_every=2,
        eval_every=2,
        checkpoint_every=2,
        keep_best=2,
        valid_examples=2,
        valid_seconds=0.5,
        valid_tasks=("denoise",),
        valid_batch_size=2,
        workers=0,
        progress=False,
        mix=MIX,
    )
    return replace(config, **changes)


def fresh_model(seed=0):
    torch.manual_seed(seed)
    return TUSS(load_variant("tiny"))


def test_training_lowers_the_loss(corpus, tmp_path):
    config = tiny_config(
        corpus,
        tmp_path / "run",
        steps=36,
        eval_every=36,
        checkpoint_every=36,
        log_every=6,
        valid_tasks=("denoise", "dialog"),
    )
    store = ClipStore.from_manifest(corpus)
    valid = validation_batches(
        store, get_tasks(list(config.valid_tasks)), replace(MIX, chunk_seconds=0.5), 2, batch_size=2
    )
    model = fresh_model()
    before, _, _ = validate(model, valid, Context(0, 1, torch.device("cpu")), "fp32")
    summary = train(config, model=model)
    after, _, scores = validate(model, valid, Context(0, 1, torch.device("cpu")), "fp32")
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert summary["step"] == 36 and len(losses) == 6
    assert after < before - 1.0, (before, after)
    assert sum(losses[-2:]) / 2 < losses[0] - 1.0, losses
    assert set(scores) == {"denoise", "dialog"} and all(isinstance(v, float) for v in scores.values())
    assert summary["stopped"] == "steps" and summary["audio_seconds"] == pytest.approx(36 * 2 * 0.5)
    assert (tmp_path / "run" / "averaged.safetensors").is_file() and (tmp_path / "run" / "ema.safetensors").is_file()
    evals = [r for r in log if "val_loss" in r]
    assert evals[-1]["step"] == 36 and evals[-1]["audio_hours"] == pytest.approx(36 / 3600) and evals[-1]["wall_s"] > 0
    assert set(evals[-1]["val_si_sdri"]) == {"denoise", "dialog"}
    # the weights to ship are picked on valid: the averaged best snapshots or the final EMA (scored at step 36)
    assert summary["picked_val_loss"] == min(summary["averaged_val_loss"], evals[-1]["val_loss"])
    assert summary["picked"] == (
        "averaged.safetensors" if summary["averaged_val_loss"] <= evals[-1]["val_loss"] else "ema.safetensors"
    )


def signal_at_step(model, at, signum=signal.SIGTERM):
    """Make ``model`` send ``signum`` to this process during its training forward number ``at``."""
    calls = []

    def hook(module, args):
        if module.training:
            calls.append(1)
            if len(calls) == at:
                os.kill(os.getpid(), signum)

    model.register_forward_pre_hook(hook)
    return model


def assert_same_state(a, b):
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, value in a["optimizer"]["state"].items():
        assert all(torch.equal(v, b["optimizer"]["state"][key][k]) for k, v in value.items())
    for key, value in a["ema"]["shadow"].items():
        assert torch.equal(value, b["ema"]["shadow"][key]), key
    assert a["ema"]["updates"] == b["ema"]["updates"]


def test_resume_after_a_signal_equals_uninterrupted_training(corpus, tmp_path):
    whole = tiny_config(
        corpus, tmp_path / "whole", steps=6, eval_every=3, checkpoint_every=3, ema_decay=0.9, schedule="cosine"
    )
    train(whole, model=fresh_model())
    split = replace(whole, out=str(tmp_path / "split"))
    handler = signal.getsignal(signal.SIGTERM)
    summary = train(split, model=signal_at_step(fresh_model(), at=3))  # SIGTERM during step 3
    assert summary["stopped"] == "SIGTERM" and summary["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is handler  # the old handler is back
    log = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "stopped" and log[-1]["signal"] == "SIGTERM"
    assert not any("val_loss" in r for r in log)  # stopped at once, no evaluation first
    state = load_checkpoint(tmp_path / "split" / "last.pt")
    assert state["step"] == 3 and not state["schedule"]["finished"]
    train(split, model=fresh_model(seed=99))  # the checkpoint overrides the fresh weights
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "split" / "last.pt")
    assert a["step"] == b["step"] == 6
    assert_same_state(a, b)
    assert a["schedule"] == b["schedule"] and b["schedule"]["finished"]
    assert a["seen"]["audio_seconds"] == b["seen"]["audio_seconds"] == 6 * 2 * 0.5
    # validation scored the EMA weights, and best/ holds them (not the raw weights)
    best = load_checkpoint(tmp_path / "whole" / "best" / "step_0000006.pt")
    assert best["ema"] is True
    assert all(torch.equal(best["model"][k], v) for k, v in a["ema"]["shadow"].items())
    assert any(not torch.equal(a["model"][k], v) for k, v in a["ema"]["shadow"].items() if v.is_floating_point())


def test_resume_with_other_settings_says_what_changed_and_refuses_another_model(corpus, tmp_path, caplog):
    run = tmp_path / "run"
    first = tiny_config(corpus, run, steps=2, warmup_fraction=0.6, keep_best=2, eval_every=1, ema_decay=0.0)
    train(first)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    warning = next(r["message"] for r in log if r.get("event") == "warning")  # 2 steps, 60 % of them warm-up
    assert "will not reach its peak learning rate" in warning and "83 % of lr 0.003" in warning
    assert len(list((run / "best").iterdir())) == 2
    with caplog.at_level("INFO", logger="fastuss_fx.train.loop"):
        train(replace(first, steps=3, lr=1e-3, weight_decay=0.5, keep_best=1, mix=replace(MIX, snr_db=(0.0, 5.0))))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "other settings" in r.getMessage()]
    assert (
        len(warned) == 1 and "lr 0.003 -> 0.001" in warned[0] and "mix.snr_db [-5.0, 25.0] -> [0.0, 5.0]" in warned[0]
    )
    assert "steps" not in warned[0].replace("keep_best", "")  # session settings are logged at info level
    assert any("other session settings: steps 2 -> 3" in r.getMessage() for r in caplog.records)
    resume = next(
        r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("event") == "resume"
    )
    assert resume["changed"]["weight_decay"] == [0.01, 0.5]
    # the new settings are used, not the saved ones
    state = load_checkpoint(run / "last.pt")
    assert [g["weight_decay"] for g in state["optimizer"]["param_groups"]] == [0.5, 0.0]
    assert len(list((run / "best").iterdir())) == 1 and len(state["best"]["entries"]) == 1
    with pytest.raises(ValueError, match=r"variant cannot change when resuming: .*'tiny' model, --variant tiny-causal"):
        train(replace(first, steps=4, variant="tiny-causal"))
    with pytest.raises(ValueError, match=r"mix.sample_rate cannot change when resuming \(48000 saved, 24000 given\)"):
        train(replace(first, steps=4, mix=replace(MIX, sample_rate=24000)))
    assert load_checkpoint(run / "last.pt")["step"] == 3


def test_training_data_is_required():
    with pytest.raises(ValueError, match="no training data: pass --data CORPUS"):
        train(TrainConfig())


class VirtualBudget(TimeBudget):
    """A time budget on a virtual clock: every step costs 10 s, every evaluation 20 s, every save 1 s
    (so the test does not depend on how fast this machine is)."""

    COSTS = {"step": 10.0, "eval": 20.0, "save": 1.0}

    def __init__(self, minutes):
        self.now = 0.0
        super().__init__(minutes, clock=lambda: self.now)

    def observe_step(self, seconds):
        self.now += self.COSTS["step"]
        super().observe_step(self.COSTS["step"])

    def observe_eval(self, seconds):
        self.now += self.COSTS["eval"]
        super().observe_eval(self.COSTS["eval"])

    def observe_save(self, seconds):
        self.now += self.COSTS["save"]
        super().observe_save(self.COSTS["save"])


def test_time_budget_stops_early_and_writes_everything(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr("fastuss_fx.train.loop.TimeBudget", VirtualBudget)
    config = tiny_config(
        corpus, tmp_path / "run", steps=100_000, eval_every=1000, checkpoint_every=1000, log_every=1, time_budget=2.0
    )
    summary = train(config, model=fresh_model())
    # 20 s evaluation at the start; reserve 1.5 * (2 * 20 + 5 * 1) + 1.2 = 68.7 s; 10 s steps while they fit: 3
    assert summary["stopped"] == "time_budget" and summary["step"] == 3 and summary["best_val_loss"] is not None
    assert (
        summary["wall_s"] + VirtualBudget.COSTS["eval"] <= 120
    )  # the averaged weights' evaluation is not timed by the loop
    run = tmp_path / "run"
    for name in ("last.pt", "averaged.pt", "averaged.safetensors", "ema.safetensors", "metrics.jsonl"):
        assert (run / name).is_file(), name
    state = load_checkpoint(run / "last.pt")
    assert state["step"] == 3 and state["schedule"]["finished"] and state["timing"]["eval_s"] == 20.0
    assert (state["seen"]["wall_seconds"], summary["wall_s"]) == (71.0, 72.0)  # 20 + 3 * 10 + 1 + 20 (+ the last save)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in log if "val_loss" in r]
    assert [r["step"] for r in evals] == [0, 3]  # the starting weights (measures an evaluation) and the final ones
    assert [r["wall_s"] for r in evals] == [20.0, 71.0] and evals[-1]["audio_seconds"] == 3 * 2 * 0.5
    # the schedule's horizon is the steps that fit: the first step (it may compile) moves progress by a step of
    # the 100_000; after the second, 120 - 40 - 68.7 = 11.3 s are left for 10-s steps and their share of the
    # evaluations every 1000 steps: 1.13 steps, so the last step is near the end
    progress = [r["progress"] for r in log if "loss" in r]
    assert progress == pytest.approx([0.0, 1e-5, 1e-5 + (1 - 1e-5) / (1 + 11.3 / (10 + 20 / 1000))], abs=1e-5)
    assert log[-1]["event"] == "end" and state["schedule"]["finished"] and state["schedule"]["cycle"] == 0
    assert state["schedule"]["progress"] == pytest.approx(
        progress[-1] + (1 - progress[-1]) / (1 + 1.3 / 10.02), abs=1e-4
    )
    # again, evaluating every 15 s: a new cycle over the new budget, from the peak rate (no new warm-up); the
    # measured costs come from last.pt (no evaluation first). Steps start at 0, 10 (an evaluation due after it
    # still fits: 10 + 10 + 30 + 68.7 <= 120), 40 (after the 20-s evaluation); at 50 the evaluation due after
    # the next step would not fit.
    summary = train(replace(config, eval_minutes=0.25), model=fresh_model())
    assert summary["step"] == 3 + 3
    state = load_checkpoint(run / "last.pt")
    assert state["schedule"]["cycle"] == 1 and state["seen"]["audio_seconds"] == 6 * 2 * 0.5
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "val_loss" in r] == [0, 3, 5, 6]
    assert [r["lr"] for r in log if "loss" in r][3] == config.lr
    assert not any("lr_scale" in r for r in log)  # the plateau scale is logged under ``plateau`` only


def test_init_and_distillation_from_a_checkpoint(corpus, tmp_path):
    teacher = tiny_config(corpus, tmp_path / "teacher", steps=2)
    train(teacher, model=fresh_model())
    init = tmp_path / "teacher" / "averaged.safetensors"
    model = prepare_model(tiny_config(corpus, tmp_path / "x", init=str(init)), None, None)
    assert model.training
    expected = load_checkpoint(tmp_path / "teacher" / "averaged.pt")["model"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key].half().float())
    student = tiny_config(
        corpus,
        tmp_path / "student",
        steps=2,
        teacher=str(tmp_path / "teacher" / "last.pt"),
        distill_weight=0.5,
        keep_best=0,
    )
    summary = train(student)  # builds the tiny variant itself
    assert summary["step"] == 2 and summary["skipped"] == 0
    with pytest.raises(FileNotFoundError, match="no weights are shipped"):
        prepare_model(tiny_config(corpus, tmp_path / "y", init="shipped"), None, None)


def test_init_shipped_starts_from_the_package_weights_when_the_run_folder_is_gone(corpus, tmp_path, monkeypatch):
    shipped = tmp_path / "tiny.safetensors"
    save_weights(fresh_model(seed=5), shipped)
    monkeypatch.setattr(
        "fastuss_fx.pretrained.shipped_weights_path", lambda variant: shipped if variant == "tiny" else None
    )
    run = tmp_path / "gone" / "run"
    summary = train(
        tiny_config(corpus, run, steps=2, eval_every=2, init="shipped", lr=1e-9, min_lr=1e-9, ema_decay=0.0)
    )
    assert summary["step"] == 2
    start = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["init"] == str(shipped)
    expected = load_weights(shipped).state_dict()
    for key, value in load_checkpoint(run / "last.pt")["model"].items():
        torch.testing.assert_close(value, expected[key], atol=1e-6, rtol=0)  # lr ~ 0: still the shipped weights


def test_init_shipped_finds_the_real_package_weights(corpus, tmp_path):
    path = shipped_weights_path("fastuss-causal")
    if path is None:
        pytest.skip("no fastuss-causal weights shipped")
    model = prepare_model(tiny_config(corpus, tmp_path / "x", variant="fastuss-causal", init="shipped"), None, None)
    expected = load_weights(path).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def test_compiled_forward_trains_like_eager(corpus, tmp_path):
    """``compile`` routes the training forward through ``torch.compile`` (backend ``eager`` here: the
    tracing without inductor's C++ build) and gives the same losses as the eager loop."""
    losses = {}
    for backend in ("", "eager"):
        out = tmp_path / (backend or "plain")
        train(tiny_config(corpus, out, steps=4, eval_every=100, compile=backend), model=fresh_model())
        log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        losses[backend] = [r["loss"] for r in log if "loss" in r]
    assert len(losses[""]) == 2
    np.testing.assert_allclose(losses["eager"], losses[""], rtol=1e-4, atol=1e-4)


def test_init_of_another_variant_warm_starts_the_named_variant(corpus, tmp_path, monkeypatch):
    torch.manual_seed(3)
    causal = TUSS(load_variant("tiny-causal"))
    shipped = tmp_path / "tiny-causal.safetensors"
    save_weights(causal, shipped)
    monkeypatch.setattr(
        "fastuss_fx.pretrained.shipped_weights_path", lambda variant: shipped if variant == "tiny-causal" else None
    )
    variant = tmp_path / "tiny-twin.yaml"
    variant.write_text(yaml.safe_dump(non_causal_twin("tiny-twin")))

    model = prepare_model(
        tiny_config(corpus, tmp_path / "x", variant=str(variant), init="shipped:tiny-causal"), None, None
    )
    assert model.config.name == "tiny-twin" and not model.config.causal and model.training
    source = load_weights(shipped).state_dict()
    gains = [k for k in source if ".gain" in k]
    assert gains and all(torch.equal(model.state_dict()[k], source[k]) for k in gains)
    # without --variant the init weights keep their own variant
    same = prepare_model(tiny_config(corpus, tmp_path / "y", variant="", init=str(shipped)), None, None)
    assert same.config.name == "tiny-causal"
    with pytest.raises(FileNotFoundError, match="no weights are shipped for variant 'tiny'"):
        prepare_model(tiny_config(corpus, tmp_path / "z", init="shipped:tiny"), None, None)


def test_cpu_validation_scores_in_float32_whatever_the_training_precision(corpus):
    """Checkpoints are picked as users run them (float32 onnxruntime), even when training runs
    in bf16 autocast; the training step itself does autocast."""
    store = ClipStore.from_manifest(corpus)
    valid = validation_batches(store, get_tasks(["denoise"]), replace(MIX, chunk_seconds=0.5), 2, batch_size=2)
    model, cpu = fresh_model(), Context(0, 1, torch.device("cpu"))
    assert validate(model, valid, cpu, "bf16") == validate(model, valid, cpu, "fp32")
    batch = valid[0]
    cfg = tiny_config(corpus, None, precision="bf16")
    dtypes = []
    model.register_forward_pre_hook(
        lambda module, args: dtypes.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
    )
    loss, grad_norm, applied = train_step(model, None, batch, make_optimizer(model, cfg), cfg)
    assert dtypes == [torch.bfloat16]
    assert applied and np.isfinite(loss) and grad_norm > 0
