"""Eager vs ``torch.compile`` training steps of one variant, side by side in one process.

Reference workload: training form, batch 4 x 2-s crops at 48 kHz, prompts ``speech, sfx,
musicbg``, PIT loss, backward and AdamW step. Compiles ``model.separate_ids`` (what
``fastuss train --compile`` does), then alternates rounds of eager and compiled steps so both see
the same machine load. Prints the compile time and seconds per step of each round.

    python benchmarks/train_compile.py --variant fastuss-causal --threads 2 --rounds 3
"""

from __future__ import annotations

import argparse
import time

import torch

from fastuss_fx.config import load_variant
from fastuss_fx.model import TUSS
from fastuss_fx.train.loss import pit_loss

PROMPTS = ["speech", "sfx", "musicbg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="fastuss-causal")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="steps per round and mode")
    parser.add_argument("--backend", default="inductor")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = TUSS(load_variant(args.variant)).train()
    prompts = [PROMPTS] * 4
    mix, targets = 0.1 * torch.randn(4, 96000), 0.05 * torch.randn(4, len(PROMPTS), 96000)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    ids = model.prompt_ids(prompts, 4)

    def step(forward) -> None:
        loss, _ = pit_loss(forward(mix, *ids), targets, mix, prompts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    compiled = torch.compile(model.separate_ids, backend=args.backend)
    tic = time.perf_counter()
    step(compiled)
    print(f"compile + first step: {time.perf_counter() - tic:.1f} s", flush=True)
    for round_ in range(args.rounds):
        for name, forward in (("eager", model.separate_ids), ("compiled", compiled)):
            tic = time.perf_counter()
            for _ in range(args.steps):
                step(forward)
            print(f"round {round_}: {name:<8} {(time.perf_counter() - tic) / args.steps:.2f} s/step", flush=True)


if __name__ == "__main__":
    main()
