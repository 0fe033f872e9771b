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

VARIANTS_PACKAGE = "fastuss_fx.variants"


@dataclass(frozen=True)
class StftConfig:
    """Short-time Fourier transform: sqrt-Hann window of ``n_fft`` samples, hop ``hop``."""

    n_fft: int = 2048
    hop: int = 512
    sample_rate: int = 48000

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
    attention (module simplification).
    """

    ffn_hidden: int = 384
    kernel: int = 1
    attention_dim: int = 128
    heads: int = 4
    macaron: bool = True
    branch_kernels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
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

    def __post_init__(self) -> None:
        if self.dim % self.norm_groups:
            raise ValueError(f"dim={self.dim} must be divisible by norm_groups={self.norm_groups}")
        if self.causal and (self.attention_window is None or self.attention_window < 1):
            raise ValueError("a causal model needs attention_window >= 1 (frames of KV cache)")
        if not self.causal and self.attention_window is not None:
            raise ValueError("attention_window only applies to causal models")

    @property
    def latency_samples(self) -> int:
        """Algorithmic latency at ``stft.sample_rate``.

        Causal: an output sample depends on input up to ``n_fft - 1`` samples later (the last
        STFT frame covering it must be complete). Non-causal: the whole clip is needed, so there
        is no finite algorithmic latency; offline processing reports 0 after compensation.
        """
        return self.stft.n_fft - 1 if self.causal else 0

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.stft.sample_rate


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


def load_variant(name_or_path: str | Path) -> ModelConfig:
    """Load a shipped variant by name (``"fastuss-8.3g"``) or a variant YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"variant file not found: {path}")
        text, where = path.read_text(), str(path)
    else:
        names = list_variants()
        if str(name_or_path) not in names:
            raise ValueError(f"unknown model variant {str(name_or_path)!r}; choose from {', '.join(names)}")
        text = resources.files(VARIANTS_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text()
        where = f"variant {name_or_path}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: invalid YAML: {err}") from None
    return config_from_dict(data, where)
