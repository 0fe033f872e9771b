"""The benchmark scripts of ``benchmarks/`` that need the git history (run in a checkout only)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _git_head() -> str | None:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _train_reference(*args: str) -> subprocess.CompletedProcess:
    script = ROOT / "benchmarks" / "train_reference.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)


def test_train_reference_times_a_commits_trainer_side_by_side():
    """A commit's own trainer runs in a process that imports that commit's package, and every row
    gets its ratio to it; ``--compile`` times the compiled forward."""
    head = _git_head()
    if head is None:
        pytest.skip("not a git checkout")
    workload = ["tiny-causal", "--steps", "1", "--batch", "1", "--seconds", "0.2", "--threads", "1"]
    done = _train_reference(head[:7], *workload, "--compile", "eager", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    reference, new = json.loads(done.stdout)
    assert (reference["trainer"], reference["compile"], reference["processes"]) == (head[:7], "", 1)
    assert (new["trainer"], new["compile"]) == ("checkout", "eager")
    assert reference["vs_reference"] == 1.0
    ratio = new["audio_seconds_per_second"] / reference["audio_seconds_per_second"]
    assert abs(new["vs_reference"] - ratio) < 1e-9


def test_train_reference_names_a_commit_it_cannot_read():
    if _git_head() is None:
        pytest.skip("not a git checkout")
    done = _train_reference("no-such-commit", "tiny-causal")
    assert done.returncode == 2 and "cannot read commit 'no-such-commit'" in done.stderr


def test_the_package_runs_no_git():
    """Benchmarks that read the git history live in ``benchmarks/``, not in the installed package."""
    import fastuss_fx

    package = Path(fastuss_fx.__file__).parent
    calls = [p.relative_to(package) for p in package.rglob("*.py") if '"git"' in p.read_text()]
    assert not calls
