"""A base install runs without torch: build the wheel, install it into a new venv, run every preset there.

Marked ``torch_free_install`` (about a minute on an idle 2-core machine). pip installs the wheel's dependencies from the
package index, pinned by a constraints file to the versions installed here, so a machine that
just installed this environment finds them in pip's cache.
"""

import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import fastuss_fx

pytestmark = pytest.mark.torch_free_install

ROOT = Path(fastuss_fx.__file__).resolve().parents[1]

IN_THE_VENV = textwrap.dedent(
    """
    import importlib.util, sys, warnings
    import numpy as np
    from fastuss_fx import FasTUSS
    from fastuss_fx.io import write_audio
    from fastuss_fx.presets import list_presets

    assert importlib.util.find_spec("torch") is None and importlib.util.find_spec("onnx") is None
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, 22050))).astype(np.float32)
    for name in list_presets():
        for mode in ("offline", "realtime"):  # 1-s offline windows: the shipped 6-s ones take seconds each
            out = FasTUSS.from_preset(name, mode=mode, segment_seconds=1.0)(audio[0], 44100)
            assert out.shape == audio[0].shape and np.isfinite(out).all() and np.abs(out).max() > 0, (name, mode)
    live = FasTUSS.from_preset("denoise")
    streamed = np.concatenate([live(block, 44100, reset=False) for block in np.split(audio, 7, axis=1)], axis=1)
    assert streamed.shape == (2, audio.shape[1] - live.latency_samples), streamed.shape
    try:
        FasTUSS.from_preset("denoise", engine="torch").backend
    except ImportError as err:
        assert "pip install 'fastuss-fx[torch]'" in str(err), err
    else:
        raise AssertionError("engine='torch' ran without torch")
    assert "torch" not in sys.modules
    write_audio("scene.wav", audio, 44100)
    print(len(list_presets()), "presets ran")
    """
)


def _run(command: list, cwd: Path) -> str:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _constraints(path: Path) -> Path:
    """Every distribution installed here, pinned (only those the wheel needs are used)."""
    pins = {d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"] != "fastuss-fx"}
    path.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    return path


def test_presets_run_in_a_venv_without_torch(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "fastuss_fx", source / "fastuss_fx", ignore=shutil.ignore_patterns("__pycache__"))
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp_path / "dist", source],
        tmp_path,
    )
    (wheel,) = (tmp_path / "dist").glob("fastuss_fx-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path)
    python = venv / "bin" / "python"
    constraints = _constraints(tmp_path / "constraints.txt")
    _run([python, "-m", "pip", "install", "--quiet", "--constraint", constraints, wheel], tmp_path)

    assert "presets ran" in _run([python, "-c", IN_THE_VENV], tmp_path)
    _run([venv / "bin" / "fastuss", "separate", "-q", "scene.wav", "-p", "dialog_only", "-o", "dialog.wav"], tmp_path)
    assert (tmp_path / "dialog.wav").stat().st_size > 0
    installed = _run([python, "-m", "pip", "list", "--format=freeze"], tmp_path).lower()
    assert "torch" not in installed and "\nonnx==" not in f"\n{installed}", installed
