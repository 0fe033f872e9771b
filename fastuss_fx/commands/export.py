"""``fastuss export``: write a variant's checked ONNX graphs (and manifest) to a folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fastuss_fx.processor import DEFAULT_MODELS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export ONNX graphs (offline or causal streaming) for other runtimes")
    parser.add_argument(
        "variants",
        nargs="*",
        default=list(DEFAULT_MODELS.values()),
        help="variants or YAML files (default: %(default)s)",
    )
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (one sub-folder per variant)")
    parser.add_argument(
        "--hops-per-step",
        type=int,
        default=1,
        help=(
            "STFT hops per streaming step: fewer graph calls, latency grows by a hop per extra hop "
            "(default: %(default)s)"
        ),
    )
    parser.add_argument("--weights", type=Path, help="a weights file to export instead of the shipped/default weights")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.export import export_model
    from fastuss_fx.weights import load_model, load_weights

    if args.hops_per_step < 1:
        raise ValueError(f"--hops-per-step must be >= 1, got {args.hops_per_step}")
    models = [(load_weights(args.weights), True)] if args.weights else [load_model(v) for v in args.variants]
    for model, trained in models:
        folder = args.out / model.config.name
        manifest = json.loads(export_model(model, folder, args.hops_per_step).read_text())
        entry = manifest.get("offline") or manifest["streaming"]
        parity = entry["parity"]
        note = "" if trained else "  (untrained weights: no trained weights ship for this variant yet)"
        print(
            f"{folder}: max abs error {parity['max_abs_error']:.1e}, parity SI-SDR {parity['si_sdr_db']:.0f} dB{note}"
        )
        if "int8" in entry:
            print(
                f"{folder / entry['int8']['step_file']}: int8 step graph, "
                f"SI-SDR {entry['int8']['si_sdr_vs_float_db']:.1f} dB against the float graph"
            )
    return 0
