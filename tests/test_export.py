"""ONNX export: checked graphs, parity with torch, streaming state, cache."""

import copy
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from fastuss_fx import FasTUSS
from fastuss_fx.config import list_variants
from fastuss_fx.export import ExportError, cached_export, check_parity, export_model, export_offline, fingerprint
from fastuss_fx.export_cache import PACKAGE, source_hash, variant_key
from fastuss_fx.metrics import si_sdr_db
from fastuss_fx.model import TUSS
from fastuss_fx.runtime.onnx import OnnxBackend, OnnxStreamingBackend
from fastuss_fx.runtime.stream_state import fixed_dimensions
from fastuss_fx.runtime.streaming import HopStream, separate_streaming

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


@pytest.mark.parametrize("name", [v for v in list_variants() if not v.startswith("tiny")])
def test_every_variant_exports_with_parity(name, tmp_path):
    torch.manual_seed(0)
    manifest = json.loads(export_model(TUSS.from_variant(name), tmp_path / name).read_text())
    parity = (manifest.get("offline") or manifest["streaming"])["parity"]
    assert parity["max_abs_error"] <= 1e-4 and parity["si_sdr_db"] >= 60


def test_offline_graph_matches_torch_at_other_shapes(exported):
    model, folder = exported["tiny"]
    backend = OnnxBackend(folder, threads=1)
    for batch, length, prompts in [
        (1, 1, ["speech"]),
        (3, 12345, PROMPTS),
        (2, 48000, ["drums", "bass", "vocals", "other"]),
    ]:
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
    assert (
        dims["batch"] == 2
        and dims["sources"] == 3
        and dims[f"batch*{k}"] == 2 * k
        and dims[f"batch*sources*{k}"] == 6 * k
    )
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


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}, model.training


def _assert_untouched(model, snapshot):
    state, training = snapshot
    assert model.training == training
    now = model.state_dict()
    assert now.keys() == state.keys()
    assert all(torch.equal(now[k], state[k]) for k in state)


@pytest.mark.parametrize("name", ["tiny", "tiny-causal"])
def test_export_leaves_the_callers_model_as_it_is(name, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTUSS_CACHE", str(tmp_path / "cache"))
    model = TUSS.from_variant(name)  # training form: unfused branches, train mode
    snapshot = _snapshot(model)
    export_model(model, tmp_path / "out")
    _assert_untouched(model, snapshot)
    cached_export(model)
    _assert_untouched(model, snapshot)


def test_parity_reference_runs_in_eval_mode(tmp_path, monkeypatch):
    modes = []
    original = TUSS.separate_ids

    def spy(self, *args):
        modes.append(self.training)
        return original(self, *args)

    monkeypatch.setattr(TUSS, "separate_ids", spy)
    model = TUSS.from_variant("tiny")
    export_offline(model, tmp_path)
    assert modes and not any(modes)  # tracing and the torch reference
    assert model.training


def test_fingerprint_follows_the_weights():
    model = TUSS.from_variant("tiny-causal").inference_copy()
    key = fingerprint(model)
    assert fingerprint(model) == key and fingerprint(copy.deepcopy(model)) == key
    with torch.no_grad():
        next(model.decoder.parameters()).view(-1)[0] += 1e-3
    assert fingerprint(model) != key


def _copy_sources(root):
    (root / "runtime").mkdir(parents=True)
    shutil.copy(PACKAGE / "runtime" / "stream_state.py", root / "runtime")
    for entry in ("config.py", "prompts.py", "weights.py", "export.py", "export_cache.py", "model"):
        (shutil.copytree if (PACKAGE / entry).is_dir() else shutil.copy)(PACKAGE / entry, root / entry)
    return root


def test_keys_follow_the_export_source(tmp_path, monkeypatch):
    same, changed = _copy_sources(tmp_path / "same"), _copy_sources(tmp_path / "changed")
    tuss = changed / "model" / "tuss.py"
    tuss.write_text(tuss.read_text() + "\n# a change\n")
    assert source_hash(same) == source_hash(PACKAGE) != source_hash(changed)

    model = TUSS.from_variant("tiny").inference_copy()
    before = fingerprint(model), variant_key("tiny")[0]
    monkeypatch.setattr("fastuss_fx.export_cache.source_hash", lambda root=PACKAGE: "other code")
    after = fingerprint(model), variant_key("tiny")[0]
    assert before[0] != after[0] and before[1] != after[1]


def test_export_replaces_the_folder_as_a_whole(tmp_path, monkeypatch):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "stale.onnx").write_text("old export")
    model = TUSS.from_variant("tiny")

    def fail(*args):
        raise ExportError("boom")

    monkeypatch.setattr("fastuss_fx.export._export_offline", fail)
    with pytest.raises(ExportError, match="boom"):
        export_model(model, folder)
    assert [p.name for p in folder.iterdir()] == ["stale.onnx"]  # a failed export changes nothing
    monkeypatch.undo()
    export_model(model, folder, check=False)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "offline.onnx"]
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no staging or old folders left
    assert folder.stat().st_mode & 0o777 == 0o755 and (folder / "offline.onnx").stat().st_mode & 0o777 == 0o644


