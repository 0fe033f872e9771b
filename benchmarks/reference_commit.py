"""The trainer of an older commit, for benchmarks that time it beside this checkout's.

``reference_tree`` writes that commit's ``fastuss_fx`` into a folder (``git archive`` of this
repository; git state is not touched); ``reference_step_seconds`` times one of its training steps
in a process that imports that copy. Used by ``train_reference.py`` and ``train_throughput.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEED = ROOT / "fastuss_fx" / "train" / "speed.py"


def reference_tree(ref: str, into: str | Path) -> Path:
    """``fastuss_fx`` of commit ``ref`` written under ``into``; returns ``into``.

    Raises:
        ValueError: ``ref`` is not a commit of this repository, or git is missing.
    """
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "fastuss_fx"], capture_output=True, check=True
        ).stdout
    except subprocess.CalledProcessError as error:
        why = error.stderr.decode(errors="replace").strip()
        raise ValueError(f"cannot read commit {ref!r} from the git history of {ROOT}: {why}") from error
    except OSError as error:
        raise ValueError(f"cannot read commit {ref!r} (is git installed?): {error}") from error
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return Path(into)


def reference_step_seconds(
    tree: str | Path, variant: str, threads: int, steps: int, batch_size: int, crop_seconds: float, seed: int = 0
) -> float:
    """Seconds per training step (fp32, eager, one process) of the trainer in ``tree``: this
    checkout's ``fastuss_fx.train.speed.step_seconds``, run in a process whose ``fastuss_fx`` is
    that tree's (the function only uses the trainer API of commit 0ed1e96 and later)."""
    code = (
        "import json, runpy, sys, fastuss_fx; "
        "assert fastuss_fx.__file__.startswith(sys.argv[3]), f'imported {fastuss_fx.__file__}'; "
        "step_seconds = runpy.run_path(sys.argv[1])['step_seconds']; "
        "print(json.dumps(step_seconds(*json.loads(sys.argv[2]))))"
    )
    share = [variant, threads, "fp32", steps, batch_size, crop_seconds, seed]
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(SPEED), json.dumps(share), str(tree)],
        env=env,
        cwd=str(tree),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"the reference trainer in {tree} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])
