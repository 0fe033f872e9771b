"""``fastuss bench``: real-time factor, per-hop compute and share of matmul peak per path;
``--train``: training throughput (audio-seconds per second, share of matmul peak)."""

from __future__ import annotations

import argparse
import json

from fastuss_fx.processor import DEFAULT_MODELS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure RTF, hop compute time and matmul-peak share (onnxruntime)")
    parser.add_argument(
        "--offline",
        nargs="*",
        default=[DEFAULT_MODELS["offline"]],
        metavar="VARIANT",
        help="offline variants (default: %(default)s)",
    )
    parser.add_argument(
        "--realtime",
        nargs="*",
        default=[DEFAULT_MODELS["realtime"]],
        metavar="VARIANT",
        help="causal variants (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="audio seconds per measurement (default: %(default)s)"
    )
    parser.add_argument("--threads", type=int, default=None, help="offline threads (default: all cores)")
    parser.add_argument(
        "--memory-minutes",
        type=float,
        default=0.0,
        help="also measure peak RSS of the offline processor on this many minutes of stereo audio",
    )
    parser.add_argument("--no-int8", dest="int8", action="store_false", help="skip the int8 realtime rows")
    parser.add_argument(
        "--model",
        nargs="+",
        default=None,
        metavar="NAME",
        help="instead: these models' offline path through onnxruntime beside their torch forward, same weights, "
        "same run (e.g. an installed official TUSS; --threads default 2, --prompts default speech sfxbg musicbg)",
    )
    parser.add_argument("--prompts", nargs="+", default=None, help="prompts for --model rows")
    parser.add_argument(
        "--train",
        nargs="*",
        default=None,
        metavar="VARIANT",
        help="measure training throughput instead (default variants: fastuss-causal fastuss-8.3g); "
        "beside an older commit's trainer: python benchmarks/train_reference.py COMMIT (in a checkout)",
    )
    parser.add_argument(
        "--train-precision",
        nargs="+",
        default=["fp32"],
        choices=["fp32", "bf16"],
        help="training precisions (default: %(default)s)",
    )
    parser.add_argument(
        "--train-steps", type=int, default=3, help="timed training steps per row (default: %(default)s)"
    )
    parser.add_argument(
        "--train-processes",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="data-parallel processes sharing --threads and the batch, one row per N (default: %(default)s)",
    )
    parser.add_argument(
        "--train-rounds",
        type=int,
        default=1,
        help="alternating rounds over the training rows; each row keeps its median (default: %(default)s)",
    )
    parser.add_argument(
        "--train-compile",
        default="",
        metavar="BACKEND",
        help="torch.compile the training forward with this backend, as `fastuss train --compile` (default: eager)",
    )
    parser.add_argument("--train-batch", type=int, default=4, help="training batch size (default: %(default)s)")
    parser.add_argument("--train-seconds", type=float, default=2.0, help="training crop seconds (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.bench import format_rows, peak_rss_offline_mb
    from fastuss_fx.bench import run as bench

    if args.train is not None:
        return run_train(args)
    if args.seconds <= 0:
        raise ValueError(f"--seconds must be positive, got {args.seconds}")
    if args.model:
        from fastuss_fx.bench import bench_models
        from fastuss_fx.prompts import validate_prompts

        prompts = tuple(validate_prompts(args.prompts or ["speech", "sfxbg", "musicbg"]))
        rows = bench_models(args.model, args.threads or 2, args.seconds, prompts)
        offline = args.model
    else:
        rows = bench(args.offline, args.realtime, args.seconds, args.threads, args.int8)
        offline = args.offline
    memory = {v: peak_rss_offline_mb(v, args.memory_minutes) for v in offline} if args.memory_minutes > 0 else {}
    if args.json:
        out = [r.as_dict() for r in rows]
        for row in out:
            if row["path"] == "offline" and row["engine"] == "onnx" and row["name"] in memory:
                row["peak_rss_mb"] = round(memory[row["name"]], 1)
        print(json.dumps(out, indent=2))
    else:
        print(format_rows(rows))
        for variant, mb in memory.items():
            print(f"peak RSS, {variant} offline, {args.memory_minutes:g} min stereo 48 kHz: {mb:.0f} MB")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """``--train``: training steps per second on the reference workload (2 threads by default)."""
    from fastuss_fx.train.speed import format_train_rows
    from fastuss_fx.train.speed import run_train as bench

    if args.train_steps < 1 or args.train_batch < 1 or args.train_seconds <= 0 or args.train_rounds < 1:
        raise ValueError("--train-steps, --train-batch, --train-seconds and --train-rounds must be positive")
    variants = args.train or ["fastuss-causal", "fastuss-8.3g"]
    rows = bench(
        variants,
        args.threads or 2,
        tuple(args.train_precision),
        args.train_steps,
        args.train_batch,
        args.train_seconds,
        tuple(args.train_processes),
        args.train_rounds,
        args.train_compile,
    )
    print(json.dumps([r.as_dict() for r in rows], indent=2) if args.json else format_train_rows(rows))
    return 0
