"""``fastuss eval``: SI-SDR(i) and SDR(i) per task and prompt, with 95 % confidence intervals, on a fixed
set of mixtures from one split: ``test`` (the default: the only numbers to publish), ``valid`` (what
training picks checkpoints on) or ``holdout`` (sources never trained on)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from fastuss_fx.data.manifest import SPLITS
    from fastuss_fx.data.tasks import TASKS

    parser = subparsers.add_parser(
        "eval", help="score a model on the test split (SI-SDRi with 95%% intervals; table + JSON)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="PATH", help="weights (.safetensors) or a training checkpoint (.pt)")
    source.add_argument("--identity", action="store_true", help="score the mixture itself (the baseline)")
    parser.add_argument(
        "--data", required=True, metavar="PATH", help="corpus folder (with manifest.jsonl) or manifest to mix from"
    )
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), help="tasks to score (default: all)")
    parser.add_argument(
        "--split",
        choices=[s for s in SPLITS if s != "train"],
        default="test",
        help="clips to mix: test (publish these), valid (checkpoint choice), holdout (default: %(default)s)",
    )
    parser.add_argument("--examples", type=int, default=30, help="mixtures per task (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=6.0, help="mixture length (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=4, help="(default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default: %(default)s)")
    parser.add_argument(
        "--engine",
        choices=["torch", "onnx", "onnx-int8"],
        default="torch",
        help="run the model itself or its exported onnxruntime graphs (default: %(default)s)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.data.dataset import validation_batches
    from fastuss_fx.data.manifest import ClipStore
    from fastuss_fx.data.mixer import MixConfig
    from fastuss_fx.data.tasks import get_tasks
    from fastuss_fx.engines import onnx_backend_for_model
    from fastuss_fx.train.distributed import pick_device
    from fastuss_fx.train.evaluate import (
        Separator,
        backend_separator,
        evaluate,
        format_table,
        identity,
        model_separator,
    )
    from fastuss_fx.weights import load_weights

    if args.examples < 1 or args.seconds <= 0:
        raise ValueError(f"--examples must be >= 1 and --seconds > 0, got {args.examples} and {args.seconds}")
    tasks = get_tasks(args.tasks)
    store = ClipStore.from_manifest(args.data, cache="float32")
    if not store.subset(args.split):
        found = sorted({row.split for row in store.rows})
        raise ValueError(
            f"{args.data}: no clips in the {args.split!r} split (this corpus has {', '.join(found)}); "
            "rebuild it or pass --split"
        )
    batches = validation_batches(
        store, tasks, MixConfig(chunk_seconds=args.seconds), args.examples, batch_size=args.batch_size, split=args.split
    )
    separate: Separator
    if args.identity:
        separate = identity
    elif args.engine == "torch":
        separate = model_separator(load_weights(args.model), pick_device(args.device))
    else:
        separate = backend_separator(onnx_backend_for_model(load_weights(args.model), int8=args.engine == "onnx-int8"))
    result = evaluate(separate, batches, tasks)
    result["model"] = "identity" if args.identity else str(args.model)
    result["engine"] = None if args.identity else args.engine
    result["settings"] = {
        "data": str(args.data),
        "split": args.split,
        "examples": args.examples,
        "seconds": args.seconds,
    }
    print(
        f"{result['model']} on the {args.split} split of {args.data}: "
        f"{args.examples} mixtures per task, {args.seconds:g} s; "
        "SI-SDRi ± half-width of its 95% interval over the n mixtures"
    )
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        logger.info("wrote %s", args.json)
    return 0
