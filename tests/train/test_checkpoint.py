import pickle

import pytest
import torch

from fastuss_fx.train.checkpoint import (
    BestKeeper,
    average_state_dicts,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)


def test_average_known_answer():
    states = [
        {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(1)},
        {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(2)},
    ]
    averaged = average_state_dicts(states)
    assert averaged["w"].tolist() == [2.0, 4.0] and int(averaged["n"]) == 2
    with pytest.raises(ValueError, match="different keys"):
        average_state_dicts([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}])


def test_best_keeper_keeps_lowest(tmp_path):
    keeper = BestKeeper(tmp_path / "best", keep=2)
    for step, value in [(1, 5.0), (2, 3.0), (3, 4.0), (4, 6.0), (5, 1.0)]:
        keeper.offer(value, step, {"step": step})
    assert [s for _, s, _ in keeper.entries] == [5, 2]
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["step_0000002.pt", "step_0000005.pt"]
    assert load_checkpoint(keeper.paths()[0])["step"] == 5


def test_rng_round_trip(tmp_path):
    save_checkpoint({"rng": capture_rng()}, tmp_path / "c.pt")
    expected = torch.rand(3)
    restore_rng(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert torch.equal(torch.rand(3), expected)
    assert not (tmp_path / "c.pt.tmp").exists()
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_save_is_atomic_and_best_keeper_replaces_a_step(tmp_path):
    save_checkpoint({"a": 1}, tmp_path / "last.pt")
    save_checkpoint({"a": 2}, tmp_path / "last.pt")
    assert load_checkpoint(tmp_path / "last.pt") == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        save_checkpoint({"bad": lambda: 0}, tmp_path / "last.pt")  # cannot be pickled: the old file stays
    assert load_checkpoint(tmp_path / "last.pt") == {"a": 2} and sorted(p.name for p in tmp_path.iterdir()) == [
        "last.pt"
    ]
    keeper = BestKeeper(tmp_path / "best", keep=2)
    keeper.offer(3.0, 5, {"v": 3.0})
    keeper.offer(2.0, 5, {"v": 2.0})  # the same step again (e.g. a resumed run's first evaluation)
    assert keeper.entries == [(2.0, 5, "step_0000005.pt")] and load_checkpoint(keeper.paths()[0])["v"] == 2.0


def test_best_keeper_keeps_its_configured_count_after_a_resume(tmp_path):
    keeper = BestKeeper(tmp_path / "best", keep=3)
    for step, value in [(1, 3.0), (2, 2.0), (3, 1.0)]:
        keeper.offer(value, step, {"step": step})
    fewer = BestKeeper(tmp_path / "best", keep=1)
    fewer.load_state_dict(keeper.state_dict())
    assert fewer.keep == 1
    assert not fewer.offer(5.0, 4, {"step": 4})  # not kept, and the extra snapshots go
    assert fewer.entries == [(1.0, 3, "step_0000003.pt")]
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["step_0000003.pt"]
