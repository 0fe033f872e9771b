import math

import pytest

from fastuss_fx.train.schedule import Plateau, Schedule, decay_factor, lr_at


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


def test_cosine_and_linear_reach_min_lr_at_the_horizon():
    for shape, middle in (("cosine", 0.5), ("linear", 0.5)):
        schedule = Schedule(shape, lr=1e-3, min_lr=1e-5, warmup_steps=0, steps=100)
        schedule.begin(0)
        assert schedule(0) == pytest.approx(1e-3)
        assert schedule(50) == pytest.approx(1e-5 + (1e-3 - 1e-5) * middle)
        assert schedule(100) == pytest.approx(1e-5) and schedule(500) == pytest.approx(1e-5)
    cosine = Schedule("cosine", lr=1.0, min_lr=0.0, warmup_steps=0, steps=100)
    assert cosine(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert decay_factor(0.25, "linear") == pytest.approx(0.75) and decay_factor(0.9, "plateau") == 1.0
    with pytest.raises(ValueError, match="unknown schedule"):
        Schedule("step")


def test_warmup_multiplies_the_curve_and_plateau_keeps_the_old_lr():
    schedule = Schedule("cosine", lr=1e-3, min_lr=0.0, warmup_steps=10, steps=1000)
    assert schedule(0) == pytest.approx(1e-4 * decay_factor(0.0, "cosine"))
    assert schedule(9) == pytest.approx(1e-3 * decay_factor(0.009, "cosine"))
    plateau = Schedule("plateau", lr=1e-3, min_lr=1e-5, warmup_steps=10, steps=1000)
    for step, scale in ((0, 1.0), (9, 1.0), (500, 0.25)):
        assert plateau(step, scale=scale) == pytest.approx(lr_at(step, 1e-3, 10, scale))


def test_time_budget_is_the_horizon_when_it_comes_first():
    schedule = Schedule("linear", lr=1.0, min_lr=0.0, warmup_steps=0, steps=200_000, budget_s=600.0)
    schedule.begin(0)
    assert schedule(10, elapsed_s=300.0) == pytest.approx(0.5, abs=1e-3)
    assert schedule.progress == pytest.approx(0.5, abs=1e-3)
    assert schedule(20, elapsed_s=600.0) == 0.0


def test_resume_continues_or_starts_a_new_cycle():
    first = Schedule("linear", lr=1.0, min_lr=0.0, warmup_steps=0, steps=100)
    first.begin(0)
    lrs = [first(step) for step in range(100)]
    # interrupted at 40, same steps: exactly the same curve
    again = Schedule("linear", lr=1.0, min_lr=0.0, warmup_steps=0, steps=100)
    first.progress = first.progress_at(40)
    again.load_state_dict(first.state_dict())
    again.begin(40)
    assert [again(step) for step in range(40, 100)] == lrs[40:]
    # interrupted at 40 (progress 0.4), resumed with a 10-minute budget: the rest of the curve spans the budget
    timed = Schedule("linear", lr=1.0, min_lr=0.0, warmup_steps=0, steps=200_000, budget_s=600.0)
    timed.load_state_dict(first.state_dict())
    timed.begin(40)
    assert timed(40, 0.0) == pytest.approx(0.6) and timed(41, 300.0) == pytest.approx(0.3)
    # interrupted at 40, resumed with steps=160: from progress 0.4 down to 0 over steps 40..160
    longer = Schedule("linear", lr=1.0, min_lr=0.0, warmup_steps=0, steps=160)
    longer.load_state_dict(first.state_dict())
    longer.begin(40)
    assert longer(40) == pytest.approx(0.6) and longer(100) == pytest.approx(0.3)
    # a finished run given more steps warms up again and decays over the new horizon
    done = Schedule("linear", lr=1.0, min_lr=0.0, warmup_steps=10, steps=300)
    done.load_state_dict({**first.state_dict(), "finished": True, "progress": 1.0})
    done.begin(100)
    assert done.cycle_start == 100 and not done.finished
    assert done(100) == pytest.approx(0.1) and done(200) == pytest.approx(0.5)
