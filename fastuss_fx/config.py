"""Model configuration: dataclasses filled from the variant YAML files.

Every knob of the one model class lives here; variants (``tuss-medium``, ``fastuss-8.3g``,
``fastuss-causal``, ...) are YAML files in ``fastuss_fx/variants/``. Unknown keys are rejected
so a typo in a variant file never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fastuss_fx.installed import installed_names, installed_variant, models_folder

VARIANTS_PACKAGE = "fastuss_fx.variants"


@dataclass(frozen=True)
class StftConfig:
    """Short-time Fourier transform: sqrt-Hann window of ``n_fft`` samples, hop ``hop``.

    ``center=False``: frames end at each hop (left padding ``n_fft - hop``), which streams.
    ``center=True``: the TUSS reference framing, ``n_fft // 2`` zeros on both sides and an
    inverse that divides by the summed squared windows (``torch.istft(center=True)``).
    """

    n_fft: int = 2048
    hop: int = 512
    sample_rate: int = 48000
    center: bool = False

    def __post_init__(self) -> None:
        if self.n_fft <= 0 or self.hop <= 0 or self.hop > self.n_fft:
            raise ValueError(f"need 0 < hop <= n_fft, got n_fft={self.n_fft}, hop={self.hop}")
        if self.n_fft % self.hop:
            raise ValueError(f"n_fft={self.n_fft} must be a multiple of hop={self.hop} for perfect reconstruction")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop


@dataclass(frozen=True)
class PathConfig:
    """One path (frequency or time) of a TF-Locoformer block.

    ``kernel`` is the ConvFFN kernel along the path's axis. ``branch_kernels`` are extra
    train-time conv branches (structural reparameterization) that ``fuse()`` folds into the
    main kernel; they must not exceed ``kernel``. ``macaron=False`` keeps only the FFN after
    attention (module simplification). ``ffn_padding``: ``same`` keeps the length in both
    convs; ``full`` is the reference's conv / transposed-conv pair (the first conv pads
    ``kernel - 1`` on both sides, the second is a valid conv back to the input length).
    """

    ffn_hidden: int = 384
    kernel: int = 1
    attention_dim: int = 128
    heads: int = 4
    macaron: bool = True
    branch_kernels: tuple[int, ...] = ()
    ffn_padding: str = "same"

    def __post_init__(self) -> None:
        if self.ffn_padding not in ("same", "full"):
            raise ValueError(f"ffn_padding must be same or full, got {self.ffn_padding!r}")
        if self.ffn_padding == "full" and self.branch_kernels:
            raise ValueError("branch_kernels need ffn_padding: same")
        if self.attention_dim % self.heads or (self.attention_dim // self.heads) % 2:
            raise ValueError(f"attention_dim={self.attention_dim} must split into {self.heads} heads of even size")
        for k in self.branch_kernels:
            if not 1 <= k <= self.kernel:
                raise ValueError(f"branch kernel {k} must be between 1 and the main kernel {self.kernel}")


@dataclass(frozen=True)
class StackConfig:
    """A stack of TF-Locoformer blocks (the cross-prompt module or the TSE module)."""

    blocks: int = 4
    freq: PathConfig = field(default_factory=lambda: PathConfig(kernel=4))
    time: PathConfig = field(default_factory=PathConfig)


@dataclass(frozen=True)
class ModelConfig:
    """The whole model; one instance per variant."""

    name: str = "custom"
    description: str = ""
    stft: StftConfig = field(default_factory=StftConfig)
    dim: int = 64
    norm_groups: int = 4
    cross_prompt: StackConfig = field(default_factory=StackConfig)
    tse: StackConfig = field(default_factory=lambda: StackConfig(blocks=2))
    decoder_hidden: int = 256
    causal: bool = False
    attention_window: int | None = None
    max_occurrences: int = 4
    reference_seconds: float = 6.0
    layout: str = "fastuss"
    """``fastuss``: our own layout. ``tuss``: the TUSS reference computation, number for number
    (``TUSS_LAYOUT`` lists what it changes); the official checkpoints run in it."""
    decoder_layers: int = 1
    """Hidden tanh layers of the band-wise mask decoder (the reference has 2)."""
    lookahead: int = 0
    """Causal models: frames of look-ahead. The mask computed at frame t applies to frame t - lookahead
    (kept in the stream state), so every output hears ``lookahead`` hops of the future: latency grows
    by ``lookahead * hop`` (0, 1, 2 at hop 480 = 20, 30, 40 ms)."""
    isolate_prompts: bool = False
    """Non-causal models: the cross-prompt time convs see each prompt token alone and the frames as one
    sequence, so a time kernel > 1 never mixes a prompt with its neighbours or with the first frames
    (prompts then form a set: permuting them permutes the outputs). Off: one sequence [prompts, frames]."""
    prompt_attention: bool = False
    """Causal models: the prompt tokens sit before the frames, attend to each other as a set, and every
    frame of the cross-prompt time attention attends to all of them (outside its window), so the
    shared features know which sources were asked for. Off: each prompt's vector is computed alone
    and the frames never see the prompt list."""

    def __post_init__(self) -> None:
        if self.dim % self.norm_groups:
            raise ValueError(f"dim={self.dim} must be divisible by norm_groups={self.norm_groups}")
        if self.layout not in ("fastuss", "tuss"):
            raise ValueError(f"layout must be fastuss or tuss, got {self.layout!r}")
        if self.layout == "tuss" and (self.causal or not self.stft.center):
            raise ValueError("layout: tuss is non-causal and needs stft.center: true")
        if self.lookahead < 0 or (self.lookahead and not self.causal):
            raise ValueError(f"lookahead must be >= 0 frames, and only causal models have one; got {self.lookahead}")
        if self.isolate_prompts and self.causal:
            raise ValueError(
                "isolate_prompts is for non-causal models (causal prompt tokens never meet the frames' convs)"
            )
        if self.prompt_attention and not self.causal:
            raise ValueError("prompt_attention is for causal models (non-causal ones attend to the prompts anyway)")
        if self.decoder_layers not in (1, 2):
            raise ValueError(f"decoder_layers must be 1 or 2, got {self.decoder_layers}")
        if self.causal and (self.attention_window is None or self.attention_window < 1):
            raise ValueError("a causal model needs attention_window >= 1 (frames of KV cache)")
        if not self.causal and self.attention_window is not None:
            raise ValueError("attention_window only applies to causal models")

    @property
    def reference_layout(self) -> bool:
        """Whether this is the TUSS reference computation (``layout: tuss``)."""
        return self.layout == "tuss"

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency at ``stft.sample_rate``.

        Causal: an output sample depends on input up to ``n_fft - 1`` samples later (the last
        STFT frame covering it must be complete), plus ``lookahead`` hops. Non-causal: the whole
        clip is needed, so there is no finite algorithmic latency; offline processing reports 0
        after compensation.
        """
        return self.stft.n_fft - 1 + self.lookahead * self.stft.hop if self.causal else 0

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.stft.sample_rate


