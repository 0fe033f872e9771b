"""YAML presets: which sources to ask for and how to mix them back.

Schema (``presets/README.md`` has the long form)::

    name: remove_music              # optional, defaults to the file name
    description: Keep dialogue and effects.
    prompts: [speech, sfx, musicbg] # required, 1-8 prompt kinds
    stems: [dialogue, effects, music]  # optional names, one per prompt
    mix: {dialogue: 0.0, effects: 0.0} # optional gain in dB per stem; omitted stems are removed
    mode: offline                   # optional: offline (default) or realtime
    model: fastuss-8.3g             # optional variant; default depends on mode

Shipped presets live in ``fastuss_fx/presets/`` (package data); a user's own preset loads by path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fastuss_fx.prompts import PROMPTS, source_names, validate_prompts

MODES: tuple[str, ...] = ("offline", "realtime")
KEYS: tuple[str, ...] = ("name", "description", "prompts", "stems", "mix", "mode", "model")
STEM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Preset:
    """A validated preset. ``stems`` always holds one name per prompt; ``mix`` maps stem -> gain dB."""

    name: str
    prompts: tuple[str, ...]
    stems: tuple[str, ...]
    mix: Mapping[str, float]
    description: str = ""
    mode: str = "offline"
    model: str | None = None
    source: str = field(default="<dict>", compare=False)
    """Where the preset came from (file path or ``preset NAME``), for error messages."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as it would be written to YAML."""
        data: dict[str, Any] = {"name": self.name, "description": self.description, "prompts": list(self.prompts)}
        data["stems"] = list(self.stems)
        data["mix"] = dict(self.mix)
        data["mode"] = self.mode
        if self.model is not None:
            data["model"] = self.model
        return data


def check_stems(prompts: Sequence[str], stems: Sequence[str] | None, where: str = "stems") -> tuple[str, ...]:
    """Stem names for ``prompts``: the given ones checked, or the defaults (``speech_1``, ...)."""
    if stems is None:
        return tuple(source_names(prompts))
    if isinstance(stems, str) or not isinstance(stems, Sequence):
        raise ValueError(f"{where}: expected a list of names, one per prompt, got {stems!r}")
    if len(stems) != len(prompts):
        raise ValueError(f"{where}: {len(stems)} name(s) {list(stems)} for {len(prompts)} prompt(s) {list(prompts)}")
    for name in stems:
        if not isinstance(name, str) or not STEM_NAME.match(name):
            raise ValueError(f"{where}: bad stem name {name!r}; use letters, digits, '_', '-' or '.'")
    duplicates = sorted({n for n in stems if list(stems).count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}: stem names must be unique, repeated: {duplicates}")
    return tuple(stems)


def check_mix(mix: Mapping[str, Any] | None, stems: Sequence[str], where: str = "mix") -> dict[str, float]:
    """Gains in dB per stem (None: every stem at 0 dB); unknown stems and non-numbers raise."""
    if mix is None:
        return {name: 0.0 for name in stems}
    if not isinstance(mix, Mapping):
        raise ValueError(f"{where}: expected a mapping of stem name to gain in dB, got {mix!r}")
    if not mix:
        raise ValueError(f"{where}: keeps no stem; name at least one of {list(stems)}")
    gains = {}
    for name, gain in mix.items():
        if name not in stems:
            raise ValueError(f"{where}.{name}: unknown stem {name!r}; the stems are {list(stems)}")
        if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not math.isfinite(gain):
            raise ValueError(f"{where}.{name}: gain must be a finite number in dB, got {gain!r}")
        gains[name] = float(gain)
    return gains


def check_mode(mode: Any, where: str = "mode") -> str:
    if not isinstance(mode, str) or mode not in MODES:
        kind = "" if isinstance(mode, str) else f" ({type(mode).__name__}, not a str)"
        raise ValueError(f"{where}: unknown mode {mode!r}{kind}; choose from {', '.join(MODES)}")
    return mode


def preset_from_dict(data: Any, source: str = "<dict>", default_name: str = "custom") -> Preset:
    """Validate a parsed preset; every error starts with ``source`` and the offending key."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a preset must be a mapping with keys {', '.join(KEYS)}, got {data!r}")
    unknown = sorted(str(k) for k in set(data) - set(KEYS))
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; allowed: {', '.join(KEYS)}")
    if "prompts" not in data:
        raise ValueError(f"{source}: missing key 'prompts' (a list of {', '.join(PROMPTS)})")
    prompts = data["prompts"]
    if not isinstance(prompts, list) or not prompts:
        raise ValueError(f"{source}: key 'prompts' must be a non-empty list of {', '.join(PROMPTS)}, got {prompts!r}")
    try:
        prompts = validate_prompts(prompts)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: key 'prompts': {err}") from None
    stems = check_stems(prompts, data.get("stems"), f"{source}: key 'stems'")
    mix = check_mix(data.get("mix"), stems, f"{source}: key 'mix'")
    mode = check_mode(data.get("mode", "offline"), f"{source}: key 'mode'")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise ValueError(f"{source}: key 'model' must be a variant name (str), got {model!r} ({type(model).__name__})")
    if model is not None:
        from fastuss_fx.config import load_variant, model_names, unknown_model_message

        if model not in model_names():
            raise ValueError(f"{source}: key 'model': {unknown_model_message(model)}")
        if mode == "realtime" and not load_variant(model).causal:
            raise ValueError(f"{source}: key 'model': mode 'realtime' needs a causal variant, {model!r} is not causal")
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise ValueError(f"{source}: key {key!r} must be a string, got {data[key]!r}")
    return Preset(
        name=data.get("name", default_name),
        prompts=tuple(prompts),
        stems=stems,
        mix=mix,
        description=data.get("description", ""),
        mode=mode,
        model=model,
        source=source,
    )


def parse_preset(text: str, source: str, default_name: str = "custom") -> Preset:
    """Parse YAML text into a ``Preset``; a syntax error names the line and column."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{source}: YAML syntax error{where}: {err.problem or err}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{source}: YAML error: {err}") from None
    return preset_from_dict(data, source, default_name)


def _preset_dir() -> Any:
    # A data folder, not a package: ``fastuss_fx.presets`` is this module.
    return resources.files("fastuss_fx").joinpath("presets")


def list_presets() -> list[str]:
    """Names of the shipped presets."""
    files = _preset_dir().iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def is_path(name_or_path: str | Path) -> bool:
    """Whether a preset argument is a file path rather than a shipped preset's name."""
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def load_preset(name_or_path: str | Path | Preset) -> Preset:
    """Load a shipped preset by name (``"remove_music"``) or a preset YAML file by path; a ``Preset`` is returned as is.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: unknown preset name, or an invalid file (the message names file and key).
    """
    if isinstance(name_or_path, Preset):
        return name_or_path
    if is_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"preset file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: cannot read preset: {err}") from None
        return parse_preset(text, str(path), path.stem)
    names = list_presets()
    if name_or_path not in names:
        raise ValueError(f"unknown preset {str(name_or_path)!r}; choose from {', '.join(names)} or give a .yaml path")
    text = _preset_dir().joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
    return parse_preset(text, f"preset {name_or_path}", str(name_or_path))
