"""Official TUSS checkpoints through the user's path: `fastuss models import`, then the plugin runs them.

The fixture ``tests/fixtures/tuss-tiny`` is a reduced TUSS in the official on-disk format (random
weights) with the reference implementation's outputs (see tests/fixtures/README.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastuss_fx import FasTUSS
from fastuss_fx.cli import main

TINY = Path(__file__).resolve().parent / "fixtures" / "tuss-tiny"
TOLERANCE = 5e-5  # the reference's own float32 error is ~8e-6 (float64 run of the reference)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``tuss-tiny`` imported through the CLI into a fresh $FASTUSS_HOME (and a fresh graph cache)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FASTUSS_HOME", str(home))
        mp.setenv("FASTUSS_CACHE", str(tmp_path_factory.mktemp("cache")))
        assert main(["models", "import", str(TINY), "--name", "tuss-tiny"]) == 0
        yield home


@pytest.mark.parametrize("engine", ["torch", "onnx"])
@pytest.mark.parametrize("prompts", ["speech+sfxbg+musicbg", "speech+sfx+sfx+musicbg", "vocals+drums+bass+other"])
def test_imported_model_reproduces_the_reference_outputs(installed, engine, prompts):
    mix = np.load(TINY / "input.npy")
    fx = FasTUSS(prompts.split("+"), model="tuss-tiny", engine=engine)  # 3 s < one 6-s window: one forward
    stems = fx.separate(mix, 48000)
    expected = np.load(TINY / f"output_{prompts}.npy")[:, : mix.shape[-1]]
    got = np.stack(list(stems.values()))
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE


def test_long_file_mode_reproduces_the_reference_chunkwise_output(installed):
    mix = np.load(TINY / "input_css.npy")  # 10 s: windows of 6 s every 3 s, averaged where they overlap
    fx = FasTUSS(["speech"], model="tuss-tiny", engine="torch", segment_seconds=6, overlap=0.5, blend="average")
    got = fx.separate(mix, 48000)["speech"]
    expected = np.load(TINY / "output_css_speech.npy")[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE


def test_installed_model_is_listed_with_its_licence_and_removable(installed, capsys):
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tuss-tiny"]["source"] == "installed" and rows["tuss-tiny"]["size_bytes"] > 1e6
    assert rows["fastuss-causal"]["source"] == "shipped" and rows["fastuss-causal"]["licence"] == "MIT"
    assert main(["models", "import", str(TINY), "--name", "tuss-tiny"]) == 2  # exists: refused without --force
    assert "already installed" in capsys.readouterr().err
    assert main(["models", "remove", "fastuss-causal"]) == 2  # shipped models stay
    assert main(["complexity", "tuss-tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["name"] == "tuss-tiny"


def test_import_from_a_single_file_and_remove(installed, tmp_path, capsys):
    assert main(["models", "import", str(TINY / "checkpoints" / "model.pth"), "--name", "tiny-file"]) == 0
    assert (installed / "models" / "tiny-file" / "weights.safetensors").is_file()
    assert main(["models", "remove", "tiny-file"]) == 0
    assert not (installed / "models" / "tiny-file").exists()


def test_several_checkpoints_are_averaged(installed, tmp_path):
    import torch

    src = tmp_path / "two"
    (src / "checkpoints").mkdir(parents=True)
    shutil.copy(TINY / "hparams.yaml", src)
    state = torch.load(TINY / "checkpoints" / "model.pth", weights_only=True)
    torch.save(state, src / "checkpoints" / "a.pth")
    tripled = {k: v if k.endswith("rope.freqs") else 3 * v for k, v in state.items()}  # mean: 2x the weights
    torch.save(tripled, src / "checkpoints" / "b.pth")
    (src / "checkpoints" / "last.ckpt").write_bytes(b"never read")
    assert main(["models", "import", str(src), "--name", "averaged"]) == 0
    from fastuss_fx.weights import load_model

    model, trained = load_model("averaged")
    assert trained
    raw = torch.load(TINY / "checkpoints" / "model.pth", weights_only=True)
    sos = raw["model.separator.sos_token"].reshape(-1)
    assert torch.allclose(model.sos_token.reshape(-1), 2 * sos)


def test_bad_sources_get_clear_errors(installed, tmp_path, capsys):
    pointer = tmp_path / "lfs" / "checkpoints" / "model.pth"
    pointer.parent.mkdir(parents=True)
    shutil.copy(TINY / "hparams.yaml", tmp_path / "lfs")
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:112174a8\nsize 44864630\n")
    assert main(["models", "import", str(tmp_path / "lfs"), "--name", "lfs"]) == 2
    assert "git lfs pull" in capsys.readouterr().err
    assert main(["models", "import", str(tmp_path / "nothing-here")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad"
    shutil.copytree(TINY, bad)
    (bad / "hparams.yaml").write_text((TINY / "hparams.yaml").read_text().replace("tf_order: ft", "tf_order: tf"))
    assert main(["models", "import", str(bad), "--name", "bad"]) == 2
    err = capsys.readouterr().err
    assert "tf_order" in err and str(bad / "hparams.yaml") in err
    assert not (installed / "models" / "bad").exists()


def test_unknown_model_names_point_to_the_import_command(installed):
    with pytest.raises(ValueError, match="fastuss models import"):
        FasTUSS(["speech"], model="tuss.medium.2-4src")


def test_presets_run_an_installed_model_when_asked(installed, tmp_path, capsys):
    import soundfile as sf

    mix = np.load(TINY / "input.npy")
    wav = tmp_path / "in.wav"
    sf.write(wav, mix, 48000, subtype="FLOAT")
    out = tmp_path / "out.wav"
    args = ["separate", str(wav), "-o", str(out), "--preset", "dialog_only", "--model", "tuss-tiny"]
    assert main([*args, "--engine", "torch"]) == 0
    assert sf.info(out).frames == mix.shape[-1]
    assert FasTUSS.from_preset("cinematic_stems", model="tuss-tiny").model_name == "tuss-tiny"


def test_a_user_default_makes_an_installed_model_the_offline_model(installed, capsys):
    assert FasTUSS.from_preset("dialog_only").model_name != "tuss-tiny"
    assert main(["models", "default", "tuss-tiny"]) == 0
    try:
        assert FasTUSS.from_preset("dialog_only").model_name == "tuss-tiny"
        assert FasTUSS.from_preset("dialog_only", mode="realtime").model_name == "fastuss-causal"
        assert main(["models", "default", "tuss-tiny", "--mode", "realtime"]) == 2  # not causal
    finally:
        assert main(["models", "default", "--clear"]) == 0
    assert FasTUSS.from_preset("dialog_only").model_name != "tuss-tiny"
