"""Size sweep: train several variants side by side for the same wall time, then compare.

Every variant trains from scratch with the same data, seed, batch and schedule, in its own
``fastuss train`` process with ``--threads`` threads, all started together and given the same
``--time-budget``, so each gets the same share of the machine. The table compares the final
validation SI-SDRi (EMA weights, ``valid`` split, the run's own end-of-run evaluation) and the
audio each model saw. Not run in CI.

    nice -n 5 .venv/bin/python experiments/size_sweep.py --data /root/fastuss-data/corpus \\
        --minutes 32 fastuss-causal experiments/sweep/causal-d32.yaml fastuss-8.3g fastuss-4.7g
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TRAIN_FLAGS = [
    "--batch-size",
    "4",
    "--mix-chunk-seconds",
    "2",
    "--seed",
    "0",
    "--workers",
    "1",
    "--lr",
    "1e-3",
    "--min-lr",
    "1e-5",
    "--warmup-fraction",
    "0.05",
    "--schedule",
    "cosine",
    "--ema-decay",
    "0.999",
    "--eval-every",
    "1000000",
    "--checkpoint-every",
    "50",
    "--keep-best",
    "1",
    "--cache",
    "mmap",
    "--no-progress",
]


def run_name(variant: str) -> str:
    """``fastuss-8.3g`` for a variant name, the file name without ``.yaml`` for a variant file."""
    name = Path(variant).name
    return name.removesuffix(".yaml").removesuffix(".yml")


def launch(variant: str, args: argparse.Namespace) -> subprocess.Popen:
    out = Path(args.out) / run_name(variant)
    out.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("fastuss")),
        "train",
        "--variant",
        variant,
        "--data",
        args.data,
        "--out",
        str(out),
        "--time-budget",
        str(args.minutes),
        "--threads",
        str(args.threads),
        "--valid-tasks",
        *args.valid_tasks,
        "--valid-examples",
        str(args.valid_examples),
        "--valid-seconds",
        str(args.valid_seconds),
        *TRAIN_FLAGS,
    ]
    log = (out / "train.log").open("a")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def last_evaluation(run: Path) -> dict:
    """The last evaluation record and the end record of a run's metrics log."""
    evaluation, end = {}, {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "val_si_sdri" in record:
            evaluation = record
        if record.get("event") == "end":
            end = record
    return {**evaluation, "end": end}


def table(variants: list[str], args: argparse.Namespace) -> str:
    tasks = list(args.valid_tasks)
    lines = [
        "| variant | steps | audio hours seen | " + " | ".join(f"{t} SI-SDRi (dB)" for t in tasks) + " |",
        "|---|---|---|" + "---|" * len(tasks),
    ]
    for variant in variants:
        record = last_evaluation(Path(args.out) / run_name(variant))
        scores = record.get("val_si_sdri", {})
        cells = [f"{scores[t]:+.2f}" if scores.get(t) is not None else "–" for t in tasks]
        lines.append(
            f"| {run_name(variant)} | {record.get('step', 0)} | {record.get('audio_hours', 0):.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="variant names or YAML files")
    parser.add_argument("--data", required=True, help="corpus folder (manifest.jsonl)")
    parser.add_argument("--out", default="runs/sweep", help="one run folder per variant below this")
    parser.add_argument("--minutes", type=float, default=35.0, help="wall-time budget of every run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--valid-tasks", nargs="+", default=["dialog", "denoise"])
    parser.add_argument("--valid-examples", type=int, default=30)
    parser.add_argument("--valid-seconds", type=float, default=2.0)
    parser.add_argument("--table-only", action="store_true", help="only print the table of finished runs")
    args = parser.parse_args()
    if not args.table_only:
        tic = time.perf_counter()
        runs = [launch(v, args) for v in args.variants]
        codes = [run.wait() for run in runs]
        print(f"runs ended with {codes} after {(time.perf_counter() - tic) / 60:.1f} min", flush=True)
    print(table(args.variants, args))


if __name__ == "__main__":
    main()
