"""``fastuss separate``: run a preset over files and write the processed mix."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from fastuss_fx.commands._common import (
    add_processing_args,
    build_processor,
    check_bit_depth_fits,
    io_errors,
    report_written,
    run_with_progress,
    write_output,
)
from fastuss_fx.outputs import mix_output, output_folder

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("separate", help="apply a preset to audio files (keeps rate and channels)")
    add_processing_args(parser, default_preset=None)
    parser.set_defaults(run=io_errors(run))


def plan(inputs: list[Path], output: Path, preset_name: str, overwrite: bool) -> list[tuple[Path, Path]]:
    """Pair each input with its output path; one input may go to a file, several go to a folder."""
    from fastuss_fx.io import check_output

    to_folder = len(inputs) > 1 or output.is_dir() or str(output).endswith(("/", "\\"))
    pairs = []
    for source in inputs:
        target = output / mix_output(Path(source.name), preset_name) if to_folder else output
        pairs.append((source, target))
    targets = [t for _, t in pairs]
    if len(set(targets)) != len(targets):
        raise ValueError(f"several inputs would write the same output in {output}; rename the inputs")
    for _, target in pairs:
        check_output(target, inputs, overwrite)
    if to_folder:
        output_folder(output)
    return pairs


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.io import find_inputs, read_audio

    processor = build_processor(args)
    inputs = find_inputs(args.inputs)
    preset_name = Path(args.preset).stem
    pairs = plan(inputs, Path(args.output), preset_name, args.overwrite)
    check_bit_depth_fits(args, [target for _, target in pairs])
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
