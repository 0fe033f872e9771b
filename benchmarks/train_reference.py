"""Training throughput of this checkout beside the trainer of an older commit, in one run.

The rows of ``fastuss bench --train`` plus, per variant, a row of commit ``REF``'s own
``train_step`` (fp32, eager, one process, the same threads and workload) run in a process that
imports that commit's package (``reference_commit.py``: ``git archive``, git state untouched).
Every configuration is timed once per round, the rounds alternate, each row keeps its median,
and every row gets its ratio of audio-seconds per second to the reference row of its variant
(``vs ref``). Prints figures; asserts nothing.

    python benchmarks/train_reference.py 0ed1e96 fastuss-causal --threads 2 --precision bf16 \\
        --processes 2 --compile inductor --rounds 4 --steps 4 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from reference_commit import reference_step_seconds, reference_tree

from fastuss_fx.train.speed import format_train_rows, run_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ref", help="the commit whose trainer is timed beside this one (e.g. 0ed1e96)")
    parser.add_argument(
        "variants", nargs="*", default=["fastuss-causal", "fastuss-8.3g"], help="(default: %(default)s)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads of every row (default: %(default)s)")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"], help="this trainer's")
    parser.add_argument("--processes", type=int, nargs="+", default=[1], help="data-parallel processes, one row per N")
    parser.add_argument("--compile", default="", metavar="BACKEND", help="torch.compile backend (default: eager)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per row and round (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=4, help="batch size (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=2.0, help="crop seconds (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fastuss-reference-") as tmp:
        try:
            tree = reference_tree(args.ref, tmp)
        except ValueError as error:
            print(f"train_reference: error: {error}", file=sys.stderr)
            return 2

        def seconds(variant: str) -> float:
            return reference_step_seconds(tree, variant, args.threads, args.steps, args.batch, args.seconds)

        rows = run_train(
            args.variants,
            args.threads,
            tuple(args.precision),
            args.steps,
            args.batch,
            args.seconds,
            tuple(args.processes),
            args.rounds,
            args.compile,
            reference=(args.ref, seconds),
        )
    print(json.dumps([r.as_dict() for r in rows], indent=2) if args.json else format_train_rows(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
