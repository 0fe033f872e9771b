"""One loader for every model file: shipped weights and training checkpoints (``fastuss_fx.weights``)."""

import pytest
import torch

from fastuss_fx.cli import main
from fastuss_fx.config import config_to_dict
from fastuss_fx.pretrained import UNTRAINED_SEED
from fastuss_fx.train import checkpoint
from fastuss_fx.weights import build_model, load_model, load_weights, save_weights


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


@pytest.fixture
def trained(tmp_path):
    """A ``tiny`` model, and it saved as a training checkpoint (with RNG states) and as fp16 weights."""
    model = build_model("tiny", seed=3)
    state = {
        "model": checkpoint.model_state(model),
        "model_config": config_to_dict(model.config),
        "rng": checkpoint.capture_rng(),
        "step": 7,
    }
    pt = checkpoint.save_checkpoint(state, tmp_path / "last.pt")
    return model, pt, save_weights(model, tmp_path / "tiny.safetensors")


def test_checkpoints_and_weights_files_load_through_one_function(trained):
    model, pt, safetensors = trained
    from_pt, from_weights = load_weights(pt), load_weights(safetensors)
    assert _same_weights(from_pt, model) and not from_pt.training
    assert from_weights.config == model.config and not from_weights.training
    assert not hasattr(checkpoint, "load_model") and not hasattr(checkpoint, "build_model")  # one way to load


def test_a_checkpoint_without_a_model_names_the_file(tmp_path):
    path = checkpoint.save_checkpoint({"step": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt is not a fastuss training checkpoint"):
        load_weights(path)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_weights(tmp_path / "nope.pt")


def test_random_weights_come_from_the_seed_or_the_global_rng():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    seeded = build_model("tiny", seed=UNTRAINED_SEED)
    assert torch.equal(torch.get_rng_state(), before)  # a seed leaves the global RNG alone
    assert _same_weights(seeded, build_model("tiny", seed=UNTRAINED_SEED))
    assert not _same_weights(build_model("tiny"), build_model("tiny"))  # training from scratch: global RNG
    fused, trained = load_model("tiny")  # no weights ship for it: the seeded init, fused
    assert not trained and _same_weights(fused, seeded.eval().fuse())


def test_eval_scores_a_training_checkpoint(trained, corpus, capsys):
    _, pt, _ = trained
    args = ["eval", "--model", str(pt), "--data", str(corpus), "--split", "valid", "--tasks", "denoise"]
    assert main([*args, "--examples", "2", "--seconds", "0.25", "--device", "cpu"]) == 0
    assert "denoise (main)" in capsys.readouterr().out


def test_eval_needs_a_corpus(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--identity"])
    assert "--data" in capsys.readouterr().err
