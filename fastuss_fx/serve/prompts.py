"""Free prompts from the page: a prompt list checked by the preset schema, run without saving a preset.

``free_preset(["speech", "sfx"])`` is the ``Preset`` a YAML file with just those prompts would give
(stems named after the prompts, every stem at 0 dB); a bad list raises the schema's ValueError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastuss_fx.presets import Preset, preset_from_dict

PREFIX = "prompts:"
"""Free-prompt jobs are named ``prompts:speech+sfx``; ``:`` is in no preset name, shipped or saved."""


def free_preset(prompts: Any) -> Preset:
    """The preset of a free prompt list; ValueError (from ``preset_from_dict``) when it is not valid."""
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"free prompts: expected a list of prompt names, got {prompts!r}")
    return preset_from_dict({"name": PREFIX + "+".join(prompts), "prompts": prompts}, "free prompts")


def preset_key(preset: str | Path | Preset) -> str:
    """A cache key for what a job runs: a shipped name, a preset file, or a ``Preset`` by its content."""
    if isinstance(preset, Preset):
        return json.dumps(preset.to_dict(), sort_keys=True)
    return str(preset)
