"""Rebuild the ONNX graphs that ship beside the trained weights: ``fastuss_fx/pretrained/onnx/<variant>/``.

With them a base install (no torch) runs every shipped model. Run this (``make graphs``) after
shipping new weights, or after a change to the model or export code that changes what a graph
computes: ``tests/test_shipped_graphs.py`` fails until then. Per variant with shipped weights:

1. export its graphs as the processor would (``fastuss_fx.export.export_model``, checked
   against torch);
2. store the graph initializers (the fused learned parameters) as float16, each followed by a
   Cast to float32 that onnxruntime folds when it opens the session: half their size, and the
   output stays within ``MIN_PARITY_SISDR_DB`` of the float32 graph (checked here, about 80 dB).
   Constants the code computes (the STFT bases, 7.4 MB of each graph) stay float32: rounding
   them to float16 costs about 40 dB;
3. leave out the int8 step graph (repository size; ``engine="onnx-int8"`` exports it, with torch);
4. record the weights file's SHA-256 in ``manifest.json`` (``weights``): the runtime uses the
   graphs only while it matches the shipped file (``fastuss_fx.export_cache.shipped_graph_folder``).

Needs the ``[torch]`` extra. Run from the repository root: ``python scripts/ship_graphs.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fastuss_fx.atomic import atomic_folder
from fastuss_fx.export import MIN_PARITY_SISDR_DB, export_model
from fastuss_fx.metrics import si_sdr_db
from fastuss_fx.pretrained import file_sha256, shipped_weights_path, trained_variants
from fastuss_fx.runtime.onnx import OnnxBackend, OnnxStreamingBackend
from fastuss_fx.weights import load_model

logger = logging.getLogger("ship_graphs")

GRAPHS = Path(__file__).resolve().parents[1] / "fastuss_fx" / "pretrained" / "onnx"
CHECK_PROMPTS = ["speech", "sfx", "musicbg"]


def store_initializers_as_float16(source: Path, target: Path) -> int:
    """Copy an ONNX graph with its float32 initializers stored as float16 plus a Cast; returns how many."""
    model = onnx.load(str(source))
    graph = model.graph
    casts = []
    for tensor in graph.initializer:
        values = numpy_helper.to_array(tensor)
        half = values.astype(np.float16)
        if tensor.data_type != TensorProto.FLOAT or not np.isfinite(half).all():
            continue  # other dtypes, and values float16 cannot hold, stay as they are
        stored = f"{tensor.name}.float16"
        casts.append(helper.make_node("Cast", [stored], [tensor.name], name=f"{stored}.cast", to=TensorProto.FLOAT))
        tensor.CopyFrom(numpy_helper.from_array(half, stored))
    nodes = [*casts, *graph.node]  # the casts first: every node reads the float32 names as before
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(target))
    return len(casts)


def _separate(folder: Path, mix: np.ndarray) -> np.ndarray:
    backend_class = (
        OnnxStreamingBackend if "streaming" in json.loads((folder / "manifest.json").read_text()) else OnnxBackend
    )
    return backend_class(folder, threads=None).separate(mix, CHECK_PROMPTS)


def ship(variant: str, target: Path) -> dict:
    """Export ``variant``'s shipped weights into ``target`` (replaced as a whole); returns its manifest."""
    weights = shipped_weights_path(variant)
    if weights is None:
        raise ValueError(f"no weights ship for {variant!r}; shipped: {', '.join(trained_variants())}")
    model, _ = load_model(variant)
    with tempfile.TemporaryDirectory(prefix="fastuss-ship-") as tmp, atomic_folder(target) as staging:
        exported = Path(tmp) / variant
        manifest = json.loads(export_model(model, exported).read_text())
        if manifest["causal"]:
            entry = manifest["streaming"]
            entry.pop("int8", None)
            shutil.copy2(exported / entry["prompt_vectors_file"], staging / entry["prompt_vectors_file"])
            graph = entry["step_file"]
        else:
            graph = manifest["offline"]["file"]
        converted = store_initializers_as_float16(exported / graph, staging / graph)
        manifest["weights"] = {"file": weights.name, "sha256": file_sha256(weights)}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        mix = (0.3 * np.random.default_rng(0).standard_normal((2, manifest["sample_rate"]))).astype(np.float32)
        si_sdr = si_sdr_db(_separate(exported, mix), _separate(staging, mix))
        if si_sdr < MIN_PARITY_SISDR_DB:
            raise RuntimeError(
                f"{variant}: float16 initializers change the output too much "
                f"(SI-SDR {si_sdr:.1f} dB against float32 < {MIN_PARITY_SISDR_DB:g} dB)"
            )
        manifest["storage"] = {
            "float16_initializers": converted,
            "si_sdr_vs_float32_db": round(si_sdr, 1),
            "int8": "not shipped: exported on first use of engine='onnx-int8' (needs torch)",
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    logger.info("%s: %d float16 initializers, %.1f dB SI-SDR against float32", variant, converted, si_sdr)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", help="variants to rebuild (default: every one with shipped weights)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)  # not the root logger: the int8 quantizer logs chatter there
    for variant in args.variants or trained_variants():
        ship(variant, GRAPHS / variant)
    for stale in sorted(p for p in GRAPHS.glob("*") if p.is_dir() and p.name not in trained_variants()):
        logger.info("removing %s: no weights ship for it", stale)
        shutil.rmtree(stale)


if __name__ == "__main__":
    main()
