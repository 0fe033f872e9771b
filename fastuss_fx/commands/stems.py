"""``fastuss stems``: write one file per separated source."""

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
from fastuss_fx.outputs import output_folder, stem_outputs

logger = logging.getLogger(__name__)


LAYOUT = (
    "OUT/NAME/STEM.EXT, one subfolder per input named after its file (song.wav -o stems/ gives "
    "stems/song/vocals.wav, stems/song/drums.wav, ...)"
)
"""Where ``fastuss stems`` writes, for its help texts (the paths come from ``outputs.stem_outputs``)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stems",
        help="split audio files into one file per source, as OUT/NAME/STEM.EXT",
        description=f"Write one file per stem of the preset, whatever its mix, as {LAYOUT}. "
        "Files keep the input's format (WAV where it cannot be written).",
    )
    add_processing_args(
        parser, default_preset="music_stems", output_help=f"output folder (created if needed); {LAYOUT}"
    )
    parser.set_defaults(run=io_errors(run))


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.io import find_inputs, read_audio

    processor = build_processor(args)
    inputs = find_inputs(args.inputs)
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"output {folder} is a file; stems go into a folder")
    jobs = []
    for source in inputs:
        targets = {name: folder / rel for name, rel in stem_outputs(Path(source.name), processor.stems).items()}
        jobs.append((source, targets))
    check_outputs(args, [t for _, targets in jobs for t in targets.values()], inputs)
    output_folder(folder)
    for source, targets in jobs:
        audio, rate = read_audio(source)
        seconds = audio.shape[-1] / rate
        start = time.perf_counter()
        # the lambda runs inside this iteration (run_with_progress calls it at once)
        stems = run_with_progress(lambda p: processor.separate(audio, rate, progress=p), source.name, seconds)  # noqa: B023
        output_folder(folder / source.stem)
        for name, target in targets.items():
            write_output(args, source, target, stems[name], rate)
        elapsed = time.perf_counter() - start
        for target in targets.values():
            report_written(args, target, seconds, processor, elapsed)
        logger.info(
            "%s -> %s/ (%d stems, real-time factor %.2f)",
            source,
            folder / source.stem,
            len(stems),
            elapsed / max(seconds, 1e-9),
        )
    return 0
