"""Training throughput side by side: this checkout's trainer against the one of a reference commit.

Each trainer runs in its own process (``PYTHONPATH`` = its own copy of ``fastuss_fx``) and
uses its own ``train_step`` and ``make_optimizer`` on the same workload: the same initial
weights, the same batches (mixed once from the train-pack by the reference code, prompts
``speech, sfx, musicbg``), the same thread count. The processes take turns, a few steps
each (alternating rounds), so both see the same machine load. Printed per variant: audio-
seconds per second of each trainer and their ratio, and the training loss after the same
number of audio-seconds (mean of the last rounds, and on held-out batches in eval mode).

    .venv/bin/python benchmarks/train_throughput.py --variants fastuss-causal fastuss-8.3g

The reference tree comes from ``git archive REF fastuss_fx`` (``reference_commit.reference_tree``; git
state is not touched).
Data mixing is excluded from the timed steps (the trainer mixes in DataLoader workers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["speech", "sfx", "musicbg"]


def make_batches(path: Path, data: str, n: int, batch_size: int, seconds: float, seed: int) -> None:
    """Mix ``n`` batches with the (reference) package on ``PYTHONPATH`` and save them."""
    import numpy as np
    import torch

    from fastuss_fx.data.manifest import ClipStore
    from fastuss_fx.data.mixer import MixConfig, Mixer

    cfg = MixConfig(chunk_seconds=seconds)
    store = ClipStore.from_manifest(data, sample_rate=cfg.sample_rate)
    mixer = Mixer(store, store.subset("train"), cfg)
    mixes, targets = [], []
    for i in range(n * batch_size):
        example = mixer.example(np.random.default_rng([seed, i]), PROMPTS)
        mixes.append(torch.from_numpy(example.mixture))
        targets.append(torch.from_numpy(example.targets))
    torch.save(
        {
            "mixture": torch.stack(mixes).unflatten(0, (n, batch_size)),
            "targets": torch.stack(targets).unflatten(0, (n, batch_size)),
        },
        path,
    )


def worker(args: argparse.Namespace) -> None:
    """Persistent trainer: ``run K`` on stdin -> K steps -> one JSON line of times and losses."""
    import torch

    torch.set_num_threads(args.threads)
    from fastuss_fx.config import load_variant
    from fastuss_fx.data.dataset import Batch
    from fastuss_fx.model import TUSS
    from fastuss_fx.train.config import TrainConfig
    from fastuss_fx.train.loop import make_optimizer, train_step
    from fastuss_fx.train.loss import pit_loss

    data = torch.load(args.batches)
    n_train = data["mixture"].shape[0] - args.held_out
    model = TUSS(load_variant(args.variant))
    model.load_state_dict(torch.load(args.init))
    model = model.float().train()
    options = json.loads(args.options)
    cfg = TrainConfig(variant=args.variant, batch_size=data["mixture"].shape[1], lr=args.lr, **options)
    optimizer = make_optimizer(model, cfg)
    extra = ()  # the reference trainer's train_step has no ``forward`` argument
    if getattr(cfg, "compile", ""):
        from fastuss_fx.train.loop import step_callables

        model, forward = step_callables(model, cfg, torch.device("cpu"), data_parallel=False)
        extra = (forward,)
    prompts = [list(PROMPTS)] * data["mixture"].shape[1]
    step = 0
    import fastuss_fx

    print(json.dumps({"ready": fastuss_fx.__file__}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "run":
            times, losses = [], []
            for _ in range(int(command[1])):
                i = step % n_train
                batch = Batch(data["mixture"][i], data["targets"][i], prompts)
                start = time.perf_counter()
                loss, _, _ = train_step(model, None, batch, optimizer, cfg, *extra)
                times.append(time.perf_counter() - start)
                losses.append(loss)
                step += 1
            print(json.dumps({"times": times, "losses": losses}), flush=True)
        elif command[0] == "eval":
            model.eval()
            with torch.no_grad():
                held = [
                    pit_loss(model(data["mixture"][i], prompts), data["targets"][i], data["mixture"][i], prompts)[
                        0
                    ].item()
                    for i in range(n_train, n_train + args.held_out)
                ]
            model.train()
            print(json.dumps({"held_out": sum(held) / len(held)}), flush=True)
        else:
            break


class Trainer:
    """A worker process and what it reported."""

    def __init__(self, name: str, pythonpath: Path, argv: list[str]):
        self.name, self.times, self.losses = name, [], []
        env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": argv[argv.index("--threads") + 1]}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(pythonpath),
        )
        self.package = self._read()["ready"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"trainer {self.name} exited")
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def run(self, steps: int) -> None:
        reply = self.ask(f"run {steps}")
        self.times += reply["times"]
        self.losses += reply["losses"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def compare(variant: str, ref_tree: Path, batches: Path, args: argparse.Namespace, options: dict) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from fastuss_fx.config import load_variant
    from fastuss_fx.model import TUSS

    init = batches.with_name(f"init-{variant}.pt")
    torch.manual_seed(args.seed)
    torch.save(TUSS(load_variant(variant)).state_dict(), init)
    common = [
        "--variant",
        variant,
        "--batches",
        str(batches),
        "--init",
        str(init),
        "--threads",
        str(args.threads),
        "--lr",
        str(args.lr),
        "--held-out",
        str(args.held_out),
    ]
    trainers = [
        Trainer("reference", ref_tree, [*common, "--options", "{}"]),
        Trainer("new", ROOT, [*common, "--options", json.dumps(options)]),
    ]
    print(f"  {variant}: " + ", ".join(f"{t.name} = {t.package}" for t in trainers), file=sys.stderr, flush=True)
    try:
        for trainer in trainers:  # first steps (allocation, one-off set-up, compiling) are not timed
            trainer.run(1)
            trainer.times, trainer.losses = [], []
        rounds = -(-args.steps // args.round_steps)
        for r in range(rounds):
            for trainer in trainers if r % 2 == 0 else trainers[::-1]:
                trainer.run(min(args.round_steps, args.steps - r * args.round_steps))
            print(
                f"  {variant} round {r + 1}/{rounds}: "
                + ", ".join(
                    f"{t.name} {sum(t.times[-args.round_steps :]) / len(t.times[-args.round_steps :]):.2f} s/step"
                    for t in trainers
                ),
                file=sys.stderr,
                flush=True,
            )
        held = {t.name: t.ask("eval")["held_out"] for t in trainers}
    finally:
        for trainer in trainers:
            trainer.close()
    audio = args.batch_size * args.seconds
    out = {"variant": variant, "steps": args.steps + 1, "audio_seconds_trained": (args.steps + 1) * audio}
    tail = max(1, args.steps // 4)
    for t in trainers:
        out[t.name] = {
            "s_per_step": sum(t.times) / len(t.times),
            "audio_seconds_per_second": audio * len(t.times) / sum(t.times),
            "train_loss_last_quarter": sum(t.losses[-tail:]) / tail,
            "held_out_loss": held[t.name],
        }
    out["ratio"] = out["new"]["audio_seconds_per_second"] / out["reference"]["audio_seconds_per_second"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["fastuss-causal", "fastuss-8.3g"])
    parser.add_argument("--ref", default="0ed1e96", help="reference commit (default: %(default)s)")
    parser.add_argument("--data", default="/work/shared/data/train-pack")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per trainer (after one untimed step)")
    parser.add_argument("--round-steps", type=int, default=4, help="steps per turn")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", type=int, default=2, help="held-out batches scored after training")
    parser.add_argument(
        "--options", default="{}", help='JSON TrainConfig fields for the new trainer, e.g. \'{"precision": "bf16"}\''
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--batches", help=argparse.SUPPRESS)
    parser.add_argument("--init", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from reference_commit import reference_tree  # beside this script

    with tempfile.TemporaryDirectory() as tmp:
        ref_tree = Path(tmp) / "ref"
        ref_tree.mkdir()
        reference_tree(args.ref, str(ref_tree))
        batches = Path(tmp) / "batches.pt"
        n_batches = args.steps + 1 + args.held_out
        code = (
            "import sys; sys.argv[1:] = []; import train_throughput as b; from pathlib import Path; "
            f"b.make_batches(Path({str(batches)!r}), {args.data!r}, {n_batches:d}, {args.batch_size:d}, "
            f"{args.seconds!r}, {args.seed:d})"
        )
        env = {**os.environ, "PYTHONPATH": f"{ref_tree}{os.pathsep}{Path(__file__).resolve().parent}"}
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(ref_tree))
        results = [compare(v, ref_tree, batches, args, json.loads(args.options)) for v in args.variants]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'variant':<16}{'trainer':<11}{'s/step':>8}{'audio-s/s':>11}{'loss, last quarter':>20}{'held-out loss':>15}"
    )
    for r in results:
        for name in ("reference", "new"):
            m = r[name]
            print(
                f"{r['variant']:<16}{name:<11}{m['s_per_step']:>8.2f}{m['audio_seconds_per_second']:>11.2f}{m['train_loss_last_quarter']:>20.2f}{m['held_out_loss']:>15.2f}"
            )
        print(
            f"{r['variant']:<16}{'ratio':<11}{'':>8}{r['ratio']:>10.2f}x   "
            f"({r['steps']} steps = {r['audio_seconds_trained']:g} audio-s each, "
            f"{args.threads} threads, reference {args.ref})"
        )


if __name__ == "__main__":
    main()
