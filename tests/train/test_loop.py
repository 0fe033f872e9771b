"""Training on the tiny variant and a synthetic corpus: learning, exact resume, init, distillation."""

import json
from dataclasses import replace

import pytest
import torch

from fastuss_fx.config import load_variant
from fastuss_fx.data.dataset import validation_batches
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import MixConfig
from fastuss_fx.data.tasks import get_tasks
from fastuss_fx.model import TUSS
from fastuss_fx.train.checkpoint import load_checkpoint
from fastuss_fx.train.config import TrainConfig
from fastuss_fx.train.distributed import Context
from fastuss_fx.train.loop import prepare_model, train, validate

MIX = MixConfig(chunk_seconds=0.5, max_sources=2, reverb_probability=0.0, lowpass_probability=0.0, mix_lowpass_probability=0.0)


def tiny_config(corpus, out, **changes):
    config = TrainConfig(
        data=str(corpus), variant="tiny", out=str(out), steps=4, batch_size=2, lr=3e-3, warmup_steps=4,
        log_every=2, eval_every=2, checkpoint_every=2, keep_best=2, valid_examples=2, valid_seconds=0.5,
        valid_tasks=("denoise",), valid_batch_size=2, workers=0, progress=False, mix=MIX,
    )
    return replace(config, **changes)


def fresh_model(seed=0):
    torch.manual_seed(seed)
    return TUSS(load_variant("tiny"))


def test_training_lowers_the_loss(corpus, tmp_path):
    config = tiny_config(corpus, tmp_path / "run", steps=36, eval_every=36, checkpoint_every=36, log_every=6, valid_tasks=("denoise", "dialog"))
    store = ClipStore.from_manifest(corpus)
    valid = validation_batches(store, get_tasks(list(config.valid_tasks)), replace(MIX, chunk_seconds=0.5), 2, batch_size=2)
    model = fresh_model()
    before, _ = validate(model, valid, Context(0, 1, torch.device("cpu")), "fp32")
    summary = train(config, model=model)
    after, _ = validate(model, valid, Context(0, 1, torch.device("cpu")), "fp32")
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert summary["step"] == 36 and len(losses) == 6
    assert after < before - 1.0, (before, after)
    assert sum(losses[-2:]) / 2 < losses[0] - 1.0, losses
    assert (tmp_path / "run" / "averaged.safetensors").is_file()


def test_resume_equals_uninterrupted_training(corpus, tmp_path):
    whole = tiny_config(corpus, tmp_path / "whole", steps=6, eval_every=3, checkpoint_every=3)
    train(whole, model=fresh_model())
    split = tiny_config(corpus, tmp_path / "split", steps=3, eval_every=3, checkpoint_every=3)
    train(split, model=fresh_model())
    assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == 3
    train(replace(split, steps=6), model=fresh_model(seed=99))  # the checkpoint overrides the fresh weights
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "split" / "last.pt")
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, value in a["optimizer"]["state"].items():
        assert all(torch.equal(v, b["optimizer"]["state"][key][k]) for k, v in value.items())
    assert a["plateau"] == b["plateau"] and a["best"] == b["best"]


def test_init_and_distillation_from_a_checkpoint(corpus, tmp_path):
    teacher = tiny_config(corpus, tmp_path / "teacher", steps=2)
    train(teacher, model=fresh_model())
    init = tmp_path / "teacher" / "averaged.safetensors"
    model = prepare_model(tiny_config(corpus, tmp_path / "x", init=str(init)), None, None)
    assert model.training
    expected = load_checkpoint(tmp_path / "teacher" / "averaged.pt")["model"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key].half().float())
    student = tiny_config(corpus, tmp_path / "student", steps=2, teacher=str(tmp_path / "teacher" / "last.pt"), distill_weight=0.5, keep_best=0)
    summary = train(student)  # builds the tiny variant itself
    assert summary["step"] == 2 and summary["skipped"] == 0
    with pytest.raises(FileNotFoundError, match="no weights are shipped"):
        prepare_model(tiny_config(corpus, tmp_path / "y", init="shipped"), None, None)