def test_two_hops_per_step_stream_like_one(exported, tmp_path):
    model, folder = exported["tiny-causal"]
    export_model(model, tmp_path / "h2", hops_per_step=2)
    one, two = OnnxStreamingBackend(folder), OnnxStreamingBackend(tmp_path / "h2")
    hop = one.hop_samples
    assert two.hop_samples == two.step_samples == 2 * hop and two.stft_hop_samples == hop
    assert two.latency_samples == one.latency_samples + hop
    mix = (0.3 * np.random.default_rng(1).standard_normal((2, 4321))).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(mix), PROMPTS).numpy()
    one_shot = separate_streaming(two, mix, PROMPTS)
    assert np.abs(one_shot - expected).max() <= 1e-4
    assert np.abs(one_shot - separate_streaming(one, mix, PROMPTS)).max() <= 1e-4
    stream, outs = HopStream(two, PROMPTS, 2), []
    for start, stop in [(0, 1), (1, 300), (300, 301), (301, 2000), (2000, 4321)]:
        outs.append(stream.push(mix[:, start:stop]))
    streamed = np.concatenate(outs, -1)
    assert streamed.shape[-1] == mix.shape[-1] - two.latency_samples
    assert np.abs(streamed - one_shot[..., : streamed.shape[-1]]).max() <= 1e-5
    fx = FasTUSS(["speech", "sfx"], mode="realtime", model=two)
    whole = fx(mix, 48000)
    live = np.concatenate([fx(mix[:, i : i + 500], 48000, reset=False) for i in range(0, mix.shape[-1], 500)], -1)
    assert fx.latency_samples == two.latency_samples
    assert np.abs(live - whole[:, : live.shape[-1]]).max() <= 1e-4


def test_hops_per_step_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="hops_per_step"):
        export_model(TUSS.from_variant("tiny-causal"), tmp_path, hops_per_step=0)


def test_task_aware_stream_graph_runs_its_prompt_graph_once_per_stream(tmp_path):
    torch.manual_seed(0)
    model = TUSS.from_variant("tiny-causal-ta").eval().fuse()
    export_model(model, tmp_path)
    entry = json.loads((tmp_path / "manifest.json").read_text())["streaming"]
    assert entry["prompt_file"] == "prompts.onnx" and "prompt_vectors_file" not in entry
    assert sum(item["initial"] == "prompt graph" for item in entry["state"]) == 1 + 2 * len(model.cross_prompt)
    backend = OnnxStreamingBackend(tmp_path)
    mix = (0.3 * np.random.randn(2, 40 * model.config.stft.hop)).astype(np.float32)
    outputs = {}
    for other in ("sfxbg", "musicbg"):
        outputs[other] = backend.separate(mix, ["speech", other])
        with torch.no_grad():
            expected = model(torch.from_numpy(mix), ["speech", other]).numpy()
        assert np.abs(outputs[other] - expected).max() <= 1e-4
    assert np.abs(outputs["sfxbg"][:, 0] - outputs["musicbg"][:, 0]).max() > 1e-3  # speech knows the task
