"""The ONNX graphs shipped beside the trained weights: one set per trained variant, exported from
the weights that ship, computing what the torch model computes. When one of these fails, the
graphs are stale: rebuild them with ``make graphs`` (``scripts/ship_graphs.py``)."""

import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastuss_fx.pretrained
from fastuss_fx import FasTUSS
from fastuss_fx.engines import graph_folder
from fastuss_fx.export import MIN_PARITY_SISDR_DB
from fastuss_fx.export_cache import shipped_graph_folder
from fastuss_fx.metrics import si_sdr
from fastuss_fx.pretrained import DEFAULT_MODELS, file_sha256, shipped_weights_path, trained_variants

GRAPHS = Path(fastuss_fx.pretrained.__file__).parent / "onnx"
STALE = "the shipped graphs are stale: run `make graphs`"


def test_every_trained_variant_ships_its_graphs():
    assert sorted(p.name for p in GRAPHS.iterdir() if p.is_dir()) == trained_variants(), STALE


@pytest.mark.parametrize("variant", trained_variants())
def test_shipped_graphs_were_exported_from_the_shipped_weights(variant):
    manifest = json.loads((GRAPHS / variant / "manifest.json").read_text())
    weights = shipped_weights_path(variant)
    assert manifest["weights"] == {"file": f"{variant}.safetensors", "sha256": file_sha256(weights)}, STALE
    assert graph_folder(variant) == (GRAPHS / variant, True)


@pytest.mark.parametrize("mode", ["offline", "realtime"])
def test_shipped_graphs_compute_what_the_torch_model_computes(mode):
    audio = (0.3 * np.random.default_rng(1).standard_normal((2, 48000))).astype(np.float32)
    prompts = ["speech", "sfx", "musicbg"]
    stems = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for engine in ("onnx", "torch"):
            fx = FasTUSS(prompts, mode=mode, engine=engine, segment_seconds=1.0)
            stems[engine] = np.stack(list(fx.separate(audio, 48000).values()))
            if engine == "onnx":  # the processor runs the shipped graphs, not an export of its own
                assert fx.backend.manifest == json.loads((GRAPHS / DEFAULT_MODELS[mode] / "manifest.json").read_text())
    scores = si_sdr(stems["torch"], stems["onnx"])
    assert scores.min() >= MIN_PARITY_SISDR_DB, f"SI-SDR {np.round(scores, 1)} dB against torch: {STALE}"


def test_graphs_of_other_weights_are_passed_over(tmp_path, monkeypatch, caplog):
    variant = DEFAULT_MODELS["realtime"]
    shutil.copytree(GRAPHS / variant, tmp_path / variant)
    monkeypatch.setattr("fastuss_fx.export_cache.shipped_graphs_path", lambda name: tmp_path / name)
    assert shipped_graph_folder(variant) == tmp_path / variant
    manifest = json.loads((tmp_path / variant / "manifest.json").read_text())
    manifest["weights"]["sha256"] = "0" * 64  # exported from weights that no longer ship
    (tmp_path / variant / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="fastuss_fx.export_cache"):
        assert shipped_graph_folder(variant) is None
    assert "make graphs" in caplog.text
