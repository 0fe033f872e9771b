"""Shared pieces of the CLI commands: options, processor, output lines and files, progress.

Output folders and names live in ``fastuss_fx.outputs`` (the render driver uses them too).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def add_processing_args(parser: argparse.ArgumentParser, default_preset: str | None, output_help: str) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="audio files or folders of audio files")
    parser.add_argument(
        "-p",
        "--preset",
        default=default_preset,
        required=default_preset is None,
        help="shipped preset name or preset .yaml file" + (f" (default: {default_preset})" if default_preset else ""),
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help=output_help)
    parser.add_argument("--mode", choices=("offline", "realtime"), help="override the preset's mode")
    parser.add_argument("--model", help="override the model variant (name or .yaml)")
    add_engine_arg(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument(
        "--bit-depth",
        choices=("16", "24", "32f"),
        help="PCM output depth: 16/24-bit integer or 32-bit float (WAV); default: the input's",
    )
    add_untrained_arg(parser)


def add_engine_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=("onnx", "onnx-int8", "torch"),
        default="onnx",
        help="onnxruntime, onnxruntime with the int8 step graph (causal models), or torch (default: %(default)s)",
    )


def add_untrained_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-untrained",
        action="store_true",
        help="run a model without trained weights (random init: not a separation); by default only "
        "trained weights run, and a model named without them is an error",
    )


def build_processor(args: argparse.Namespace) -> Any:
    from fastuss_fx.processor import FasTUSS

    overrides = {k: v for k, v in (("mode", args.mode), ("model", args.model)) if v is not None}
    return FasTUSS.from_preset(args.preset, engine=args.engine, allow_untrained=args.allow_untrained, **overrides)


def describe_model(processor: Any) -> str:
    """``fastuss-causal (trained weights; fastuss-4.6g has none yet)``: what runs, for output lines."""
    return f"{processor.model_name} ({processor.weights_note()})"


def report_written(args: argparse.Namespace, target: Path, seconds: float, processor: Any, elapsed: float) -> None:
    """One plain line on stdout per output file (nothing with ``-q``)."""
    if not getattr(args, "quiet", False):
        print(
            f"wrote {target} ({seconds:.1f} s, preset {Path(args.preset).stem}, model {describe_model(processor)}, "
            f"took {elapsed:.1f} s)",
            flush=True,
        )


def write_output(
    args: argparse.Namespace, source: Path, target: Path, audio: Any, rate: float, processor: Any | None = None
) -> None:
    """Write one output at ``--bit-depth`` (default: the input's depth).

    When ``processor``'s mix adds gain, a result that peaks above -1 dBFS is turned down as a
    whole first (reported in one warning); clipping left is counted and reported by ``write_audio``.
    """
    from fastuss_fx.io import headroom_for, write_audio

    headroom_db = headroom_for(processor.mix) if processor is not None else None
    write_audio(target, audio, rate, args.bit_depth, like=source, headroom_db=headroom_db)


def check_outputs(
    args: argparse.Namespace, targets: list[Path], inputs: list[Path], *, create_folders: bool = True
) -> None:
    """Fail before any work when an output cannot be written (see ``fastuss_fx.io.check_output``):
    two inputs on one output, a bad format, an input as output, an existing file without
    ``--overwrite``, a missing (without ``create_folders``) or read-only folder, or a
    ``--bit-depth`` the format cannot hold."""
    from fastuss_fx.io import check_output

    seen: set[Path] = set()
    for target in targets:
        if target in seen:
            raise ValueError(f"several inputs would write the same output {target}; rename the inputs")
        seen.add(target)
        check_output(target, inputs, args.overwrite, create_folders=create_folders)
    check_bit_depth_fits(args, targets)


def check_bit_depth_fits(args: argparse.Namespace, targets: list[Path]) -> None:
    """Fail before any work when ``--bit-depth 32f`` meets a FLAC output (FLAC holds 16 or 24 bits)."""
    if getattr(args, "bit_depth", None) == "32f":
        for target in targets:
            if target.suffix.lower() == ".flac":
                raise ValueError(
                    f"cannot write {target} at bit depth 32f: FLAC holds 16 or 24 bits; "
                    "use --bit-depth 24 or a .wav output"
                )


def run_with_progress(work: Callable[[Callable[[int, int], None]], Any], label: str, seconds: float) -> Any:
    """Run ``work(progress)`` under a tqdm bar in audio seconds (hidden when stderr is not a TTY)."""
    from tqdm import tqdm

    with tqdm(total=round(seconds, 2), unit="s", desc=label, disable=None, leave=False, file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.n = round(seconds * done / max(total, 1), 2)
            bar.refresh()

        return work(progress)


def io_errors(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn stray OS/decoder errors into one-line messages and exit code 1."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (ValueError, TypeError, FileNotFoundError, PermissionError, FileExistsError, NotADirectoryError):
            raise
        except (OSError, RuntimeError) as err:
            print(f"fastuss {args.command}: error: {err}", file=sys.stderr)
            return 1

    return wrapped
