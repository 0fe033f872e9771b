"""Export a model to ONNX: the offline graph and the causal streaming graphs, checked.

Offline (non-causal variants): ``offline.onnx`` maps ``mix`` [B, N], ``kinds`` and
``occurrences`` [B, S] (int64) to ``sources`` [B, S, N]; N, B and S are dynamic.

Streaming (causal variants): ``stream_step.onnx`` maps ``chunk`` [B, hops*hop] plus every
state tensor to ``output`` [B, S, hops*hop] plus the new state; ``prompt_vectors.npy`` holds
the precomputed prompt vectors the state starts from; ``stream_step.int8.onnx`` is the same
step with its learned matrix products quantized to int8. ``manifest.json`` names every input,
output and state tensor with its shape.

Every export is checked: ``onnx.checker``, then onnxruntime against torch on random audio.
A mismatch raises ``ExportError`` (never just a warning). The int8 graph is measured against
the float graph and kept only if it stays within ``INT8_MIN_SISDR_DB`` of it.

Export works on a fused eval-mode copy of the model (``TUSS.inference_copy``): the caller's
model keeps its weights and its train/eval mode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from fastuss_fx.atomic import atomic_folder
from fastuss_fx.config import config_to_dict
from fastuss_fx.export_cache import EXPORTER_VERSION, export_folder, key_prefix, source_hash
from fastuss_fx.metrics import si_sdr_db
from fastuss_fx.model.digest import state_sha256
from fastuss_fx.model.tuss import TUSS
from fastuss_fx.prompts import PROMPTS
from fastuss_fx.runtime.onnx import prompt_id_arrays
from fastuss_fx.runtime.stream_state import initial_stream_state

logger = logging.getLogger(__name__)

OPSET = 18
MAX_ABS_ERROR = 1e-4
MIN_PARITY_SISDR_DB = 60.0
INT8_MIN_SISDR_DB = 30.0
"""The int8 step graph is kept only if its output is this close (SI-SDR) to the float graph's."""


class ExportError(RuntimeError):
    """An exported graph is invalid or does not match the torch model."""


class _Offline(nn.Module):
    def __init__(self, model: TUSS) -> None:
        super().__init__()
        self.model = model

    def forward(self, mix: Tensor, kinds: Tensor, occurrences: Tensor) -> Tensor:
        return self.model.separate_ids(mix, kinds, occurrences)


class _StreamStep(nn.Module):
    def __init__(self, model: TUSS) -> None:
        super().__init__()
        self.model = model

    def forward(self, chunk: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        out, new_state = self.model.stream(chunk, list(state))
        return (out, *new_state)


class _PromptPass(nn.Module):
    """Prompt ids -> the stream state the prompts fix: prompt vectors, and (task-aware models) each
    cross-prompt block's prompt keys and values."""

    def __init__(self, model: TUSS) -> None:
        super().__init__()
        self.model = model

    def forward(self, kinds: Tensor, occurrences: Tensor) -> tuple[Tensor, ...]:
        vectors, keys_values = self.model.prompt_vectors(kinds, occurrences)
        return (vectors, *keys_values)


def fingerprint(model: TUSS) -> str:
    """The cache key of ``model``'s graphs: exporter version, torch version, export source hash,
    config and weights (hash it in inference form, so a training model and its fused copy agree)."""
    digest = hashlib.sha256(key_prefix().encode())
    digest.update(json.dumps(config_to_dict(model.config), sort_keys=True).encode())
    digest.update(state_sha256(model).encode())
    return digest.hexdigest()


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict) -> None:
    # the exporter puts the module back in its own mode afterwards: a new wrapper is in train mode,
    # which would switch the model inside to train mode for the parity checks that follow
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer chatter about python ints in shapes
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
        )
    onnx.checker.check_model(str(path), full_check=True)


def check_parity(reference: np.ndarray, estimate: np.ndarray, what: str) -> dict[str, float]:
    """Raise ``ExportError`` unless ONNX output matches torch (max abs error and SI-SDR)."""
    error = float(np.abs(reference - estimate).max())
    si_sdr = si_sdr_db(reference, estimate)
    if not (error <= MAX_ABS_ERROR and si_sdr >= MIN_PARITY_SISDR_DB):
        raise ExportError(
            f"{what}: onnxruntime differs from torch (max abs error {error:.2e} > {MAX_ABS_ERROR:g} "
            f"or SI-SDR {si_sdr:.1f} dB < {MIN_PARITY_SISDR_DB:g} dB)"
        )
    return {"max_abs_error": error, "si_sdr_db": si_sdr}


def _ids(prompts: list[str], batch: int) -> tuple[Tensor, Tensor]:
    """Prompt names -> kind and occurrence id tensors [B, S]."""
    kinds, occurrences = prompt_id_arrays(prompts, batch)
    return torch.from_numpy(kinds), torch.from_numpy(occurrences)


