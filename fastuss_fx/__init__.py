"""fastuss-fx: prompt-driven sound separation (FasTUSS) as a pedalboard-compatible processor.

Public API: :class:`FasTUSS`, :class:`Chain`, :func:`load_preset`. Names are imported on first
use, so ``import fastuss_fx`` stays light (and never imports torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["FasTUSS", "Chain", "load_preset", "__version__"]

_LAZY = {"FasTUSS": "fastuss_fx.processor", "Chain": "fastuss_fx.chain", "load_preset": "fastuss_fx.presets"}

if TYPE_CHECKING:
    from fastuss_fx.chain import Chain
    from fastuss_fx.presets import load_preset
    from fastuss_fx.processor import FasTUSS


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fastuss_fx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
