"""``fastuss render``: batch-render many files on Ray (local by default), resumable via a manifest."""

from __future__ import annotations

import argparse
import logging
import sys

from fastuss_fx.commands._common import add_engine_arg, add_untrained_arg, io_errors

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render", help="render many files on Ray (resumable; outputs mirror the inputs' relative paths)"
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="audio files, folders (recursive) or quoted globs")
    parser.add_argument("-p", "--preset", required=True, help="shipped preset name or preset .yaml file")
    parser.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output folder (holds the manifest)")
    parser.add_argument("--stems", action="store_true", help="write a folder of stems per input instead of the mix")
    parser.add_argument("--mode", choices=("offline", "realtime"), help="override the preset's mode")
    parser.add_argument("--model", help="override the model variant (name or .yaml)")
    add_engine_arg(parser)
    parser.add_argument("--address", help="Ray cluster to join (default: a local Ray on this machine)")
    parser.add_argument("--workers", type=int, metavar="N", help="Ray workers (default: one per CPU)")
    parser.add_argument("--threads", type=int, default=1, metavar="N", help="CPU threads per worker (default: 1)")
    parser.add_argument("--limit", type=int, metavar="N", help="render at most N pending inputs; rerun for the rest")
    parser.add_argument("--overwrite", action="store_true", help="redo every input and replace existing outputs")
    add_untrained_arg(parser)
    parser.set_defaults(run=io_errors(run))


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.render import render

    s = render(
        args.inputs,
        args.output,
        args.preset,
        stems=args.stems,
        mode=args.mode,
        model=args.model,
        engine=args.engine,
        address=args.address,
        workers=args.workers,
        threads=args.threads,
        overwrite=args.overwrite,
        limit=args.limit,
        allow_untrained=args.allow_untrained,
    )
    for source, error in s.failures:
        print(f"failed: {source}: {error}", file=sys.stderr)
    rate = (
        f", {s.audio_seconds / 3600:.3f} audio h at {s.audio_hours_per_hour:.1f} audio h per wall h" if s.done else ""
    )
    left = f", {s.left} left" if s.left else ""
    print(f"render: {s.done} done, {s.skipped} skipped, {s.failed} failed{left}{rate}; manifest {s.manifest}")
    return 1 if s.failed else 0
