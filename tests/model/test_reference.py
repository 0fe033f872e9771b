"""The TUSS reference layout: official hparams and tensors mapped into our model, number for number.

Fixtures (tests/fixtures/): ``tuss-tiny/`` holds a reduced model in the official on-disk format
(random weights) with the reference implementation's outputs for it; ``tuss-keys/`` the key lists
of the two official checkpoints and their architecture fields. See tests/fixtures/README.md.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from fastuss_fx.model.macs import count_macs
from fastuss_fx.model.reference import UnsupportedCheckpoint, config_from_hparams, convert_state_dict
from fastuss_fx.model.tuss import TUSS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = FIXTURES / "tuss-tiny"
PROMPT_LISTS = ["speech+sfxbg+musicbg", "speech+sfx+sfx+musicbg", "vocals+drums+bass+other", "speech"]
TOLERANCE = 5e-5  # the reference's own float32 error is ~8e-6 (its README, float64 run)


def _hparams(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _keys(name: str) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    shapes, meta = {}, {}
    for line in (FIXTURES / "tuss-keys" / f"{name}.keys.tsv").read_text().splitlines():
        if line.startswith("#"):
            field, _, value = line[2:].partition("\t")
            meta[field.strip()] = value
        elif line and not line.startswith("key\t"):
            key, shape, _dtype, _numel = line.split("\t")
            shapes[key] = tuple(int(s) for s in shape.split(","))
    return shapes, meta


@pytest.fixture(scope="module")
def tiny_model() -> TUSS:
    model = TUSS(config_from_hparams(_hparams(TINY / "hparams.yaml"), "tuss-tiny"))
    official = torch.load(TINY / "checkpoints" / "model.pth", weights_only=True)
    model.load_state_dict(convert_state_dict(official, model))
    return model.eval()


@pytest.mark.parametrize("prompts", PROMPT_LISTS)
def test_tiny_model_matches_the_reference_outputs(tiny_model, prompts):
    mix = torch.from_numpy(np.load(TINY / "input.npy"))
    expected = np.load(TINY / f"output_{prompts}.npy")[:, : mix.shape[-1]]
    with torch.no_grad():
        got = tiny_model(mix, prompts.split("+")).numpy()
        fused = tiny_model.inference_copy()(mix, prompts.split("+")).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.abs(fused - expected).max() <= TOLERANCE


@pytest.mark.parametrize("name", ["medium", "large"])
def test_every_official_key_is_mapped_with_its_shape(name):
    shapes, meta = _keys(name)
    assert len(shapes) == int(meta["n_keys"])
    config = config_from_hparams(_hparams(FIXTURES / "tuss-keys" / f"{name}.hparams.yaml"), f"tuss-{name}")
    with torch.device("meta"):
        model = TUSS(config)
        official = {key: torch.empty(shape) for key, shape in shapes.items()}
    state = convert_state_dict(official, model)  # raises on a key left over, missing or misshapen
    assert set(state) == set(model.state_dict())
    zero_biases = sum(v.numel() for k, v in state.items() if k.endswith(("attention.qkv.bias", "attention.out.bias")))
    rope = sum(numel for key, numel in ((k, int(np.prod(s))) for k, s in shapes.items()) if key.endswith("rope.freqs"))
    assert sum(v.numel() for v in state.values()) - zero_biases == sum(int(np.prod(s)) for s in shapes.values()) - rope


def test_a_misshapen_tensor_is_refused_by_name():
    shapes, _ = _keys("medium")
    config = config_from_hparams(_hparams(FIXTURES / "tuss-keys" / "medium.hparams.yaml"), "tuss-medium")
    key = "model.separator.cond_tse_module.1.frame_path.ffn.0.conv1d.weight"
    shapes[key] = (512, 64, 3)
    with torch.device("meta"):
        model = TUSS(config)
        official = {k: torch.empty(s) for k, s in shapes.items()}
    with pytest.raises(UnsupportedCheckpoint, match=r"cond_tse_module\.1\.frame_path\.ffn\.0\.conv1d\.weight"):
        convert_state_dict(official, model)
    del official[key]
    with pytest.raises(UnsupportedCheckpoint, match="has no tensor"):
        convert_state_dict(official, model)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda h: h["model_conf"]["conf_cross_prompt_module"].update(tf_order="tf"), "tf_order"),
        (lambda h: h["model_conf"].update(prompt_size=2), "prompt_size"),
        (lambda h: h["model_conf"].update(use_sos_token=False), "use_sos_token"),
        (
            lambda h: h["model_conf"]["conf_cond_tse_module"]["frame_ffn_config"][0]["conf"].update(dim_inner=8),
            "frame_ffn_config",
        ),
        (lambda h: h["model_conf"]["conf_cond_tse_module"].update(emb_dim=32), "emb_dim"),
        (lambda h: h["encoder_conf"].update(window_type="hann"), "window_type"),
        (lambda h: h.update(variance_normalization=False), "variance_normalization"),
        (lambda h: h.update(model_name="bslocoformer_stack"), "model_name"),
        (lambda h: h["model_conf"].update(prompts=["speech", "noise"]), "prompts"),
        (lambda h: h["css_conf"].update(solve_perm=True), "solve_perm"),
    ],
)
def test_hparams_we_cannot_run_exactly_are_refused_by_field(edit, field):
    hparams = copy.deepcopy(_hparams(TINY / "hparams.yaml"))
    edit(hparams)
    with pytest.raises(UnsupportedCheckpoint, match=field):
        config_from_hparams(hparams, "x", where="some/hparams.yaml")


def test_complexity_of_the_official_medium_config_agrees_with_the_reference_count():
    _, meta = _keys("medium")
    reference = next(int(v) for k, v in meta.items() if k.startswith("MACs per second"))
    config = config_from_hparams(_hparams(FIXTURES / "tuss-keys" / "medium.hparams.yaml"), "tuss-medium")
    count = count_macs(config, n_prompts=3)  # 6 s, as the reference count
    # the reference counts no FFTs (ours are matrix products, reported apart as stft / istft)
    ours = (count.total - count.modules["stft"] - count.modules["istft"]) / (count.n_samples / count.sample_rate)
    assert abs(ours / reference - 1) <= 0.03, (ours, reference)


def test_the_tuss_medium_variant_is_the_official_medium_architecture():
    from dataclasses import replace

    from fastuss_fx.config import load_variant

    official = config_from_hparams(_hparams(FIXTURES / "tuss-keys" / "medium.hparams.yaml"), "tuss-medium")
    shipped = load_variant("tuss-medium")
    assert replace(shipped, description="") == replace(official, description="")
