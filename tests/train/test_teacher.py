"""Distillation: ``--teacher MODEL`` adds ``distill_weight`` x the loss against a frozen model's outputs.

Teachers here: the tiny variant with seeded random weights in a weights file, and a reduced official
TUSS (``tests/fixtures/tuss-tiny``, another STFT than the student) installed by name into a private
``$FASTUSS_HOME`` the way a user installs the real one.
"""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_loop import MIX, fresh_model, tiny_config

from fastuss_fx.config import config_from_dict, config_to_dict, load_variant
from fastuss_fx.data.dataset import validation_batches
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.tasks import get_tasks
from fastuss_fx.model import TUSS
from fastuss_fx.official import import_model
from fastuss_fx.train.loop import make_optimizer, train, train_step
from fastuss_fx.train.loss import pit_loss
from fastuss_fx.train.teacher import Teacher
from fastuss_fx.weights import load_weights, save_weights

OFFICIAL_TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tuss-tiny"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private ``$FASTUSS_HOME`` with the reduced official TUSS installed as ``tuss-tiny``."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTUSS_HOME", str(home))
        import_model(OFFICIAL_TINY, name="tuss-tiny")
        yield home


@pytest.fixture
def installed(home, monkeypatch):
    monkeypatch.setenv("FASTUSS_HOME", str(home))
    return "tuss-tiny"


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    """The tiny variant with seeded random weights (another seed than the student's), as a weights file."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_weights(fresh_model(seed=7), path)
    return path


@pytest.fixture(scope="module")
def batch(corpus):
    store = ClipStore.from_manifest(corpus)
    return validation_batches(store, get_tasks(["denoise"]), replace(MIX, chunk_seconds=0.25), 2, batch_size=2)[0]


def gradients_of_a_step(teacher, batch, corpus, **changes):
    """The gradients one ``train_step`` leaves on a fresh tiny student (lr 0 and no clipping: the
    weights stay, the gradients are the loss's own), and the loss it returns."""
    model = fresh_model()
    cfg = tiny_config(corpus, None, lr=0.0, grad_clip=1e9, **changes)
    loss, _, applied = train_step(model, teacher, batch, make_optimizer(model, cfg), cfg)
    assert applied
    return {name: p.grad.clone() for name, p in model.named_parameters()}, loss


def test_the_teacher_term_is_the_weighted_loss_against_its_outputs(teacher_file, batch, corpus):
    teacher = Teacher.load(str(teacher_file), fresh_model(), 48000, CPU)
    plain, plain_loss = gradients_of_a_step(None, batch, corpus)
    taught, taught_loss = gradients_of_a_step(teacher, batch, corpus, distill_weight=0.7)
    assert taught_loss == plain_loss  # the logged loss stays the loss against the targets

    model = fresh_model()  # the expected gradients, written out
    estimates = model(batch.mixture, batch.prompts)
    with torch.no_grad():
        outputs = load_weights(teacher_file).fuse()(batch.mixture, batch.prompts)
    truth, _ = pit_loss(estimates, batch.targets, batch.mixture, batch.prompts)
    distill, _ = pit_loss(estimates, outputs, batch.mixture, batch.prompts)
    (truth + 0.7 * distill).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(taught[name], p.grad, rtol=1e-4, atol=1e-6)
    changed = sum(float((taught[n] - plain[n]).abs().sum()) for n in plain)
    assert changed > 1e-3 * sum(float(g.abs().sum()) for g in plain.values())

    window = teacher.take_window()
    assert window["distill_loss"] == pytest.approx(float(distill.detach()), abs=1e-4) and window["teacher_s"] > 0
    assert teacher.take_window() == {}  # taken: the next log window starts empty


def test_with_distill_weight_zero_the_loss_is_the_plain_loss(teacher_file, batch, corpus):
    teacher = Teacher.load(str(teacher_file), fresh_model(), 48000, CPU)
    plain, plain_loss = gradients_of_a_step(None, batch, corpus)
    zero, zero_loss = gradients_of_a_step(teacher, batch, corpus, distill_weight=0.0)
    assert zero_loss == plain_loss
    assert all(torch.equal(zero[name], plain[name]) for name in plain)


def test_a_teacher_is_named_like_any_model_and_needs_trained_weights(installed, teacher_file):
    student = fresh_model()
    official = Teacher.load(installed, student, 48000, CPU)
    assert official.model.config.name != student.config.name and official.model.config.stft != student.config.stft
    assert not official.model.training and not any(p.requires_grad for p in official.model.parameters())
    mixture = torch.randn(2, 12000)
    outputs, seconds = official(mixture, [["speech", "sfxbg"]] * 2)
    assert outputs.shape == (2, 2, 12000) and seconds > 0

    with pytest.raises(ValueError, match="--teacher tiny: no trained weights for 'tiny'.*--allow-untrained-teacher"):
        Teacher.load("tiny", student, 48000, CPU)
    assert Teacher.load("tiny", student, 48000, CPU, allow_untrained=True).model.config.name == "tiny"
    with pytest.raises(ValueError, match="--teacher nosuch: unknown model variant 'nosuch'.*tuss-tiny"):
        Teacher.load("nosuch", student, 48000, CPU)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        Teacher.load(str(teacher_file.parent / "missing.safetensors"), student, 48000, CPU)


def test_a_teacher_at_another_sample_rate_is_refused(tmp_path, teacher_file):
    data = config_to_dict(load_variant("tiny"))
    data["stft"]["sample_rate"] = 44100
    at_44k = TUSS(config_from_dict({**data, "name": "tiny-44k"}))
    path = save_weights(at_44k, tmp_path / "tiny-44k.safetensors")
    with pytest.raises(
        ValueError, match="--teacher .*tiny-44k.safetensors runs at 44100 Hz, but training mixes at 48000"
    ):
        Teacher.load(str(path), fresh_model(), 48000, CPU)
    with pytest.raises(ValueError, match="runs at 48000 Hz, the student at 44100 Hz"):
        Teacher.load(str(teacher_file), at_44k, 48000, CPU)


def test_training_with_an_installed_teacher_logs_its_cost(installed, corpus, tmp_path):
    out = tmp_path / "run"
    summary = train(tiny_config(corpus, out, steps=2, eval_every=100, keep_best=0, teacher=installed))
    assert summary["step"] == 2 and summary["skipped"] == 0 and summary["teacher_s_per_step"] > 0
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert steps and all(0 < r["teacher_s"] < r["step_s"] and "distill_loss" in r for r in steps)


def test_a_zero_weight_skips_the_teacher(corpus, tmp_path, caplog):
    out = tmp_path / "run"
    train(tiny_config(corpus, out, steps=2, eval_every=100, keep_best=0, teacher="nosuch", distill_weight=0.0))
    assert "--teacher nosuch ignored: --distill-weight is 0" in caplog.text
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("teacher_s" not in r for r in steps)
