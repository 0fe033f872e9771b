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
