"""Separation metrics on numpy arrays (no torch): the package's one SI-SDR and SNR.

``si_sdr`` is the scale-invariant SDR of Le Roux et al. (2019), zero-mean. ``snr`` is the plain
signal-to-noise ratio of the estimate: what older papers call "SDR" without BSS-eval's allowed
distortion filter; it is named for what it is. ``is_silent`` is the package's one test for a
silent source: the training loss and the scoring both use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_EPS = 1e-12
SILENT_POWER = 1e-10
"""A signal whose mean power (full scale = 1) is at or below this, about -100 dBFS, is silent."""


def is_silent(signal: Any) -> Any:
    """Whether each signal is silent (mean power over the last axis <= ``SILENT_POWER``).

    Args:
        signal: [..., N] a floating-point numpy array or torch tensor (the loss passes tensors; no torch
            import here).

    Returns:
        [...] booleans of the same kind: a silent target has no SNR or SDR to score.
    """
    return (signal * signal).mean(-1) <= SILENT_POWER


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = np.asarray(reference, np.float64), np.asarray(estimate, np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"reference and estimate differ in shape: {np.shape(reference)} vs {np.shape(estimate)}")
    return ref, est


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Scale-invariant SDR in dB over the last axis (signals made zero-mean first)."""
    ref, est = _pair(reference, estimate)
    ref = ref - ref.mean(-1, keepdims=True)
    est = est - est.mean(-1, keepdims=True)
    scale = (est * ref).sum(-1, keepdims=True) / ((ref * ref).sum(-1, keepdims=True) + _EPS)
    target = scale * ref
    return 10 * np.log10(((target * target).sum(-1) + _EPS) / (((est - target) ** 2).sum(-1) + _EPS))


def snr(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Signal-to-noise ratio in dB over the last axis: reference energy over the error's."""
    ref, est = _pair(reference, estimate)
    return 10 * np.log10(((ref * ref).sum(-1) + _EPS) / (((ref - est) ** 2).sum(-1) + _EPS))


def si_sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SI-SDR in dB of a whole clip, channels pooled (any shape, flattened)."""
    ref, est = _pair(reference, estimate)
    return float(si_sdr(ref.ravel(), est.ravel()))
