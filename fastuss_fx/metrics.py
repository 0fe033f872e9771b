"""Separation metrics on numpy arrays (no torch)."""

from __future__ import annotations

import numpy as np


def si_sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB of ``estimate`` against ``reference`` (same shape, channels pooled)."""
    ref = np.asarray(reference, np.float64).ravel()
    est = np.asarray(estimate, np.float64).ravel()
    if ref.shape != est.shape:
        raise ValueError(f"reference and estimate differ in shape: {np.shape(reference)} vs {np.shape(estimate)}")
    target = (est @ ref) / max(ref @ ref, 1e-20) * ref
    noise = est - target
    return float(10 * np.log10(max(target @ target, 1e-20) / max(noise @ noise, 1e-20)))
