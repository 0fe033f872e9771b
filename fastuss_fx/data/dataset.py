"""Torch datasets over the mixer: an endless, resumable batch stream and a fixed validation set.

Batch ``i`` of the stream is drawn from ``numpy.random.default_rng([seed, i])`` alone, so the
stream does not depend on worker count or process, and resuming at step ``k`` only needs
``k``. With ``world_size`` ranks, rank ``r`` takes batches ``step * world_size + r``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.mixer import Example, MixConfig, Mixer
from fastuss_fx.data.tasks import Task

VALID_SEED = 1234
"""Seed of the validation set: training and ``fastuss eval`` score the same mixtures."""


@dataclass
class Batch:
    """``mixture`` [B, N], ``targets`` [B, S, N], ``prompts`` one list of S prompts per example."""

    mixture: torch.Tensor
    targets: torch.Tensor
    prompts: list[list[str]]
    name: str = ""

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.mixture.to(device, non_blocking=True),
            self.targets.to(device, non_blocking=True),
            self.prompts,
            self.name,
        )

    def pin_memory(self) -> Batch:
        """Called by ``DataLoader(pin_memory=True)`` for faster copies to the GPU."""
        return Batch(self.mixture.pin_memory(), self.targets.pin_memory(), self.prompts, self.name)


def collate(examples: Sequence[Example], name: str = "") -> Batch:
    """Stack examples that share S into a ``Batch``."""
    return Batch(
        torch.from_numpy(np.stack([e.mixture for e in examples])),
        torch.from_numpy(np.stack([e.targets for e in examples])),
        [list(e.prompts) for e in examples],
        name,
    )


def draw_batch(mixer: Mixer, seed: int, index: int, batch_size: int) -> Batch:
    """Batch ``index`` of the stream: one task (hence one S) for the batch, own prompt order per example."""
    rng = np.random.default_rng([seed, index])
    return collate([mixer.example(rng, prompts) for prompts in mixer.batch_prompts(rng, batch_size)])


class MixtureStream(IterableDataset):
    """Endless training batches from ``step`` on; use with ``DataLoader(batch_size=None)``.

    DataLoader workers split the steps round-robin (worker ``w`` of ``W`` takes the steps with
    ``step % W == w``), which is the order the DataLoader yields them in.
    """

    def __init__(self, mixer: Mixer, batch_size: int, seed: int, *, step: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.mixer, self.batch_size, self.seed = mixer, batch_size, seed
        self.step, self.rank, self.world_size = step, rank, world_size

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        step = self.step + worker
        while True:
            yield draw_batch(self.mixer, self.seed, step * self.world_size + self.rank, self.batch_size)
            step += workers


def validation_batches(
    store: ClipStore,
    tasks: Sequence[Task],
    config: MixConfig,
    examples: int,
    seed: int = VALID_SEED,
    batch_size: int = 8,
    split: str = "valid",
) -> list[Batch]:
    """A fixed scoring set from ``split`` (``valid`` picks checkpoints; ``test``/``holdout`` are only reported):
    ``examples`` mixtures per task, no per-source augmentation, no silent source. ``holdout``
    mixes the held-out sources' clips with ``test`` clips of the roles they lack (backgrounds).

    With ``config.valid_channel`` the mixtures get the training channel (room, EQ, band limits,
    clipping, babble; see ``mixer``), seeded like the rest; without it they are dry.
    Batches are named after their task; the same arguments always give the same audio.
    """
    config = replace(config, silent_probability=0.0, lowpass_probability=0.0, song_probability=1.0)
    if not config.valid_channel:
        config = replace(
            config,
            reverb_probability=0.0,
            mix_lowpass_probability=0.0,
            bandwidth_probability=0.0,
            tilt_probability=0.0,
            clip_probability=0.0,
            babble_probability=0.0,
        )
    clips = store.subset(split)
    if split == "holdout":  # held-out sources bring their own roles (speech); the others come from test
        held_roles = {store.rows[i].role for i in clips}
        clips += [i for i in store.subset("test") if store.rows[i].role not in held_roles]
    mixer = Mixer(store, clips, config)
    batches = []
    for number, task in enumerate(tasks):
        missing = [p for p in task.prompts if task.prompts.count(p) > len(mixer.by_role.get(p, []))]
        if missing:
            raise ValueError(f"task {task.name!r}: the {split} split has too few clips for {sorted(set(missing))}")
        rng = np.random.default_rng([seed, number])
        drawn = [_audible_example(mixer, rng, task.prompts) for _ in range(examples)]
        batches += [collate(drawn[i : i + batch_size], task.name) for i in range(0, examples, batch_size)]
    return batches


def _audible_example(mixer: Mixer, rng: np.random.Generator, prompts: Sequence[str], tries: int = 20) -> Example:
    """A mixture whose sources are all audible (windows can fall into a clip's silent part); scores need it."""
    for _ in range(tries):
        example = mixer.example(rng, prompts)
        if not any(example.silent):
            return example
    raise ValueError(f"could not draw a mixture of {list(prompts)} with every source audible in {tries} tries")
