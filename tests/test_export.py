"""ONNX export: checked graphs, parity with torch, streaming state, cache."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fastuss_fx.config import list_variants
from fastuss_fx.export import ExportError, cached_export, check_parity, export_model
from fastuss_fx.metrics import si_sdr_db
from fastuss_fx.model import TUSS
from fastuss_fx.runtime.onnx import OnnxBackend, OnnxStreamingBackend
from fastuss_fx.runtime.stream_state import fixed_dimensions

PROMPTS = ["speech", "sfx", "speech"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """tiny and tiny-causal, exported once for the module."""
    out = {}
    for name in ("tiny", "tiny-causal"):
        torch.manual_seed(0)
        model = TUSS.from_variant(name).eval().fuse()
        folder = tmp_path_factory.mktemp(name)
        export_model(model, folder)
        out[name] = (model, folder)
    return out


@pytest.mark.parametrize("name", [v for v in list_variants() if v not in ("tiny", "tiny-causal")])
def test_every_variant_exports_with_parity(name, tmp_path):
    torch.manual_seed(0)
    manifest = json.loads(export_model(TUSS.from_variant(name), tmp_path / name).read_text())
    parity = (manifest.get("offline") or manifest["streaming"])["parity"]
    assert parity["max_abs_error"] <= 1e-4 and parity["si_sdr_db"] >= 60


def test_offline_graph_matches_torch_at_other_shapes(exported):
    model, folder = exported["tiny"]
    backend = OnnxBackend(folder, threads=1)
    for batch, length, prompts in [(1, 1, ["speech"]), (3, 12345, PROMPTS), (2, 48000, ["drums", "bass", "vocals", "other"])]:
        mix = (0.3 * np.random.randn(batch, length)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(mix), prompts).numpy()
        got = backend.separate(mix, prompts)
        assert got.shape == (batch, len(prompts), length)
        assert np.abs(got - expected).max() <= 1e-4
        if length > 1000:
            assert si_sdr_db(expected, got) >= 60


def test_streaming_graph_over_10_seconds_equals_whole_clip(exported):
    model, folder = exported["tiny-causal"]
    backend = OnnxStreamingBackend(folder)
    mix = (0.3 * np.random.randn(2, 10 * 48000)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(mix), PROMPTS).numpy()
    state, outputs, hop, start = backend.initial_state(2, PROMPTS), [], backend.hop_samples, 0
    rng = np.random.default_rng(0)
    padded = np.pad(mix, ((0, 0), (0, backend.stream_delay_samples + hop)))
    while start + hop <= padded.shape[-1]:
        step = min(int(rng.integers(1, 6)), (padded.shape[-1] - start) // hop) * hop
        out, state = backend.stream(padded[:, start : start + step], state)
        outputs.append(out)
        start += step
    streamed = np.concatenate(outputs, axis=-1)[..., backend.stream_delay_samples :][..., : mix.shape[-1]]
    assert np.abs(streamed - expected).max() <= 1e-4
    assert si_sdr_db(expected, streamed) >= 60
    assert np.abs(backend.separate(mix, PROMPTS) - expected).max() <= 1e-4


def test_streaming_sessions_fix_the_shape_of_each_stream(exported):
    model, folder = exported["tiny-causal"]
    backend = OnnxStreamingBackend(folder, threads=1)
    k = model.n_bands
    dims = fixed_dimensions(backend.entry, 2, 3)
    assert dims["batch"] == 2 and dims["sources"] == 3 and dims[f"batch*{k}"] == 2 * k and dims[f"batch*sources*{k}"] == 6 * k
    for batch, prompts in [(1, ["speech"]), (2, ["drums", "bass", "speech"]), (1, ["speech"])]:
        mix = (0.3 * np.random.randn(batch, 9000)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(mix), prompts).numpy()
        assert np.abs(backend.separate(mix, prompts) - expected).max() <= 1e-4
    assert backend.session_for(1, 1) is backend.session_for(1, 1)
    assert backend.session_for(1, 1) is not backend.session_for(2, 3)


def test_int8_step_graph_stays_close_to_the_float_graph(exported):
    model, folder = exported["tiny-causal"]
    entry = json.loads((folder / "manifest.json").read_text())["streaming"]["int8"]
    assert entry["quantized_products"] > 0 and entry["si_sdr_vs_float_db"] >= 30
    mix = (0.3 * np.random.randn(2, 24000)).astype(np.float32)
    reference = OnnxStreamingBackend(folder).separate(mix, PROMPTS)
    quantized = OnnxStreamingBackend(folder, int8=True)
    assert quantized.step_file.name == "stream_step.int8.onnx"
    got = quantized.separate(mix, PROMPTS)
    assert got.shape == reference.shape and 30 <= si_sdr_db(reference, got) < 200  # close, but really quantized


def test_int8_needs_a_causal_export(exported):
    with pytest.raises(ValueError, match="causal"):
        OnnxBackend(exported["tiny"][1], int8=True)


def test_manifest_describes_the_state(exported):
    model, folder = exported["tiny-causal"]
    manifest = json.loads((folder / "manifest.json").read_text())
    state = manifest["streaming"]["state"]
    assert [s["name"] for s in state] == model.state_names()
    assert state[0]["shape"][:2] == ["batch", "sources"]
    assert manifest["latency_samples"] == model.config.latency_samples


def test_parity_check_fails_loudly():
    reference = np.random.randn(1, 2, 1000).astype(np.float32)
    with pytest.raises(ExportError, match="differs"):
        check_parity(reference, reference + 1e-2, "test graph")


def test_cached_export_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTUSS_CACHE", str(tmp_path))
    model = TUSS.from_variant("tiny-causal")
    first = cached_export(model)
    stamp = (first / "stream_step.onnx").stat().st_mtime_ns
    assert cached_export(model) == first
    assert (first / "stream_step.onnx").stat().st_mtime_ns == stamp
    with torch.no_grad():
        model.prompt_table.add_(1.0)  # other weights -> another cache entry
    assert cached_export(model) != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left


def test_onnx_inference_never_imports_torch(exported):
    _, folder = exported["tiny-causal"]
    code = (
        "import sys, numpy as np\n"
        "from fastuss_fx.runtime.onnx import OnnxStreamingBackend\n"
        f"b = OnnxStreamingBackend({str(folder)!r})\n"
        "out = b.separate(np.zeros((1, 4800), np.float32), ['speech'])\n"
        "assert out.shape == (1, 1, 4800)\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_wrong_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        OnnxBackend(tmp_path)