def export_offline(model: TUSS, directory: Path, check: bool = True) -> dict:
    """Write ``offline.onnx`` for a non-causal model (a fused eval copy of it); returns its manifest entry."""
    return _export_offline(model.inference_copy(), directory, check)


def _export_offline(model: TUSS, directory: Path, check: bool) -> dict:
    import onnxruntime as ort

    path = directory / "offline.onnx"
    kinds, occurrences = _ids(["speech", "sfx"], 1)
    example = 0.1 * torch.randn(1, 3 * model.config.stft.hop + 17)
    _export(
        _Offline(model),
        (example, kinds, occurrences),
        path,
        ["mix", "kinds", "occurrences"],
        ["sources"],
        {
            "mix": {0: "batch", 1: "samples"},
            "kinds": {0: "batch", 1: "sources"},
            "occurrences": {0: "batch", 1: "sources"},
            "sources": {0: "batch", 1: "sources", 2: "samples"},
        },
    )
    inputs = {"mix": ["batch", "samples"], "kinds": ["batch", "sources"], "occurrences": ["batch", "sources"]}
    present = {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}  # unused ids drop out
    entry: dict = {
        "file": path.name,
        "inputs": {name: dims for name, dims in inputs.items() if name in present},
        "outputs": {"sources": ["batch", "sources", "samples"]},
    }
    if check:  # another length, batch and prompt count than the traced example
        kinds, occurrences = _ids(["speech", "drums", "speech"], 2)
        mix = 0.3 * torch.randn(2, model.config.stft.sample_rate // 2 + 101)
        with torch.no_grad():
            reference = model.separate_ids(mix, kinds, occurrences).numpy()
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {"mix": mix.numpy(), "kinds": kinds.numpy(), "occurrences": occurrences.numpy()}
        got = session.run(None, {name: value for name, value in feeds.items() if name in present})[0]
        entry["parity"] = check_parity(reference, got, "offline graph")
    return entry


def export_streaming(model: TUSS, directory: Path, hops_per_step: int = 1, check: bool = True) -> dict:
    """Write ``stream_step.onnx`` and ``prompt_vectors.npy`` for a causal model; returns the manifest entry.

    The graph is exported and checked as a fused eval copy of ``model``. One step takes
    ``hops_per_step`` STFT hops, so a runtime fed arbitrary chunks buffers up to one step:
    its latency is ``stream_delay_samples + step_samples - 1`` (``latency_samples`` in the entry).
    The start-of-stream state is all zeros (shapes and dtypes in the manifest; ``position``, the
    frames streamed so far, is int64) except the masked attention key biases and
    ``prompt_vectors`` [B, S, K, D], gathered from the table ``prompt_vectors.npy`` [kinds,
    occurrences, K, D]: a causal prompt sees no audio, so its vector is a constant of the model.
    """
    return _export_streaming(model.inference_copy(), directory, hops_per_step, check)


def _export_streaming(model: TUSS, directory: Path, hops_per_step: int, check: bool) -> dict:
    if not isinstance(hops_per_step, int) or isinstance(hops_per_step, bool) or hops_per_step < 1:
        raise ValueError(f"hops_per_step must be a positive integer, got {hops_per_step!r}")
    names = model.state_names()
    kinds, occurrences = _ids(["speech", "sfx"], 1)
    task_aware = model.config.prompt_attention
    prompt_names = names[: 1 + 2 * len(model.cross_prompt)] if task_aware else names[:1]
    with torch.no_grad():
        state = model.initial_state_ids(kinds, occurrences)
        if not task_aware:
            np.save(directory / "prompt_vectors.npy", prompt_vector_table(model))
    symbolic = _state_shapes(model)
    if task_aware:  # the prompt state depends on the whole prompt list: a graph of its own, run once per stream
        prompt_dynamic = {"kinds": {0: "batch", 1: "sources"}, "occurrences": {0: "batch", 1: "sources"}}
        prompt_dynamic.update({n: dict(enumerate(symbolic[n])) for n in prompt_names})
        _export(
            _PromptPass(model),
            (kinds, occurrences),
            directory / "prompts.onnx",
            ["kinds", "occurrences"],
            prompt_names,
            _only_symbolic(prompt_dynamic),
        )
    samples = hops_per_step * model.config.stft.hop
    state_in, state_out = [f"in.{n}" for n in names], [f"out.{n}" for n in names]
    dynamic = {"chunk": {0: "batch"}, "output": {0: "batch", 1: "sources"}}
    dynamic.update({i: dict(enumerate(symbolic[n])) for i, n in zip(state_in, names, strict=True)})
    dynamic.update({o: dict(enumerate(symbolic[n])) for o, n in zip(state_out, names, strict=True)})
    chunk = 0.1 * torch.randn(1, samples)
    _export(
        _StreamStep(model),
        (chunk, *state),
        directory / "stream_step.onnx",
        ["chunk", *state_in],
        ["output", *state_out],
        _only_symbolic(dynamic),
    )
    entry: dict = {
        "step_file": "stream_step.onnx",
        **({"prompt_file": "prompts.onnx"} if task_aware else {"prompt_vectors_file": "prompt_vectors.npy"}),
        "hop": model.config.stft.hop,
        "hops_per_step": hops_per_step,
        "step_samples": samples,
        "stream_delay_samples": model.stream_delay_samples,
        "latency_samples": model.stream_delay_samples + samples - 1,
        "state": [
            {
                "name": n,
                "shape": symbolic[n],
                "dtype": str(t.dtype).removeprefix("torch."),
                "initial": ("prompt graph" if task_aware else "prompt table")
                if n in prompt_names
                else ("masked" if n.endswith("key_bias") else "zeros"),
            }
            for n, t in zip(names, state, strict=True)
        ],
    }
    signal = _check_signal(model, entry)
    streamed = _run_step_graph(directory / entry["step_file"], directory, entry, *signal)
    if check:
        entry["parity"] = check_parity(_stream_with_torch(model, *signal), streamed, "streaming graph")
    int8 = quantize_streaming(model, directory, entry, signal, streamed)
    if int8 is not None:
        entry["int8"] = int8
    return entry


def prompt_vector_table(model: TUSS) -> np.ndarray:
    """Causal models: every prompt vector, [kinds, occurrences, K, D] float32."""
    n_kinds, n_occurrences = model.prompt_table.shape[0], model.config.max_occurrences
    kinds = torch.arange(n_kinds).repeat_interleave(n_occurrences)[None]
    occurrences = torch.arange(n_occurrences).repeat(n_kinds)[None]
    with torch.no_grad():
        vectors = model.prompt_vectors(kinds, occurrences)[0][0]
    return vectors.reshape(n_kinds, n_occurrences, *vectors.shape[1:]).numpy().astype(np.float32)


def _state_shapes(model: TUSS) -> dict[str, list]:
    """Each state tensor's shape with batch-dependent axes named (found by varying B and S)."""
    with torch.no_grad():
        probes = [model.initial_state_ids(*_ids(list(PROMPTS[:s]), b)) for b, s in ((1, 1), (2, 1), (1, 3))]
    bands = model.n_bands
    names = {1: "batch", bands: f"batch*{bands}"}
    shapes = {}
    for i, name in enumerate(model.state_names()):
        base, two_batch, three_sources = (p[i].shape for p in probes)
        dims: list = []
        for axis, size in enumerate(base):
            if two_batch[axis] == size and three_sources[axis] == size:
                dims.append(int(size))
            elif three_sources[axis] == size:
                dims.append(names[size])
            elif size == 1 and two_batch[axis] == 1:
                dims.append("sources")
            else:
                dims.append("batch*sources" if size == 1 else f"batch*sources*{bands}")
        shapes[name] = dims
    return shapes


def _only_symbolic(dynamic: dict) -> dict:
    return {k: {a: d for a, d in axes.items() if isinstance(d, str)} for k, axes in dynamic.items()}


def _check_signal(model: TUSS, entry: dict) -> tuple[list[Tensor], Tensor, Tensor]:
    """Chunks of random stereo audio (long enough to roll the KV window over) and 3 prompts."""
    samples = entry["step_samples"]
    kinds, occurrences = _ids(["speech", "sfxbg", "speech"], 2)
    window = model.config.attention_window
    assert window is not None, "streaming export needs a causal model"  # ModelConfig gives those a window
    n_steps = window + 5
    generator = torch.Generator().manual_seed(0)
    chunks = (0.3 * torch.randn(2, n_steps * samples, generator=generator)).split(samples, dim=-1)
    return list(chunks), kinds, occurrences


def _run_step_graph(
    path: Path, directory: Path, entry: dict, chunks: list[Tensor], kinds: Tensor, occurrences: Tensor
) -> np.ndarray:
    """Stream ``chunks`` through an exported step graph with onnxruntime."""
    import onnxruntime as ort

    step = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = initial_stream_state(entry, directory, kinds.numpy(), occurrences.numpy())
    names = [i.name for i in step.get_inputs()]
    outputs = []
    for chunk in chunks:
        out, *state = step.run(None, dict(zip(names, [chunk.numpy(), *state], strict=True)))
        outputs.append(out)
    return np.concatenate(outputs, axis=-1)


def _stream_with_torch(model: TUSS, chunks: list[Tensor], kinds: Tensor, occurrences: Tensor) -> np.ndarray:
    """The torch model's ``stream`` over the same chunks (the parity reference)."""
    outputs = []
    with torch.no_grad():
        state = model.initial_state_ids(kinds, occurrences)
        for chunk in chunks:
            out, state = model.stream(chunk, state)
            outputs.append(out.numpy())
    return np.concatenate(outputs, axis=-1)


class _DropRecords(logging.Filter):
    """A logging filter that drops records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def quantize_streaming(
    model: TUSS, directory: Path, entry: dict, signal: tuple[list[Tensor], Tensor, Tensor], reference: np.ndarray
) -> dict | None:
    """Write ``stream_step.int8.onnx``: onnxruntime dynamic quantization (8-bit weights,
    activations quantized on the fly) of the learned matrix products; the STFT transforms
    stay float32. ``reference`` is the float graph's output on ``signal`` (chunks, kinds,
    occurrences). Returns the manifest entry, or None (and no file) if it loses too much.

    Weights are unsigned (``U8U8``), not signed (``U8S8``): without VNNI (AVX2-only x86 hosts)
    onnxruntime runs u8 x s8 products with ``vpmaddubsw``, whose 16-bit pair sums saturate
    (tiny-causal fell from 35 to 8 dB SI-SDR against the float graph); u8 x u8 products are
    widened to 16 bits before their 32-bit sums, so the same integer result comes out on
    AVX2, AVX-512 and VNNI hosts.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, path = directory / entry["step_file"], directory / "stream_step.int8.onnx"
    learned = tuple(p for name, _ in model.named_children() if name != "stft" for p in (f"/{name}/", f"/{name}."))
    nodes = [
        n.name
        for n in onnx.load(str(source)).graph.node
        if n.op_type in ("MatMul", "Gemm") and n.name.startswith(learned)
    ]
    # the quantizer logs advice about pre-processing on the root logger: drop just that record
    advice = _DropRecords("Please consider to run pre-processing")
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(
            source, path, op_types_to_quantize=["MatMul", "Gemm"], nodes_to_quantize=nodes, weight_type=QuantType.QUInt8
        )
    finally:
        logging.getLogger().removeFilter(advice)
    si_sdr = si_sdr_db(reference, _run_step_graph(path, directory, entry, *signal))
    if si_sdr < INT8_MIN_SISDR_DB:
        path.unlink()
        logger.warning(
            "%s: int8 step graph dropped (SI-SDR %.1f dB against float < %g dB)",
            model.config.name,
            si_sdr,
            INT8_MIN_SISDR_DB,
        )
        return None
    return {
        "step_file": path.name,
        "format": "u8u8-dynamic",
        "quantized_products": len(nodes),
        "si_sdr_vs_float_db": si_sdr,
    }


