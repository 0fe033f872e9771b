"""Throughput of ``fastuss render`` (audio hours per wall-clock hour) for 1 and 2 Ray workers.

Generates short test files, renders them once per worker count on one local Ray, and prints the
figures side by side. A script that reports numbers, not a test: nothing is asserted.

    .venv/bin/python benchmarks/render_throughput.py --files 8 --seconds 20
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile


def make_files(folder: Path, count: int, seconds: float, rate: int, channels: int) -> None:
    """Noise plus a few tones (not silence, so nothing downstream can shortcut)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    for i in range(count):
        tones = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(80, 4000, 3))
        audio = 0.05 * tones + 0.02 * rng.standard_normal((channels, t.size))
        with AudioFile(str(folder / f"clip{i:03d}.wav"), "w", rate, channels) as f:
            f.write(audio.astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each file")
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("-p", "--preset", default="remove_music")
    parser.add_argument("--model", help="model variant (default: the preset's, i.e. the offline default)")
    args = parser.parse_args()

    import ray

    from fastuss_fx.render import render

    logging.basicConfig(level=logging.ERROR)
    ray.init(num_cpus=max(args.workers), include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        make_files(inputs, args.files, args.seconds, args.rate, args.channels)
        for n in args.workers:
            s = render([inputs], Path(tmp) / f"out{n}", args.preset, model=args.model, workers=n, progress=False)
            if s.failed:
                raise SystemExit(f"{s.failed} file(s) failed: {s.failures[0]}")
            busy = s.wall_seconds - s.startup_seconds
            rows.append(
                (
                    n,
                    s.done,
                    s.audio_seconds,
                    s.wall_seconds,
                    s.startup_seconds,
                    s.audio_hours_per_hour,
                    s.audio_seconds / busy if busy > 0 else 0.0,
                )
            )
    ray.shutdown()

    print(
        f"fastuss render throughput: {args.files} x {args.seconds:g} s, {args.rate} Hz, {args.channels} ch, "
        f"preset {args.preset}, model {args.model or 'preset default'}"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    header = ("workers", "files", "audio s", "wall s", "startup s", "audio h/wall h", "excl. startup", "speedup")
    print("  ".join(f"{h:>14}" for h in header))
    base = rows[0][5]
    for n, done, audio, wall, startup, rate, steady in rows:
        cells = (
            n,
            done,
            f"{audio:.0f}",
            f"{wall:.1f}",
            f"{startup:.1f}",
            f"{rate:.2f}",
            f"{steady:.2f}",
            f"{rate / base:.2f}x" if base else "-",
        )
        print("  ".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    main()
