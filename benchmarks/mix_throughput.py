"""Time per training example of the mixer: dry mixtures against the default realistic channel.

Draws ``draw_batch`` batches from a corpus (default: the shared train pack) for each
configuration in alternating rounds on one thread, so a busy machine slows both alike, and
prints milliseconds per example and the ratio. A script that reports numbers, not a test.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mix_throughput.py --data ../shared/data/train-pack
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from fastuss_fx.data.dataset import draw_batch
from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import MixConfig, Mixer

DRY = dict(
    reverb_probability=0.0,
    mix_lowpass_probability=0.0,
    bandwidth_probability=0.0,
    tilt_probability=0.0,
    clip_probability=0.0,
    babble_probability=0.0,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/train-pack", help="manifest or its folder")
    parser.add_argument("--seconds", type=float, default=2.0, help="crop length")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=20, help="batches per configuration and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    store = ClipStore.from_manifest(args.data, cache="int16")
    train = store.subset("train")
    start = time.perf_counter()
    store.preload(train)
    print(f"decoded {len(train)} clips in {time.perf_counter() - start:.1f} s")
    default = MixConfig(chunk_seconds=args.seconds)
    mixers = {"dry": Mixer(store, train, replace(default, **DRY)), "default": Mixer(store, train, default)}
    spent = dict.fromkeys(mixers, 0.0)
    for round_ in range(args.rounds):
        for name, mixer in mixers.items():
            start = time.perf_counter()
            for i in range(args.batches):
                draw_batch(mixer, 0, round_ * args.batches + i, args.batch_size)
            spent[name] += time.perf_counter() - start
    examples = args.rounds * args.batches * args.batch_size
    for name, seconds in spent.items():
        print(
            f"{name:8s} {1000 * seconds / examples:7.1f} ms/example  "
            f"{1000 * seconds / examples * args.batch_size:7.1f} ms/batch of {args.batch_size} x {args.seconds:g} s"
        )
    print(f"ratio default/dry: {spent['default'] / spent['dry']:.2f}")


if __name__ == "__main__":
    main()
