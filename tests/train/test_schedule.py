import pytest

from fastuss_fx.train.schedule import Plateau, lr_at


def test_warmup_then_flat():
    assert lr_at(0, 1e-3, 10) == pytest.approx(1e-4)
    assert lr_at(9, 1e-3, 10) == pytest.approx(1e-3)
    assert lr_at(500, 1e-3, 10, scale=0.25) == pytest.approx(2.5e-4)
    assert lr_at(0, 1e-3, 0) == pytest.approx(1e-3)


def test_plateau_cuts_after_patience_and_round_trips():
    plateau = Plateau(patience=2, factor=0.5, min_scale=0.2)
    assert plateau.update(1.0) and plateau.scale == 1.0
    assert not plateau.update(1.5) and plateau.scale == 1.0
    assert not plateau.update(1.2) and plateau.scale == 0.5
    assert plateau.update(0.9) and plateau.bad == 0
    for _ in range(10):
        plateau.update(5.0)
    assert plateau.scale == 0.2
    again = Plateau()
    again.load_state_dict(plateau.state_dict())
    assert again == plateau
