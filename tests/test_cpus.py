import os

import pytest

from fastuss_fx import cpus
from fastuss_fx.runtime.session import make_session


def test_cgroup_quota_caps_the_affinity_mask(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs -> 2 threads
    assert cpus.cgroup_cpu_limit(tmp_path) == 1.5
    assert cpus.available_cpus(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpus.cgroup_cpu_limit(tmp_path) is None and cpus.available_cpus(tmp_path) == 64


def test_cgroup_v1_quota_and_no_cgroup(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.available_cpus(tmp_path) == 1
    assert cpus.available_cpus(tmp_path / "missing") == 4


def test_sessions_use_the_cpus_this_process_may_run_on(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "id.onnx"
    onnx.save(helper.make_model(graph), str(path))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda root=None: None)
    session = make_session(path)
    assert session.get_session_options().intra_op_num_threads == 1


@pytest.mark.parametrize(
    ("flags", "support"),
    [
        ("fpu sse avx avx2 fma", "none"),  # AMD EPYC / Haswell class: bf16 would be a silent slowdown
        ("avx avx2 avx512f avx512bw avx512_vnni", "emulated"),
        ("avx2 avx512f avx512bw avx512_bf16", "native"),
        ("avx2 amx_bf16 amx_tile", "native"),
        ("fp asimd", "unknown"),  # not x86
    ],
)
def test_bf16_support_from_the_cpu_flags(tmp_path, flags, support):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpus.bf16_support(cpuinfo) == support
    assert cpus.bf16_support(tmp_path / "missing") == "unknown"


def test_bf16_training_falls_back_to_fp32_where_it_would_be_slow(monkeypatch, caplog):
    import torch

    from fastuss_fx.train import loop
    from fastuss_fx.train.config import TrainConfig

    cfg = TrainConfig(precision="bf16")
    monkeypatch.setattr(loop, "bf16_support", lambda: "none")
    assert loop.precision_for_this_cpu(cfg, torch.device("cpu")).precision == "fp32"
    assert "training in fp32 instead" in caplog.text
    monkeypatch.setattr(loop, "bf16_support", lambda: "native")
    assert loop.precision_for_this_cpu(cfg, torch.device("cpu")).precision == "bf16"
