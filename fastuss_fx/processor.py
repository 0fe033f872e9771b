"""``FasTUSS``: prompt-driven separation with the call contract of a pedalboard plugin.

Importing this module never imports torch; the torch backend is built on first use when the
model is given by variant name. Which model runs when none is named comes from
``fastuss_fx.pretrained`` (trained weights only, unless ``allow_untrained=True``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fastuss_fx.audio import Layout, check_sample_rate, resample, resampled_length, to_channels_first
from fastuss_fx.engines import (
    ENGINES,
    load_onnx_backend,
    load_torch_backend,
    onnx_backend_for_model,
    torch_backend_for_model,
)
from fastuss_fx.presets import MODES, Preset, check_mix, check_mode, check_stems, load_preset
from fastuss_fx.pretrained import DEFAULT_MODELS, default_model, has_trained_weights, trained_variants
from fastuss_fx.prompts import validate_prompts
from fastuss_fx.runtime.backend import UntrainedWeightsWarning, is_backend, is_streaming_backend
from fastuss_fx.runtime.offline import BLENDS, Progress, WindowedStream, separate_offline
from fastuss_fx.runtime.pipeline import ResampledStream, resampled_latency
from fastuss_fx.runtime.streaming import HopStream, separate_streaming

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What the processor needs to know about a model before building it (no torch)."""

    name: str
    sample_rate: int
    causal: bool
    hop_samples: int = 1
    stream_delay_samples: int = 0
    segment_seconds: float = 6.0  # default offline window (the variant's reference clip length)


def model_info(model: Any) -> ModelInfo:
    """Describe a variant name/path, a backend object, or a torch model with a ``config``."""
    if isinstance(model, (str, Path)):
        from fastuss_fx.config import load_variant

        return _info_from_config(str(model), load_variant(model))
    if hasattr(model, "config") and not is_backend(model):
        return _info_from_config(getattr(model.config, "name", type(model).__name__), model.config)
    if is_backend(model):
        causal = is_streaming_backend(model)
        return ModelInfo(
            name=getattr(model, "name", type(model).__name__),
            sample_rate=int(model.sample_rate),
            causal=causal,
            hop_samples=int(getattr(model, "hop_samples", 1)),
            stream_delay_samples=int(getattr(model, "stream_delay_samples", 0)),
        )
    raise TypeError(
        f"model must be a variant name, a variant .yaml path, a TUSS model or a backend, got {type(model).__name__}"
    )


def _info_from_config(name: str, config: Any) -> ModelInfo:
    stft = config.stft
    return ModelInfo(name, stft.sample_rate, config.causal, stft.hop, stft.n_fft - stft.hop, config.reference_seconds)


