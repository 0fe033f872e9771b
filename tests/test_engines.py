"""The onnxruntime engine behind the processor: same output as torch, torch-free once cached."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from fastuss_fx import FasTUSS
from fastuss_fx.engines import load_onnx_backend
from fastuss_fx.runtime.onnx import OnnxBackend, OnnxStreamingBackend


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("mode, model", [("offline", "tiny"), ("realtime", "tiny-causal")])
def test_onnx_and_torch_engines_agree(mode, model):
    audio = (0.3 * np.random.randn(2, 30001)).astype(np.float32)
    outputs = {}
    for engine in ("onnx", "torch"):
        fx = FasTUSS(
            ["speech", "sfx"], {"speech": 0.0, "sfx": -6.0}, mode=mode, model=model, engine=engine, allow_untrained=True
        )
        outputs[engine] = fx(audio, 48000)
    assert np.abs(outputs["onnx"] - outputs["torch"]).max() <= 1e-4


def test_default_engine_is_onnxruntime():
    fx = FasTUSS(["speech"], mode="realtime", model="tiny-causal", allow_untrained=True)
    assert isinstance(fx.backend, OnnxStreamingBackend)
    assert fx.backend.session_for(1, 1).get_session_options().intra_op_num_threads == 1
    assert isinstance(FasTUSS(["speech"], model="tiny", allow_untrained=True).backend, OnnxBackend)


def test_backend_is_shared_per_variant():
    assert load_onnx_backend("tiny", None) is load_onnx_backend("tiny", None)


def test_bad_engine():
    with pytest.raises(ValueError, match="engine.*onnx, onnx-int8, torch.*'tensorrt'"):
        FasTUSS(["speech"], model="tiny", allow_untrained=True, engine="tensorrt")
    with pytest.raises(ValueError, match="onnx-int8.*causal"):
        FasTUSS(["speech"], model="tiny", allow_untrained=True, engine="onnx-int8")


def test_int8_engine_runs_the_int8_step_graph():
    fx = FasTUSS(["speech", "sfx"], mode="realtime", model="tiny-causal", allow_untrained=True, engine="onnx-int8")
    assert fx.backend.int8 and fx.backend.step_file.name.endswith(".int8.onnx")
    audio = (0.1 * np.random.default_rng(0).standard_normal((2, 9600))).astype(np.float32)
    out = fx(audio, 48000)
    assert out.shape == audio.shape and np.isfinite(out).all()


def test_processing_with_cached_graphs_never_imports_torch():
    _ = FasTUSS(
        ["speech"], mode="realtime", model="tiny-causal", allow_untrained=True
    ).backend  # fills the cache (torch)
    code = (
        "import sys, warnings, numpy as np\n"
        "warnings.simplefilter('ignore')\n"
        "from fastuss_fx import FasTUSS\n"
        "fx = FasTUSS(['speech'], mode='realtime', model='tiny-causal', allow_untrained=True)\n"
        "out = fx(np.zeros((2, 4801), np.float32), 44100)\n"
        "assert out.shape == (2, 4801)\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_shipped_models_run_where_torch_cannot_be_imported():
    code = textwrap.dedent(
        """
        import sys, warnings
        sys.modules["torch"] = sys.modules["onnx"] = None  # `import torch` fails; find_spec("torch") is None
        warnings.simplefilter("ignore")
        import numpy as np
        from fastuss_fx import FasTUSS
        audio = (0.1 * np.random.default_rng(0).standard_normal((2, 4801))).astype(np.float32)
        for mode in ("offline", "realtime"):
            out = FasTUSS.from_preset("dialog_only", mode=mode, segment_seconds=1.0)(audio, 44100)
            assert out.shape == audio.shape and np.isfinite(out).all() and np.abs(out).max() > 0, mode
        needs_export = [
            {"mode": "realtime", "engine": "torch"},
            {"mode": "realtime", "engine": "onnx-int8"},
            {"model": "tiny", "allow_untrained": True},
        ]
        for kwargs in needs_export:
            try:
                FasTUSS(["speech"], **kwargs).backend
            except ImportError as err:
                print(err)
            else:
                raise AssertionError(f"{kwargs} ran without torch")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    errors = result.stdout.strip().splitlines()
    assert len(errors) == 3 and all("pip install 'fastuss-fx[torch]'" in e for e in errors), errors
    assert "engine='torch'" in errors[0]
    assert "int8 step graph of 'fastuss-causal'" in errors[1]
    assert "ONNX graphs of 'tiny'" in errors[2]


def test_threads_parameter():
    fx = FasTUSS(["speech"], model="tiny", allow_untrained=True, threads=2)
    assert fx.backend.session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(ValueError, match="threads.*0"):
        FasTUSS(["speech"], model="tiny", allow_untrained=True, threads=0)


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_a_given_model_is_left_as_it_is(engine):
    from fastuss_fx.model import TUSS

    model = TUSS.from_variant("tiny-causal")  # training form, train mode
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fx = FasTUSS(["speech"], mode="realtime", model=model, engine=engine)
    out = fx((0.1 * np.random.default_rng(0).standard_normal((1, 2000))).astype(np.float32), 48000)
    assert out.shape == (1, 2000) and model.training
    assert model.state_dict().keys() == state.keys()
    assert all((model.state_dict()[k] == v).all() for k, v in state.items())
