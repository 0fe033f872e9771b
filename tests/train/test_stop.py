import os
import signal

import pytest

from fastuss_fx.train.stop import END_EVALUATIONS, SAFETY, StopSignals, TimeBudget


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_budget_keeps_time_for_the_end_work():
    clock = Clock()
    budget = TimeBudget(10.0, clock=clock)  # 600 s
    assert budget.limited and not budget.should_stop()
    budget.observe_eval(40.0)
    budget.observe_save(2.0)
    budget.observe_step(5.0)
    reserve = SAFETY * (END_EVALUATIONS * 40.0 + 5 * 2.0) + 6.0
    assert budget.reserve() == pytest.approx(reserve)
    clock.now = 600 - reserve - 5.0 - 0.5  # one more step fits
    assert not budget.should_stop()
    assert budget.should_stop(eval_next=True)  # not with an evaluation after it
    clock.now += 1.0
    assert budget.should_stop()
    assert not TimeBudget(0).should_stop() and TimeBudget(0).left() == float("inf")
    resumed = TimeBudget(5.0, clock=clock)
    resumed.load_state_dict(budget.state_dict())
    assert resumed.eval_s == 40.0 and list(resumed.steps) == [5.0]


def test_steps_left_counts_the_steps_that_fit():
    clock = Clock()
    budget = TimeBudget(10.0, clock=clock)  # 600 s
    assert budget.steps_left() == float("inf") and TimeBudget(0).steps_left() == float("inf")
    budget.observe_eval(20.0)
    budget.observe_save(2.0)
    budget.observe_step(300.0)  # the first step of a session compiles: not a typical step
    assert budget.typical_step() is None and budget.steps_left() == float("inf")
    clock.now = 300.0
    for seconds in (5.0, 6.0, 4.0):
        budget.observe_step(seconds)
    assert budget.typical_step() == 5.0
    left = 600 - 300 - budget.reserve()
    assert budget.steps_left() == pytest.approx(left / 5.0)
    assert budget.steps_left(eval_every=10) == pytest.approx(left / (5.0 + 20.0 / 10))
    assert budget.steps_left(eval_minutes=1.0) == pytest.approx(left * 60 / 80 / 5.0)
    clock.now = 600.0
    assert budget.steps_left() == 0.0
    resumed = TimeBudget(10.0, clock=clock)
    resumed.load_state_dict(budget.state_dict())
    assert resumed.typical_step() == 5.5  # the saved step times all count: the median of 300, 5, 6, 4


def test_budget_measures_conservatively():
    budget = TimeBudget(1.0)
    budget.observe_eval(10.0)
    budget.observe_eval(2.0)  # a faster evaluation lowers the estimate only halfway
    assert budget.eval_s == 6.0
    budget.observe_eval(20.0)  # a slower one counts in full
    assert budget.eval_s == 20.0


def test_signals_set_a_flag_and_restore_the_handlers():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with StopSignals() as signals:
        assert not signals
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals and signals.name == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is before[0]  # a second SIGTERM acts as usual
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.name == "SIGINT"