class FasTUSS:
    """Separate the sources named by prompts and mix them back with per-source gains.

    Call it like a pedalboard plugin: ``process(input_array, sample_rate, buffer_size=8192,
    reset=True)``, also as ``__call__``.

    - ``input_array``: ``(N,)``, ``(C, N)`` or ``(N, C)`` (the smaller dimension is channels;
      a square array takes the channel count seen last), float32 or float64, 1-8 channels,
      finite, at least one sample. Channels run as one batch through the model.
    - Returns float32 in the input's layout.
    - ``reset=True``: the whole clip; the output has the input's length and is aligned.
    - ``reset=False``: a stream; state carries over between calls and the output stays aligned
      but lags: after ``n`` samples in, exactly ``max(0, n - latency_samples)`` have come out.
      Send zeros to flush the tail. Sample rate and channel count are fixed until ``reset()``.
    - Any sample rate: audio is resampled to the model's rate and back (pedalboard resamplers).
    - ``buffer_size``: accepted for pedalboard compatibility and checked (a positive int), but it
      changes nothing: the model runs in its own steps (STFT hops when streaming, windows of
      ``segment_seconds`` offline), so output and latency are the same for every value.
    - Arguments of the wrong type raise ``TypeError`` (as pedalboard does); right type, bad
      value (``buffer_size=0``, ``overlap=0.9``) raises ``ValueError``.

    Args:
        prompts: source kinds to separate, e.g. ``["speech", "sfx", "musicbg"]``.
        mix: gain in dB per stem; stems left out are removed (None: all at 0 dB).
        stems: one name per prompt (default: prompt names, repeats numbered ``speech_1``...).
        mode: ``"offline"`` (non-causal, windows of ``segment_seconds``) or ``"realtime"`` (causal).
        model: variant name or path, a TUSS model, or a backend. Default: the mode's variant
            (``DEFAULT_MODELS``) if it has trained weights, else the best shipped trained
            weights for the mode (``fastuss_fx.pretrained.RANKING``); ``model_name`` and
            ``weights`` say which runs.
        allow_untrained: run a variant that has no trained weights (randomly initialised: its
            output is not a separation). Without it, naming such a variant raises ValueError.
        engine: ``"onnx"`` (onnxruntime; graphs exported once and cached), ``"onnx-int8"``
            (causal models: the step graph with int8 matrix products, faster at a small
            quality cost measured at export) or ``"torch"``.
        threads: onnxruntime intra-op threads (default: 1 for realtime, all cores offline).
        segment_seconds: offline window length (default: the variant's reference length, 6 s for
            the shipped variants); ``overlap`` is the overlapping fraction (0-0.5).
        blend: how overlapping offline windows combine: ``"crossfade"`` (linear fades) or
            ``"average"`` (the plain mean: with ``overlap=0.5`` the TUSS reference's chunk-wise
            "CSS" inference, e.g. ``separate.py --css_segment_size 6``).
    """

    is_effect = True
    is_instrument = False

    def __init__(
        self,
        prompts: Sequence[str],
        mix: Mapping[str, float] | None = None,
        *,
        stems: Sequence[str] | None = None,
        mode: str = "offline",
        model: Any = None,
        segment_seconds: float | None = None,
        overlap: float = 0.25,
        blend: str = "crossfade",
        engine: str = "onnx",
        threads: int | None = None,
        allow_untrained: bool = False,
    ) -> None:
        self._params: dict[str, Any] = {}
        self._backend: Any = None
        self._backend_for: Any = None  # the model spec ``_backend`` was built from
        self._stream: ResampledStream | None = None
        self._stream_key: tuple[float, int] | None = None
        self._channels_hint: int | None = None
        self._last_layout: Layout | None = None
        self._last_rate: float | None = None
        self.update(
            prompts=prompts,
            mix=mix,
            stems=stems,
            mode=mode,
            model=model,
            segment_seconds=segment_seconds,
            overlap=overlap,
            blend=blend,
            engine=engine,
            threads=threads,
            allow_untrained=allow_untrained,
        )

    @classmethod
    def from_preset(cls, preset: str | Path | Preset, **overrides: Any) -> FasTUSS:
        """Build from a shipped preset name or a preset file; keyword arguments override it."""
        p = load_preset(preset)
        params: dict[str, Any] = {"prompts": p.prompts, "mix": dict(p.mix), "stems": p.stems, "mode": p.mode}
        if p.model is not None:
            params["model"] = p.model
        params.update(overrides)
        return cls(**params)

    # -- parameters -------------------------------------------------------------------------

    def update(self, **params: Any) -> None:
        """Change several parameters at once (checked together; nothing changes if one is bad)."""
        unknown = sorted(set(params) - {*PARAMETERS})
        if unknown:
            raise TypeError(f"unknown parameter(s) {unknown}")
        new = {**self._params, **params}
        prompts = validate_prompts(new["prompts"])
        if "prompts" in params and "stems" not in params and new.get("stems") is not None:
            if len(new["stems"]) != len(prompts):
                new["stems"] = None  # custom names no longer fit: fall back to the prompt names
        stems = check_stems(prompts, new.get("stems"), "stems")
        mix = check_mix(new.get("mix"), stems, "mix")
        mode = check_mode(new["mode"], "mode")
        allow = new.get("allow_untrained", False)
        if not isinstance(allow, (bool, np.bool_)):
            raise TypeError(f"allow_untrained must be True or False, got {allow!r} ({type(allow).__name__})")
        allow = bool(allow)
        model = new["model"] if new["model"] is not None else default_model(mode, allow)
        info = model_info(model)
        trained = _weights_of(model)
        if mode == "realtime" and not info.causal:
            raise ValueError(
                f"mode 'realtime' needs a causal model, but model {info.name!r} is not causal; "
                f"use e.g. {DEFAULT_MODELS['realtime']!r} (or 'tiny-causal'), or mode='offline'"
            )
        if trained == "untrained" and not allow:
            file = (
                " (a variant file is always built with random weights)"
                if str(model).endswith((".yaml", ".yml"))
                else ""
            )
            raise ValueError(
                f"model {info.name!r} has no trained weights{file}; "
                f"shipped: {', '.join(trained_variants()) or 'none'}. "
                "Its output would not be a separation: pass allow_untrained=True (CLI: --allow-untrained) to run "
                "it with random weights, or leave the model unset for the best trained weights"
            )
        seconds, overlap = new["segment_seconds"], new["overlap"]
        if seconds is not None and not _is_number(seconds):
            raise TypeError(f"segment_seconds must be a number or None, got {seconds!r} ({type(seconds).__name__})")
        if seconds is not None and not 0.1 <= seconds <= 600:
            raise ValueError(f"segment_seconds must be a number in [0.1, 600], got {seconds!r}")
        if not _is_number(overlap):
            raise TypeError(f"overlap must be a number, got {overlap!r} ({type(overlap).__name__})")
        if not 0 <= overlap <= 0.5:
            raise ValueError(f"overlap must be a fraction in [0, 0.5], got {overlap!r}")
        if new["blend"] not in BLENDS:
            raise ValueError(f"blend must be one of {', '.join(BLENDS)}, got {new['blend']!r}")
        threads = new["threads"]
        if threads is not None and not _is_int(threads):
            raise TypeError(f"threads must be a positive integer or None, got {threads!r} ({type(threads).__name__})")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        if not isinstance(new["engine"], str):
            engine = new["engine"]
            raise TypeError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r} ({type(engine).__name__})")
        if new["engine"] not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {new['engine']!r}")
        if new["engine"] == "onnx-int8" and not info.causal:
            raise ValueError(
                "engine 'onnx-int8' needs a causal model (the int8 graph is the streaming step), "
                f"but {info.name!r} is not causal"
            )
        restart = any(k in params for k in PARAMETERS if k not in ("mix", "stems"))
        new.update(
            prompts=tuple(prompts),
            mix=mix,
            mode=mode,
            segment_seconds=None if seconds is None else float(seconds),
            overlap=float(overlap),
        )
        if new.get("stems") is not None:
            new["stems"] = stems
        self._params, self._info, self._stems = new, info, stems
        self._model, self._weights = model, trained
        if restart:
            self.reset()
        elif self._stream is not None:
            self._stream.core.combine = self._gains()

    prompts = property(lambda self: list(self._params["prompts"]), lambda self, v: self.update(prompts=v))
    mix = property(lambda self: dict(self._params["mix"]), lambda self, v: self.update(mix=v))
    stems = property(lambda self: list(self._stems), lambda self, v: self.update(stems=v))
    mode = property(lambda self: self._params["mode"], lambda self, v: self.update(mode=v))
    model = property(lambda self: self._model, lambda self, v: self.update(model=v))
    allow_untrained = property(
        lambda self: self._params["allow_untrained"], lambda self, v: self.update(allow_untrained=v)
    )
    segment_seconds = property(
        lambda self: self._params["segment_seconds"] or self._info.segment_seconds,
        lambda self, v: self.update(segment_seconds=v),
    )
    overlap = property(lambda self: self._params["overlap"], lambda self, v: self.update(overlap=v))
    blend = property(lambda self: self._params["blend"], lambda self, v: self.update(blend=v))
    engine = property(lambda self: self._params["engine"], lambda self, v: self.update(engine=v))
    threads = property(lambda self: self._params["threads"], lambda self, v: self.update(threads=v))

    @property
    def model_name(self) -> str:
        """Name of the model that runs (the variant name for a variant given by name or chosen by default)."""
        return self._info.name

    @property
    def weights(self) -> str:
        """``"trained"`` (shipped weights), ``"untrained"`` (random init) or ``"given"`` (a model object
        passed by the caller, whose training the processor cannot check)."""
        return self._weights

    @property
    def sample_rate(self) -> int:
        """The model's sample rate (audio at other rates is resampled)."""
        return self._info.sample_rate

    @property
    def latency_samples(self) -> int:
        """Streaming latency at the sample rate of the last call (the model's rate before any call)."""
        return self.latency_at(self._last_rate or self.sample_rate)

    def latency_at(self, sample_rate: float) -> int:
        """Samples a ``reset=False`` stream at ``sample_rate`` lags behind its input."""
        return resampled_latency(self._core_latency(), check_sample_rate(sample_rate), self.sample_rate)

    def _core_latency(self) -> int:
        if self.mode == "realtime":
            return self._info.stream_delay_samples + self._info.hop_samples - 1
        return self._segment_samples() - 1

    def _segment_samples(self) -> int:
        return max(1, int(round(self.segment_seconds * self.sample_rate)))

    def _gains(self) -> np.ndarray:
        """``(1, S)`` linear gains of the mix (0 for removed stems)."""
        mix = self._params["mix"]
        return np.array([[10 ** (mix[s] / 20) if s in mix else 0.0 for s in self._stems]], np.float64)

    # -- backend ------------------------------------------------------------------------------

    @property
    def backend(self) -> Any:
        """The separation backend, built on first use (onnxruntime unless ``engine="torch"``)."""
        model, engine = self.model, self.engine
        threads = self.threads or (1 if self.mode == "realtime" else None)  # realtime: one thread per stream
        spec = (model, engine, threads)
        if self._backend is None or self._backend_for != spec:
            if is_backend(model):
                backend = model
            elif engine.startswith("onnx") and isinstance(model, (str, Path)):
                backend = load_onnx_backend(model, threads, int8=engine == "onnx-int8")
            elif engine.startswith("onnx"):
                backend = onnx_backend_for_model(model, threads, int8=engine == "onnx-int8")
            elif isinstance(model, (str, Path)):
                backend = load_torch_backend(model)  # torch, only now
            else:
                backend = torch_backend_for_model(model)
            if not getattr(backend, "trained", True):
                warnings.warn(
                    f"FasTUSS model {self._info.name!r} runs untrained (randomly initialised) weights: "
                    "its output is not a separation",
                    UntrainedWeightsWarning,
                    stacklevel=3,
                )
            self._backend, self._backend_for = backend, spec
        return self._backend

    # -- processing -----------------------------------------------------------------------------

    def process(
        self,
        input_array: np.ndarray,
        sample_rate: float,
        buffer_size: int = 8192,
        reset: bool = True,
        *,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Process audio; see the class docstring for the contract. ``progress(done, total)`` is optional."""
        rate = check_sample_rate(sample_rate)
        _check_buffer_size(buffer_size)
        if not isinstance(reset, (bool, np.bool_)):
            raise TypeError(f"reset must be True or False, got {reset!r} ({type(reset).__name__})")
        audio, layout = to_channels_first(input_array, channels_hint=self._channels_hint, last=self._last_layout)
        out = self._process_channels_first(audio, rate, reset, progress)
        self._channels_hint, self._last_layout = audio.shape[0], layout
        return layout.restore(out)

    __call__ = process

    def reset(self) -> None:
        """Forget streaming state (the next ``reset=False`` call starts a new stream)."""
        self._stream = None
        self._stream_key = None

    def separate(
        self, audio: np.ndarray, sample_rate: float, *, progress: Progress | None = None
    ) -> dict[str, np.ndarray]:
        """Separate a whole clip: one float32 array per stem, in the input's layout and length."""
        rate = check_sample_rate(sample_rate)
        cf, layout = to_channels_first(audio, channels_hint=self._channels_hint, last=self._last_layout, name="audio")
        sources = self._one_shot(cf, rate, None, progress)
        return {name: layout.restore(sources[:, s]) for s, name in enumerate(self._stems)}

    def _process_channels_first(
        self, audio: np.ndarray, rate: float, reset: bool, progress: Progress | None = None
    ) -> np.ndarray:
        """``(C, n)`` float32 in, ``(C, m)`` out; the contract of ``process`` without layout handling."""
        channels = audio.shape[0]
        if reset:
            self.reset()
            out = self._one_shot(audio, rate, self._gains(), progress) if audio.shape[-1] else audio[:, None]
        else:
            if self._stream_key is not None and self._stream_key != (rate, channels):
                raise ValueError(
                    f"a stream runs at {self._stream_key[0]:g} Hz with {self._stream_key[1]} channel(s); got "
                    f"{rate:g} Hz with {channels} channel(s); call reset() (or pass reset=True) to start a new one"
                )
            if self._stream is None:
                self._stream = ResampledStream(self._core(channels, self._gains()), rate, self.sample_rate, channels, 1)
                self._stream_key = (rate, channels)
            out = self._stream.push(audio)
        self._last_rate = rate
        return out[:, 0]

    def _core(self, channels: int, combine: np.ndarray | None) -> Any:
        if self.mode == "realtime":
            return HopStream(self.backend, self.prompts, channels, combine=combine)
        segment = self._segment_samples()
        return WindowedStream(
            self.backend,
            self.prompts,
            channels,
            segment_samples=segment,
            overlap_samples=int(self.overlap * segment),
            combine=combine,
            blend=self.blend,
        )

    def _one_shot(
        self, audio: np.ndarray, rate: float, combine: np.ndarray | None, progress: Progress | None
    ) -> np.ndarray:
        """Whole clip ``(C, N)`` -> ``(C, K, N)``; one stream flushed with zeros in realtime mode."""
        channels, total = audio.shape
        model_in = audio
        if rate != self.sample_rate:
            # A stream flushed with zeros hands the model the input resampler's tail, and the output
            # resampler looks ahead into what the model makes of it: run past the end by that much.
            reach = resampled_length(self.latency_at(rate), rate, self.sample_rate) + self._core_latency()
            model_in = resample(audio, rate, self.sample_rate, resampled_length(total, rate, self.sample_rate) + reach)
        if self.mode == "realtime":
            out = separate_streaming(self.backend, model_in, self.prompts, combine=combine, progress=progress)
        else:
            segment = self._segment_samples()
            out = separate_offline(
                self.backend,
                model_in,
                self.prompts,
                segment_samples=segment,
                overlap_samples=int(self.overlap * segment),
                combine=combine,
                blend=self.blend,
                progress=progress,
            )
        if rate == self.sample_rate:
            return out
        outputs = out.shape[1]
        back = resample(out.reshape(channels * outputs, -1), self.sample_rate, rate, total)
        return back.reshape(channels, outputs, total)

    def __repr__(self) -> str:
        model = self.model if isinstance(self.model, (str, Path)) else self._info.name
        return (
            f"<fastuss_fx.FasTUSS prompts={self.prompts!r} mix={self.mix!r} mode={self.mode!r} "
            f"model={str(model)!r} ({self.weights_note()}) at {hex(id(self))}>"
        )

    def weights_note(self) -> str:
        """A few words on the weights that run, e.g. ``trained weights; fastuss-4.6g has none yet``."""
        note = {"trained": "trained weights", "untrained": "UNTRAINED random weights", "given": "caller's model"}[
            self._weights
        ]
        preferred = DEFAULT_MODELS[self.mode]
        if self._params["model"] is None and self._info.name != preferred:
            note += f"; {preferred} has none yet"
        return note


PARAMETERS = (
    "prompts",
    "mix",
    "stems",
    "mode",
    "model",
    "segment_seconds",
    "overlap",
    "blend",
    "engine",
    "threads",
    "allow_untrained",
)
"""What ``FasTUSS.update`` accepts."""


def _weights_of(model: Any) -> str:
    """``"trained"``, ``"untrained"`` or ``"given"`` for a model spec (torch-free)."""
    if isinstance(model, (str, Path)):
        return "trained" if has_trained_weights(model) else "untrained"
    if is_backend(model):
        return "trained" if getattr(model, "trained", True) else "untrained"
    return "given"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_buffer_size(buffer_size: Any) -> int:
    """A positive int (checked as pedalboard does; it does not change the output, see ``FasTUSS``)."""
    if not _is_int(buffer_size):
        raise TypeError(f"buffer_size must be a positive integer, got {buffer_size!r} ({type(buffer_size).__name__})")
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be a positive integer, got {buffer_size!r}")
    return int(buffer_size)


__all__ = ["FasTUSS", "DEFAULT_MODELS", "MODES", "ModelInfo", "model_info"]
