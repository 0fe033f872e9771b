"""The bundled example and what the ``demo`` command and the notebooks share.

The example (``fastuss_fx/assets/``, made by ``scripts/make_demo_example.py``) is a 6-s,
48 kHz mono scene: speech, effects and music (drums + bass + chords), all generated. Its true
stems ship, the mixture is their sum, so any separation of it can be scored with SI-SDR.

Plots need matplotlib (the ``dev`` extra); everything else is numpy and the public API.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

import numpy as np

from fastuss_fx.atomic import atomic_path
from fastuss_fx.metrics import si_sdr_db

logger = logging.getLogger(__name__)

EXAMPLE_SECONDS = 6.0
"""Length of the bundled example."""

EXAMPLE_STEMS: tuple[str, ...] = ("speech", "sfx", "drums", "bass", "other")
"""The stem files of the example, ``<name>.ogg`` in ``fastuss_fx/assets/``."""

REFERENCE_STEMS: dict[str, tuple[str, ...]] = {
    "speech": ("speech",),
    "sfx": ("sfx",),
    "musicbg": ("drums", "bass", "other"),
    "drums": ("drums",),
    "bass": ("bass",),
}
"""Prompt kind -> example stems that make its true source. Prompts left out (``vocals``,
``other`` and ``sfxbg``) have no clear reference in this scene."""


@dataclass(frozen=True)
class Example:
    """The demo scene: ``mixture`` and each stem are float32 ``(1, N)`` at ``sample_rate``."""

    mixture: np.ndarray
    stems: Mapping[str, np.ndarray]
    sample_rate: float

    @property
    def music(self) -> np.ndarray:
        """Drums + bass + other: the music bed."""
        return self.stems["drums"] + self.stems["bass"] + self.stems["other"]

    def reference(self, prompt: str) -> np.ndarray | None:
        """The true source for a prompt kind, or None when the scene has no clear one."""
        names = REFERENCE_STEMS.get(prompt)
        return None if names is None else cast(np.ndarray, sum(self.stems[n] for n in names))


def example_dir() -> Path:
    """Folder of the bundled example (package data)."""
    return Path(str(resources.files("fastuss_fx").joinpath("assets")))


def load_example() -> Example:
    """Read the bundled stems; the mixture is their sum (so they are exact references)."""
    from fastuss_fx.io import read_audio

    stems: dict[str, np.ndarray] = {}
    rate: float = 0.0
    for name in EXAMPLE_STEMS:
        stems[name], rate = read_audio(example_dir() / f"{name}.ogg")
    mixture = np.asarray(np.sum([stems[n] for n in EXAMPLE_STEMS], axis=0, dtype=np.float32))
    return Example(mixture=mixture, stems=stems, sample_rate=float(rate))


def spectrogram_db(audio: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Magnitude spectrogram in dB ``(F, T)`` of mono ``(N,)`` or ``(C, N)`` audio (channels averaged)."""
    x = np.asarray(audio, np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    x = np.pad(x, (n_fft // 2, n_fft // 2))
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1)).T
    return 20 * np.log10(spec + 1e-8)


def spectrogram_figure(
    panels: Mapping[str, np.ndarray | None],
    sample_rate: float,
    *,
    ncols: int = 3,
    range_db: float = 80.0,
    title: str = "",
) -> Any:
    """A matplotlib ``Figure`` with one spectrogram per panel, side by side, on one colour scale.

    Panels fill the grid row by row; a ``None`` panel leaves its cell empty. Built without
    pyplot (no global state, no display needed): show it in a notebook with ``display(fig)``,
    save it with ``save_figure(fig, path)``.
    """
    from matplotlib.figure import Figure

    specs = {name: None if audio is None else spectrogram_db(audio) for name, audio in panels.items()}
    top = max(float(s.max()) for s in specs.values() if s is not None)
    ncols = max(1, min(ncols, len(specs)))
    nrows = -(-len(specs) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 2.8 * nrows + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    image = None
    for ax, (name, spec) in zip(axes.flat, specs.items(), strict=False):
        if spec is None:
            ax.set_visible(False)
            continue
        seconds = (spec.shape[1] - 1) * 512 / sample_rate
        image = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=top - range_db,
            vmax=top,
            extent=(0, seconds, 0, sample_rate / 2000),
        )
        ax.set_title(name, fontsize=10)
    for ax in axes.flat[len(specs) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("kHz")
    for ax in axes[-1, :]:
        ax.set_xlabel("s")
    if image is not None:
        fig.colorbar(image, ax=axes, label="dB", shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def save_figure(fig: Any, path: str | Path, dpi: int = 100) -> Path:
    """Save a figure as PNG atomically (temporary file beside it, fsync, rename; mode 0644)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


@dataclass
class DemoResult:
    """What ``run_demo`` made: files, timings and scores."""

    out_dir: Path
    preset: str
    model: str
    trained: bool
    weights: str = ""
    """What runs, in words, e.g. ``trained weights; fastuss-4.6g has none yet``."""
    files: dict[str, Path] = field(default_factory=dict)
    """``"mixture"``, ``"output"`` (the preset's mix), ``"stem:<name>"``, ``"png"``."""
    seconds_audio: float = 0.0
    seconds_load: float = 0.0
    seconds_separate: float = 0.0
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Stem (or ``"output"``) -> (SI-SDR of the estimate, SI-SDR of the untouched mixture) in dB."""
    png_skipped: str | None = None
    """Why no PNG was written (matplotlib missing), else None."""


def run_demo(
    out_dir: str | Path,
    preset: str = "dialog_only",
    model: str | None = None,
    *,
    segment_seconds: float | None = None,
    progress: Any = None,
    allow_untrained: bool = False,
) -> DemoResult:
    """Separate the bundled example with ``preset``; write the mixture, the preset's output, the
    stems and a spectrogram PNG into ``out_dir`` (which must exist; its demo files are replaced).

    ``model`` and ``segment_seconds`` override the preset's model and the offline window
    length (e.g. ``model="tiny", segment_seconds=1.0, allow_untrained=True`` for a seconds-fast
    run). By default the shipped trained weights run (see ``FasTUSS``'s ``model``).
    """
    from fastuss_fx.io import write_audio
    from fastuss_fx.presets import load_preset
    from fastuss_fx.processor import FasTUSS

    out_dir = Path(out_dir)
    example = load_example()
    rate = example.sample_rate
    overrides: dict[str, Any] = {"model": model} if model is not None else {}
    if segment_seconds is not None:
        overrides["segment_seconds"] = segment_seconds
    processor = FasTUSS.from_preset(preset, allow_untrained=allow_untrained, **overrides)
    preset_name = load_preset(preset).name
    start = time.perf_counter()
    trained = bool(getattr(processor.backend, "trained", True))  # builds (or loads) the model now
    result = DemoResult(
        out_dir,
        preset_name,
        processor.model_name,
        trained,
        processor.weights_note(),
        seconds_audio=example.mixture.shape[-1] / rate,
    )
    result.seconds_load = time.perf_counter() - start

    start = time.perf_counter()
    stems = processor.separate(example.mixture, rate, progress=progress)
    result.seconds_separate = time.perf_counter() - start
    # The preset's mix is linear in the stems: the same as ``processor.process`` without a second run.
    gains = {name: 10 ** (db / 20) for name, db in processor.mix.items()}
    output = np.asarray(np.sum([g * stems[name] for name, g in gains.items()], axis=0, dtype=np.float32))

    (out_dir / "stems").mkdir(exist_ok=True)
    result.files["mixture"] = write_audio(out_dir / "mixture.wav", example.mixture, rate)
    safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", preset_name)
    result.files["output"] = write_audio(out_dir / f"{safe_name}.wav", output, rate)
    for name, audio in stems.items():
        result.files[f"stem:{name}"] = write_audio(out_dir / "stems" / f"{name}.wav", audio, rate)

    references = {}
    for prompt, name in zip(processor.prompts, processor.stems, strict=True):
        reference = example.reference(prompt)
        if reference is not None:
            references[name] = reference
            result.scores[name] = (si_sdr_db(reference, stems[name]), si_sdr_db(reference, example.mixture))
    if all(name in references for name in gains):
        target = np.sum([g * references[name] for name, g in gains.items()], axis=0)
        result.scores["output"] = (si_sdr_db(target, output), si_sdr_db(target, example.mixture))

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        result.png_skipped = "matplotlib is not installed (pip install matplotlib, or the package's dev extra)"
        return result
    columns = max(2, len(stems))
    panels: dict[str, np.ndarray | None] = {"input: mixture": example.mixture, f"output: {preset_name}": output}
    panels.update({f"_{i}": None for i in range(columns - 2)})  # stems start on the second row
    panels.update({f"stem: {name}": audio for name, audio in stems.items()})
    note = "" if trained else " - UNTRAINED weights, not a separation"
    fig = spectrogram_figure(panels, rate, ncols=columns, title=f"fastuss demo: {preset_name}, {result.model}{note}")
    result.files["png"] = save_figure(fig, out_dir / "spectrograms.png")
    return result


__all__ = [
    "EXAMPLE_SECONDS",
    "EXAMPLE_STEMS",
    "REFERENCE_STEMS",
    "Example",
    "example_dir",
    "load_example",
    "si_sdr_db",
    "spectrogram_db",
    "spectrogram_figure",
    "save_figure",
    "DemoResult",
    "run_demo",
]