def export_model(model: TUSS, directory: str | Path, hops_per_step: int = 1, check: bool = True) -> Path:
    """Export the graphs that fit ``model`` into ``directory``; returns the manifest path.

    Works on a fused eval copy (``model`` keeps its weights and mode). The files are written into
    a staging folder beside ``directory`` that then replaces it as a whole
    (``fastuss_fx.atomic.atomic_folder``): a failed or interrupted export never leaves a
    half-written or mixed set behind.
    """
    return _export_model(model.inference_copy(), Path(directory), hops_per_step, check)


def _export_model(model: TUSS, directory: Path, hops_per_step: int, check: bool) -> Path:
    """``export_model`` for a model already in inference form."""
    with atomic_folder(directory) as staging:
        manifest = {
            "exporter_version": EXPORTER_VERSION,
            "source_hash": source_hash(),
            "opset": OPSET,
            "fingerprint": fingerprint(model),
            "variant": model.config.name,
            "sample_rate": model.config.stft.sample_rate,
            "causal": model.config.causal,
            "latency_samples": model.config.latency_samples,
            "config": config_to_dict(model.config),
        }
        if model.config.causal:
            manifest["streaming"] = _export_streaming(model, staging, hops_per_step, check)
        else:
            manifest["offline"] = _export_offline(model, staging, check)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    logger.info("exported %s to %s", model.config.name, directory)
    return directory / "manifest.json"


def cached_export(model: TUSS, key: str | None = None, hops_per_step: int = 1) -> Path:
    """The exported graphs of ``model`` from the cache, exporting them on first use; returns the folder.

    ``key`` identifies model and code (default: ``fingerprint`` of the model's inference form);
    ``model`` itself is not changed.
    """
    model = model.inference_copy()
    folder = export_folder(model.config.name, key or fingerprint(model), hops_per_step)
    if not (folder / "manifest.json").is_file():
        _export_model(model, folder, hops_per_step, check=True)
    return folder
