"""How many CPUs this process may really use: its affinity mask and its cgroup CPU quota.

``os.cpu_count()`` counts the machine's cores, which over-subscribes a container or a
``taskset`` (a 2-CPU quota on a 64-core host would get 64 threads).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), None if unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may run on: the affinity mask, capped by the cgroup quota (at least 1)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        count = min(count, math.ceil(limit))
    return max(1, count)


def bf16_support(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """How this x86 CPU runs bfloat16 matrix products: ``native`` (AVX512-BF16 or AMX), ``emulated``
    (AVX-512 without them: converted on the fly), ``none`` (AVX2 only: several times slower than
    float32), or ``unknown`` (no /proc/cpuinfo, or not x86)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return "unknown"
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    flags = set(line.partition(":")[2].split())
    if not flags or "avx2" not in flags and "avx512f" not in flags:
        return "unknown"
    if flags & {"avx512_bf16", "amx_bf16"}:
        return "native"
    return "emulated" if {"avx512f", "avx512bw"} <= flags else "none"
