import math

import pytest

from fastuss_fx.train.schedule import Plateau, Schedule, decay_factor, learning_rate, peak_warning
from fastuss_fx.train.stop import TimeBudget


def run_steps(schedule, steps, first=0, until=None):
    """The rates of steps ``first`` .. ``until - 1`` (default: all) of a run that stops at ``steps``,
    stepped as the loop steps them."""
    rates = []
    for step in range(first, steps if until is None else until):
        rates.append(schedule.rate())
        schedule.advance(steps - step - 1)
    return rates


def test_the_curve_at_known_progress():
    kw = {"lr": 1.0, "min_lr": 0.0}
    assert learning_rate(0.0, shape="cosine", warmup_fraction=0.0, **kw) == 1.0
    assert learning_rate(0.25, shape="cosine", warmup_fraction=0.0, **kw) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4))
    )
    assert learning_rate(0.5, shape="linear", warmup_fraction=0.0, **kw) == pytest.approx(0.5)
    # warm-up from min_lr to lr over the first 20 %, then the decay over the other 80 %
    kw = {"lr": 1e-3, "min_lr": 1e-5, "warmup_fraction": 0.2}
    assert learning_rate(0.0, shape="linear", **kw) == pytest.approx(1e-5)
    assert learning_rate(0.1, shape="linear", **kw) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert learning_rate(0.2, shape="linear", **kw) == pytest.approx(1e-3)
    assert learning_rate(0.6, shape="linear", **kw) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert learning_rate(1.0, shape="cosine", **kw) == pytest.approx(1e-5)
    assert learning_rate(0.7, shape="plateau", scale=0.25, **kw) == pytest.approx(2.5e-4)
    assert decay_factor(0.25, "linear") == pytest.approx(0.75) and decay_factor(0.9, "plateau") == 1.0
    with pytest.raises(ValueError, match="unknown schedule 'step'"):
        Schedule("step")
    with pytest.raises(ValueError, match="warmup_fraction must be in"):
        Schedule("cosine", warmup_fraction=1.0)


def test_warmup_and_decay_share_the_step_horizon():
    schedule = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    rates = run_steps(schedule, 100)
    assert rates[0] == 0.0 and rates[5] == pytest.approx(0.5) and rates[10] == pytest.approx(1.0)
    assert max(rates) == pytest.approx(1.0) and rates.index(max(rates)) == 10
    assert rates[55] == pytest.approx(0.5) and rates[-1] == pytest.approx(1 / 90)  # the decay ends with stepping
    assert schedule.progress == pytest.approx(1.0)


def test_plateau_cuts_after_patience_and_keeps_its_settings_on_resume():
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
    assert (again.best, again.bad, again.scale) == (plateau.best, plateau.bad, plateau.scale)
    assert (again.patience, again.factor, again.min_scale) == (5, 0.5, 0.01)  # as configured now


def timed_run(minutes, step_s, first_step_s, eval_s=20.0, save_s=1.0, warmup_fraction=0.05):
    """Step a schedule as the loop does under a time budget on a virtual clock; returns the rates,
    the progress of each step and the budget."""
    now = [0.0]
    budget = TimeBudget(minutes, clock=lambda: now[0])
    budget.observe_eval(eval_s)
    budget.observe_save(save_s)
    now[0] += eval_s  # the step-0 evaluation
    schedule = Schedule("cosine", lr=1e-3, min_lr=1e-5, warmup_fraction=warmup_fraction)
    rates, progress = [], []
    while not budget.should_stop():
        rates.append(schedule.rate())
        progress.append(schedule.progress)
        seconds = first_step_s if not progress[:-1] else step_s
        now[0] += seconds
        budget.observe_step(seconds)
        schedule.advance(min(200_000 - len(rates), budget.steps_left()))
    return rates, progress, budget


def test_a_time_budget_horizon_ends_where_stepping_ends():
    """120 minutes of 5-s steps after a 10-minute first step (a compile): the decay reaches its end
    at the last step that fits, not at the end of the budget, and the compile eats no warm-up."""
    rates, progress, budget = timed_run(120, step_s=5.0, first_step_s=600.0)
    steps = len(rates)
    assert abs(steps - (1 + (7200 - 20 - 600 - 139.5) / 5)) < 2  # the reserve: 1.5 * (2 * 20 + 5 * 1) + 72 s
    assert progress[-1] > 1 - 2 / steps  # the last step is at the end of the curve
    assert rates[-1] < 1.1e-5
    assert progress[1] < 1 / 1000  # the compiling first step advanced progress by a step's share, not 10 minutes'
    peak = rates.index(max(rates))
    assert max(rates) == pytest.approx(1e-3, rel=1e-3) and abs(peak - 0.05 * steps) < 5
    assert budget.steps_left() < 1  # what is left is the time kept for the end work


def test_resumed_runs_continue_their_schedule():
    whole = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    rates = run_steps(whole, 100)
    # interrupted after 40 steps: the same curve to the last bit
    first = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    run_steps(first, 100, until=40)
    again = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    again.load_state_dict(first.state_dict())
    again.begin(steps_to_go=True)
    assert run_steps(again, 100, first=40) == rates[40:]
    # interrupted in the warm-up (step 5) and resumed with steps=200: the warm-up goes on, not again
    early = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    run_steps(early, 100, until=5)
    longer = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    longer.load_state_dict(early.state_dict())
    longer.begin(steps_to_go=True)
    tail = run_steps(longer, 200, first=5)
    assert tail[0] == pytest.approx(rates[5]) == pytest.approx(0.5)  # where it stopped, not from the start
    assert tail[:11] == sorted(tail[:11]) and max(tail) > 0.99  # the warm-up goes on to the peak
    # a finished run (a budgeted session that ended) resumed with steps to go: a new decay from lr, no warm-up
    whole.finished = True
    restart = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    restart.load_state_dict(whole.state_dict())
    restart.begin(steps_to_go=True)
    assert restart.cycle == 1 and restart.progress == 0.0 and not restart.finished
    assert run_steps(restart, 50)[:2] == [1.0, pytest.approx(0.98)]
    # without steps to go nothing restarts; a checkpoint of the older schedule (no cycle) has warmed up
    done = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    done.load_state_dict({**whole.state_dict(), "finished": True})
    done.begin(steps_to_go=False)
    assert done.finished and done.progress == pytest.approx(1.0)
    old = Schedule("cosine", lr=1.0, min_lr=0.0, warmup_fraction=0.1)
    old.load_state_dict({"cycle_start": 0, "anchor_step": 0, "progress": 0.01, "finished": False})
    assert old.rate() == pytest.approx(decay_factor(0.01, "cosine"))


def test_a_warning_when_the_peak_is_out_of_reach():
    assert peak_warning(Schedule("cosine", lr=1e-3, warmup_fraction=0.05), 1400) is None
    short = Schedule("cosine", lr=1e-3, min_lr=0.0, warmup_fraction=0.5)
    assert short.planned_peak(3) == pytest.approx(max(run_steps(Schedule(**vars(short)), 3)))
    message = peak_warning(short, 3)
    assert message is not None and "75 % of lr 0.001" in message and "--warmup-fraction" in message
    # halfway through the warm-up with one step to go
    halfway = Schedule("linear", lr=1.0, min_lr=0.0, warmup_fraction=0.2, progress=0.1)
    assert halfway.planned_peak(1) == pytest.approx(0.5) and "50 % of lr" in (peak_warning(halfway, 1) or "")
    # the peak lies behind: no warning
    assert peak_warning(Schedule("cosine", lr=1e-3, warmup_fraction=0.2, progress=0.5), 1) is None
