import json
import math

import pytest
import torch

from fastuss_fx.cli import main
from fastuss_fx.data.dataset import validation_batches
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import MixConfig
from fastuss_fx.data.tasks import get_tasks
from fastuss_fx.model import TUSS
from fastuss_fx.runtime.loader import onnx_backend_for_model
from fastuss_fx.train.evaluate import backend_separator, evaluate, format_table, identity, model_separator, sdr, si_sdr


def test_metric_known_answers():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(8000, generator=g)
    target -= target.mean()
    noise = torch.randn(8000, generator=g)
    noise -= noise.mean()
    noise -= (noise @ target) / (target @ target) * target  # orthogonal to the target
    noise *= torch.sqrt(0.01 * (target @ target) / (noise @ noise))  # 20 dB below
    assert float(si_sdr(3.0 * target + 3.0 * noise, target)) == pytest.approx(20.0, abs=1e-3)  # scale does not matter
    assert float(sdr(target + noise, target)) == pytest.approx(20.0, abs=1e-3)
    assert float(sdr(0.5 * target, target)) == pytest.approx(20 * math.log10(2), abs=1e-3)
    assert float(si_sdr(target, target)) > 100


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
    assert main(["eval", "--identity", "--data", str(corpus), "--tasks", "denoise", "--examples", "2", "--seconds", "0.25", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == "identity" and result["tasks"]["denoise"]["main"]["si_sdri"] == pytest.approx(0.0, abs=1e-6)
    assert "denoise (main)" in capsys.readouterr().out
    assert main(["eval", "--identity", "--data", str(corpus), "--examples", "0"]) == 2
