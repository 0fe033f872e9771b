"""``fastuss separate``: run a preset over files and write the processed mix."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from fastuss_fx.commands._common import (
    add_processing_args,
    build_processor,
    check_outputs,
    io_errors,
    report_written,
    run_with_progress,
    write_output,
)
from fastuss_fx.outputs import mix_output, output_folder

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("separate", help="apply a preset to audio files (keeps rate and channels)")
    add_processing_args(
        parser,
        default_preset=None,
        output_help="output file (its folder must exist), or a folder (created; OUT/ or several inputs) that "
        "gets IN_PRESET.EXT per input",
    )
    parser.set_defaults(run=io_errors(run))


def plan(args: argparse.Namespace, inputs: list[Path], output: Path, preset_name: str) -> list[tuple[Path, Path]]:
    """Pair each input with its output path, checked before any work; one input may go to a file
    (in a folder that exists), several go to a folder (created if needed)."""
    to_folder = len(inputs) > 1 or output.is_dir() or str(output).endswith(("/", "\\"))
    pairs = []
    for source in inputs:
        target = output / mix_output(Path(source.name), preset_name) if to_folder else output
        pairs.append((source, target))
    check_outputs(args, [t for _, t in pairs], inputs, create_folders=to_folder)
    if to_folder:
        output_folder(output)
    return pairs


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.io import find_inputs, read_audio

    processor = build_processor(args)
    inputs = find_inputs(args.inputs)
    preset_name = Path(args.preset).stem
    pairs = plan(args, inputs, Path(args.output), preset_name)
    for source, target in pairs:
        audio, rate = read_audio(source)
        seconds = audio.shape[-1] / rate
        start = time.perf_counter()
        # the lambda runs inside this iteration (run_with_progress calls it at once)
        out = run_with_progress(lambda p: processor.process(audio, rate, progress=p), source.name, seconds)  # noqa: B023
        write_output(args, source, target, out, rate, processor)
        elapsed = time.perf_counter() - start
        report_written(args, target, seconds, processor, elapsed)
        logger.info("%s -> %s (real-time factor %.2f)", source, target, elapsed / max(seconds, 1e-9))
    return 0
