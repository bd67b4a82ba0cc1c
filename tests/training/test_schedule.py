import math

import pytest
import torch

from mmrec.settings import TrainingSettings
from mmrec.training.optim import build_optimizer
from mmrec.training.schedule import EarlyStopping, LRSchedule


def schedule(**overrides):
    cfg = TrainingSettings(**{"epochs": 10, "learning_rate": 1.0, **overrides})
    optimizer = build_optimizer(torch.nn.Linear(2, 2), cfg)
    return LRSchedule(optimizer, cfg, steps_per_epoch=10), optimizer


def lrs(sched, optimizer, steps):
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        sched.step()
    return out


def test_warmup_then_constant():
    sched, opt = schedule(warmup_steps=4)
    assert lrs(sched, opt, 6) == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_cosine_decays_to_zero_and_step_decays_by_gamma():
    sched, opt = schedule(scheduler="cosine")
    values = lrs(sched, opt, 100)
    assert values[0] == 1.0 and values[50] == pytest.approx(0.5) and values[-1] < 0.01
    sched, opt = schedule(scheduler="step", step_size=2, gamma=0.5)
    values = lrs(sched, opt, 50)
    assert values[19] == 1.0 and values[20] == 0.5 and values[40] == 0.25


def test_onecycle_rises_then_falls():
    sched, opt = schedule(scheduler="onecycle")
    values = lrs(sched, opt, 100)
    peak = max(range(100), key=values.__getitem__)
    assert values[0] == pytest.approx(1 / 25) and 25 <= peak <= 31 and values[-1] < 0.01


def test_plateau_decays_on_stalled_metric_and_state_roundtrips():
    sched, opt = schedule(scheduler="plateau", patience=2, gamma=0.5)  # decays after 1 bad epoch
    sched.epoch_end(0.5)
    sched.epoch_end(0.4)
    assert opt.param_groups[0]["lr"] == 0.5
    other, other_opt = schedule(scheduler="plateau", patience=2, gamma=0.5)
    other.load_state_dict(sched.state_dict())
    assert other_opt.param_groups[0]["lr"] == 0.5




def test_early_stopping():
    stopper = EarlyStopping(patience=2)
    assert stopper.update(0.1, 1) and not stopper.update(0.1, 2) and not stopper.should_stop
    assert not stopper.update(0.05, 3) and stopper.should_stop
    assert stopper.best == 0.1 and stopper.best_epoch == 1 and math.isfinite(stopper.best)