TUSS_LAYOUT = (
    "input scaled by its unbiased standard deviation + 1e-8 (not its RMS)",
    "bands by the reference formula (bin width sample_rate / 2 / n_bins)",
    "band-split and decoder norms are GroupNorm(1): mean removed, statistics over features and all frames, affine bias",
    "one learned vector per prompt kind, the same for every band; no occurrence embedding",
    "a start-of-sequence token after the prompts; prompts at positions 0..S-1, the token at S, frames after it",
    "RMS group norms divide by RMS + eps (not sqrt(mean square + eps))",
)
"""What ``layout: tuss`` changes against ``layout: fastuss`` (the rest is set by ordinary fields)."""


def dataclass_from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking each value against its field's type.

    Nested dataclass fields are built recursively and lists become tuples; an int is accepted
    (and converted) for a float field, nothing else is converted: ``"no"`` is not a bool, ``64.0``
    is not an int, ``"2048"`` is not a number. Unknown keys and wrong types raise ``ValueError``
    naming ``where`` (e.g. the file), the key path, the value and the expected type.
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = dataclass_from_dict(hints[key], value, f"{where}.{key}")
            continue
        try:
            kwargs[key] = _typed(value, hints[key])
        except TypeError:
            raise ValueError(
                f"{where}: key {key!r} must be {_type_name(hints[key])}, got {value!r} ({type(value).__name__})"
            ) from None
    return cls(**kwargs)


def _typed(value: Any, hint: Any) -> Any:
    """``value`` checked against ``hint`` (ints widened to float, lists to tuples); TypeError if it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _typed(value, arg)
            except TypeError:
                pass
        raise TypeError(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(v, args[0]) for v in value)
        if len(value) != len(args):
            raise TypeError(hint)
        return tuple(_typed(v, a) for v, a in zip(value, args, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return bool(value)
        raise TypeError(hint)
    if hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        raise TypeError(hint)
    if hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        raise TypeError(hint)
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError(hint)
    return tuple(value) if isinstance(value, list) else value


def _type_name(hint: Any) -> str:
    """``int``, ``a bool (true/false)``, ``int or None``, ``a list of float``: for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} ({', '.join(_type_name(a) for a in args)})"
    if hint is bool:
        return "a bool (true or false)"
    if hint is float:
        return "a number (float)"
    return getattr(hint, "__name__", str(hint))


def dataclass_to_dict(obj: Any) -> dict[str, Any]:
    """Plain-dict form of a dataclass (tuples become lists), the inverse of ``dataclass_from_dict``."""

    def plain(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(obj))


def config_from_dict(data: dict[str, Any], where: str = "config") -> ModelConfig:
    """Build a ``ModelConfig`` from a plain dict (as found in YAML or checkpoint metadata)."""
    return dataclass_from_dict(ModelConfig, data, where)


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """Plain-dict form of a config, the inverse of ``config_from_dict``."""
    return dataclass_to_dict(config)


def list_variants() -> list[str]:
    """Names of the variants shipped with the package."""
    files = resources.files(VARIANTS_PACKAGE).iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def model_names() -> list[str]:
    """Every name a model can be given by: the shipped variants, then the installed models."""
    return list_variants() + [n for n in installed_names() if n not in list_variants()]


def unknown_model_message(name: str) -> str:
    """The error text for a model name that is neither shipped nor installed."""
    installed = ", ".join(installed_names()) or "none"
    return (
        f"unknown model variant {name!r}; shipped variants: {', '.join(list_variants())}; "
        f"installed models: {installed} (in {models_folder()}; `fastuss models import` installs one)"
    )


def load_variant(name_or_path: str | Path) -> ModelConfig:
    """Load a model config by name (a shipped variant such as ``"fastuss-8.3g"``, or an installed
    model) or a variant YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"variant file not found: {path}")
        text, where = path.read_text(), str(path)
    elif str(name_or_path) in list_variants():
        text = resources.files(VARIANTS_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text()
        where = f"variant {name_or_path}"
    else:
        installed = installed_variant(str(name_or_path))
        if installed is None:
            raise ValueError(unknown_model_message(str(name_or_path)))
        text, where = installed.read_text(), str(installed)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: invalid YAML: {err}") from None
    return config_from_dict(data, where)
