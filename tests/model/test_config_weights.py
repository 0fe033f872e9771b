import json

import pytest
import torch

from fastuss_fx.cli import main
from fastuss_fx.config import config_from_dict, config_to_dict, list_variants, load_variant
from fastuss_fx.model import TUSS
from fastuss_fx.weights import load_weights, read_metadata, save_weights


def test_shipped_variants():
    assert {"tuss-medium", "fastuss-11.7g", "fastuss-8.3g", "fastuss-causal", "tiny", "tiny-causal"} <= set(
        list_variants()
    )


@pytest.mark.parametrize("name", list_variants())
def test_config_round_trip(name):
    config = load_variant(name)
    assert config_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config


def test_unknown_key_is_rejected_with_its_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ncross_prompt:\n  blocks: 1\n  frq: {}\n")
    with pytest.raises(ValueError, match=r"cross_prompt.*unknown key.*'frq'"):
        load_variant(path)


def test_unknown_variant_lists_choices():
    with pytest.raises(ValueError, match="fastuss-8.3g"):
        load_variant("fastuss-9g")


def test_invalid_config_values():
    with pytest.raises(ValueError, match="attention_window"):
        config_from_dict({"causal": True})
    with pytest.raises(ValueError, match="branch kernel"):
        config_from_dict({"cross_prompt": {"freq": {"kernel": 2, "branch_kernels": [3]}}})


@pytest.mark.parametrize(
    "text, message",
    [
        ("causal: 'no'\n", r"bad\.yaml: key 'causal' must be a bool \(true or false\), got 'no' \(str\)"),
        ("dim: 64.0\n", r"bad\.yaml: key 'dim' must be int, got 64\.0 \(float\)"),
        ("stft: {n_fft: '2048'}\n", r"bad\.yaml\.stft: key 'n_fft' must be int, got '2048' \(str\)"),
        ("attention_window: 3.5\n", r"key 'attention_window' must be int or None, got 3\.5"),
        ("tse: {time: {branch_kernels: [1, x]}}\n", r"yaml\.tse\.time: key 'branch_kernels' must be a list of int"),
    ],
)
def test_config_values_are_type_checked(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_variant(path)


def test_train_config_types_widen_ints_and_lists_only():
    from fastuss_fx.train.config import train_config_from_dict

    config = train_config_from_dict({"lr": 1, "valid_tasks": ["dialog"], "mix": {}})
    assert config.lr == 1.0 and isinstance(config.lr, float) and config.valid_tasks == ("dialog",)
    assert config_from_dict({"reference_seconds": 6}).reference_seconds == 6.0
    with pytest.raises(ValueError, match=r"train: key 'resume' must be a bool"):
        train_config_from_dict({"resume": "yes"}, "train")
    with pytest.raises(ValueError, match=r"train: key 'steps' must be int, got '10' \(str\)"):
        train_config_from_dict({"steps": "10"}, "train")


def test_weights_round_trip(tmp_path):
    model = TUSS.from_variant("tiny-causal").eval()
    path = save_weights(model, tmp_path / "w.safetensors", {"steps": 12})
    loaded = load_weights(path)
    assert loaded.config == model.config
    assert json.loads(read_metadata(path)["steps"]) == 12
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor.half().float())
    assert not list(tmp_path.glob(".w.safetensors.*"))  # no temp file left behind
    assert path.stat().st_mode & 0o777 == 0o644  # written by the shared atomic helper


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_weights(tmp_path / "nope.safetensors")


def test_complexity_cli_json(capsys):
    assert main(["complexity", "--json", "fastuss-8.3g", "fastuss-causal"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["fastuss-8.3g", "fastuss-causal"]
    for row in rows:
        assert {"name", "params", "gmacs_per_s", "latency_ms", "causal"} <= set(row)
    assert rows[1]["causal"] is True and rows[1]["latency_ms"] <= 20


def test_complexity_cli_table(capsys):
    assert main(["complexity", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "GMAC/s@2" in out and "time_ffn" in out


def test_shipped_weights_match_their_variant_config():
    from fastuss_fx.pretrained import shipped_weights_path
    from fastuss_fx.weights import load_default

    shipped = [v for v in list_variants() if shipped_weights_path(v)]
    assert "fastuss-causal" in shipped
    for variant in shipped:
        model = load_default(variant)
        assert model.config == load_variant(variant)  # a changed variant YAML needs new weights
        with torch.no_grad():
            out = model(0.1 * torch.randn(1, 4800), ["speech", "sfxbg"])
        assert out.shape == (1, 2, 4800) and torch.isfinite(out).all()
