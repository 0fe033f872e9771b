"""``fastuss demo``: separate the bundled example, write the results and a spectrogram PNG."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fastuss_fx.commands._common import add_untrained_arg, io_errors, run_with_progress
from fastuss_fx.outputs import output_folder

logger = logging.getLogger(__name__)

UNTRAINED_NOTE = (
    "NOTE: this model has no trained weights (--allow-untrained), so it runs RANDOMLY INITIALISED weights.\n"
    "      The outputs below show the pipeline working end to end; they are NOT a separation,\n"
    "      and the SI-SDR figures are what untrained weights give."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="separate the bundled example (speech + music + effects) and plot the result"
    )
    parser.add_argument(
        "-p", "--preset", default="dialog_only", help="shipped preset name or preset .yaml file (default: dialog_only)"
    )
    parser.add_argument(
        "-o",
        "--out",
        default="fastuss-demo",
        metavar="DIR",
        help="output folder (default: ./fastuss-demo); the demo's files in it are replaced",
    )
    parser.add_argument("--model", help="model variant (name or .yaml); default: the preset's, else the mode's default")
    parser.add_argument(
        "--segment-seconds",
        type=float,
        metavar="S",
        help="offline window length in seconds (default 6; e.g. 1 with --model tiny)",
    )
    add_untrained_arg(parser)
    parser.set_defaults(run=io_errors(run))


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.demo import EXAMPLE_SECONDS, run_demo

    out_dir = output_folder(Path(args.out))

    def work(progress):
        return run_demo(
            out_dir,
            args.preset,
            args.model,
            segment_seconds=args.segment_seconds,
            progress=progress,
            allow_untrained=args.allow_untrained,
        )

    result = run_with_progress(work, "demo", EXAMPLE_SECONDS)  # warnings: one line each (see fastuss_fx.cli)
    print(f"fastuss demo: preset {result.preset!r}, model {result.model!r} ({result.weights})")
    if not result.trained:
        print(UNTRAINED_NOTE)
    rtf = result.seconds_separate / max(result.seconds_audio, 1e-9)
    print(
        f"separated {result.seconds_audio:.1f} s of audio in {result.seconds_separate:.1f} s "
        f"(real-time factor {rtf:.2f}; model built in {result.seconds_load:.1f} s)"
    )
    if result.scores:
        print("SI-SDR against the true sources (dB; higher is better):")
        labels = {name: f"{result.preset} output" if name == "output" else name for name in result.scores}
        width = max(len(label) for label in labels.values())
        print(f"  {'':{width}s} {'estimate':>9s} {'mixture':>9s}")
        for name, (estimate, mixture) in result.scores.items():
            print(f"  {labels[name]:{width}s} {estimate:9.1f} {mixture:9.1f}")
    print(f"wrote to {result.out_dir}/:")
    print(f"  input mixture    {result.files['mixture']}")
    print(f"  preset output    {result.files['output']}")
    stems = [path for key, path in result.files.items() if key.startswith("stem:")]
    print(f"  stems            {', '.join(str(p) for p in stems)}")
    if result.png_skipped:
        print(f"  spectrograms     not drawn: {result.png_skipped}")
    else:
        print(f"  spectrograms     {result.files['png']}")
    return 0
