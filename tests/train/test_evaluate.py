import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fastuss_fx.cli import main
from fastuss_fx.data.dataset import Batch, validation_batches
from fastuss_fx.data.manifest import ClipStore, read_manifest, write_manifest
from fastuss_fx.data.mixer import MixConfig
from fastuss_fx.data.tasks import get_tasks
from fastuss_fx.engines import onnx_backend_for_model
from fastuss_fx.model import TUSS
from fastuss_fx.train.evaluate import (
    backend_separator,
    confidence_interval,
    evaluate,
    format_table,
    identity,
    model_separator,
    score_batch,
)
from fastuss_fx.train.loss import SILENT_WEIGHT, pairwise_loss


@pytest.fixture(scope="module")
def valid(corpus):
    store = ClipStore.from_manifest(corpus)
    tasks = get_tasks(["dialog", "two_talkers"])
    return tasks, validation_batches(store, tasks, MixConfig(chunk_seconds=0.25), 3, batch_size=2)


def test_identity_baseline_and_oracle(valid):
    tasks, batches = valid
    baseline = evaluate(identity, batches, tasks)
    assert baseline["oracle_min_si_sdr"] > 60
    assert set(baseline["tasks"]) == {"dialog", "two_talkers"}
    for task in baseline["tasks"].values():
        assert task["main"]["si_sdri"] == pytest.approx(0.0, abs=1e-6)
    assert baseline["tasks"]["dialog"]["main"]["count"] == 3  # main target: speech only
    assert baseline["prompts"]["speech"]["count"] == 3 + 6
    targets = {id(b.mixture): b.targets for b in batches}
    oracle = evaluate(lambda mixture, prompts: targets[id(mixture)], batches, tasks)
    assert min(m["si_sdr"] for m in oracle["prompts"].values()) > 60
    swapped = evaluate(lambda mixture, prompts: targets[id(mixture)].flip(1), batches, tasks)  # PIT undoes the swap
    assert swapped["tasks"]["two_talkers"]["main"]["si_sdr"] > 60
    assert swapped["tasks"]["dialog"]["main"]["si_sdr"] < 20
    assert "oracle check" in format_table(baseline)


def test_onnx_backend_scores_like_the_torch_model(valid):
    tasks, batches = valid
    torch.manual_seed(0)
    model = TUSS.from_variant("tiny-causal")
    expected = evaluate(model_separator(model), batches, tasks)
    got = evaluate(backend_separator(onnx_backend_for_model(model)), batches, tasks)
    for prompt, metrics in expected["prompts"].items():
        assert got["prompts"][prompt]["si_sdr"] == pytest.approx(metrics["si_sdr"], abs=1e-2)


def test_eval_command_writes_json(corpus, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "eval",
                "--identity",
                "--data",
                str(corpus),
                "--split",
                "valid",
                "--tasks",
                "denoise",
                "--examples",
                "2",
                "--seconds",
                "0.25",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["model"] == "identity" and result["tasks"]["denoise"]["main"]["si_sdri"] == pytest.approx(
        0.0, abs=1e-6
    )
    assert result["settings"]["split"] == "valid" and result["tasks"]["denoise"]["main"]["mixtures"] == 2
    assert "denoise (main)" in capsys.readouterr().out
    assert main(["eval", "--identity", "--data", str(corpus), "--examples", "0"]) == 2


def test_confidence_interval_known_answer():
    assert confidence_interval([1.0]) is None
    values = [1.0, 2.0, 3.0, 4.0]  # sd = sqrt(5/3)
    assert confidence_interval(values) == pytest.approx(1.959964 * math.sqrt(5 / 3) / 2)


def test_intervals_count_mixtures_not_sources(valid):
    tasks, batches = valid
    targets = {id(b.mixture): b.targets for b in batches}
    noisy = evaluate(lambda mixture, prompts: targets[id(mixture)] + 0.3 * mixture[:, None], batches, tasks)
    main = noisy["tasks"]["two_talkers"]["main"]
    assert main["count"] == 6 and main["mixtures"] == 3  # two speech sources in each of 3 mixtures
    assert main["si_sdri_ci95"] > 0
    assert main["si_sdri_low"] == pytest.approx(main["si_sdri"] - main["si_sdri_ci95"])
    assert main["si_sdri_high"] == pytest.approx(main["si_sdri"] + main["si_sdri_ci95"])
    assert "± 95%" in format_table(noisy)


@pytest.fixture(scope="module")
def test_split_corpus(corpus):
    """The synthetic corpus with its valid clips moved to the test split (so valid is empty)."""
    rows = [replace(r, split="test") if r.split == "valid" else r for r in read_manifest(corpus)]
    return write_manifest(rows, Path(corpus).parent / "manifest-test.jsonl")


def test_splits_are_chosen_by_name(test_split_corpus):
    store = ClipStore.from_manifest(test_split_corpus)
    tasks = get_tasks(["denoise"])
    batches = validation_batches(store, tasks, MixConfig(chunk_seconds=0.25), 2, batch_size=2, split="test")
    assert len(batches) == 1 and batches[0].name == "denoise"
    with pytest.raises(ValueError, match="no clips"):
        validation_batches(store, tasks, MixConfig(chunk_seconds=0.25), 2, split="valid")
    with pytest.raises(ValueError, match="unknown split"):
        validation_batches(store, tasks, MixConfig(chunk_seconds=0.25), 2, split="dev")


def test_eval_command_defaults_to_the_test_split(test_split_corpus, tmp_path, capsys):
    out = tmp_path / "eval.json"
    args = [
        "eval",
        "--identity",
        "--data",
        str(test_split_corpus),
        "--tasks",
        "denoise",
        "--examples",
        "3",
        "--seconds",
        "0.25",
    ]
    assert main([*args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["split"] == "test"
    m = result["tasks"]["denoise"]["main"]
    assert m["mixtures"] == 3 and m["si_sdri_ci95"] == pytest.approx(0.0, abs=1e-6)
    assert main([*args, "--split", "valid"]) == 2
    assert "no clips in the 'valid' split (this corpus has test, train)" in capsys.readouterr().err


def test_loss_and_scoring_share_one_silence():
    """A target at -110 dBFS (not exactly zero) is silent for both the loss and the scores; one at -90 dBFS
    is audible for both."""
    n = 4800
    g = torch.Generator().manual_seed(0)
    speech = torch.randn(1, n, generator=g)
    quiet = torch.randn(1, n, generator=g)
    quiet = quiet / quiet.pow(2).mean().sqrt()  # mean power 1
    for power_db, silent in ((-110.0, True), (-90.0, False)):
        targets = torch.stack([speech, quiet * 10 ** (power_db / 20)], dim=1)  # [1, 2, N]
        mixture = targets.sum(1)
        estimates = torch.stack([speech, 0.5 * mixture], dim=1)
        batch = Batch(mixture, targets, [["speech", "sfxbg"]], "denoise")
        scored = [r["prompt"] for r in score_batch(estimates, batch)]
        assert scored == (["speech"] if silent else ["speech", "sfxbg"])
        entry = float(pairwise_loss(estimates, targets, mixture)[0, 1, 1])
        leak = 10 * math.log10(float(estimates[0, 1].pow(2).sum() / mixture.pow(2).sum()) + 1e-3)
        assert (entry == pytest.approx(SILENT_WEIGHT * leak, abs=1e-3)) == silent
