"""Learning-rate schedules (warmup x cosine/step/one-cycle x plateau) and early stopping.

Both keep their state in plain numbers, so checkpoints load with torch.load(weights_only=True).
"""

from __future__ import annotations

import math
from typing import Any


from mmrec.settings import TrainingSettings
from mmrec.training.optim import Optimizer


class LRSchedule:
    """Sets every param group's lr each step: base_lr * warmup(step) * shape(step) * plateau_factor."""

    def __init__(self, optimizer: Optimizer, cfg: TrainingSettings, steps_per_epoch: int) -> None:
        self.optimizer = optimizer
        self.kind = cfg.scheduler
        self.base_lr = cfg.learning_rate
        self.warmup_steps = cfg.warmup_steps
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = max(1, self.steps_per_epoch * cfg.epochs)
        self.step_size = cfg.step_size
        self.gamma = cfg.gamma
        self.patience = max(1, cfg.patience // 2)  # plateau decays before early stopping gives up
        self.step_count = 0
        self.plateau_factor = 1.0
        self.plateau_best = -math.inf
        self.plateau_bad_epochs = 0
        self._apply()

    def _shape(self, step: int) -> float:
        progress = min(1.0, step / self.total_steps)
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.kind == "step":
            return self.gamma ** (step // self.steps_per_epoch // self.step_size)
        if self.kind == "onecycle":
            # Rise from lr/25 to lr over the first 30% (or the warmup steps), then anneal to lr/1e4.
            rise = self.warmup_steps / self.total_steps if self.warmup_steps else 0.3
            if progress < rise:
                return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * progress / rise))
            fall = (progress - rise) / max(1e-12, 1 - rise)
            return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * fall))
        return 1.0

    def current_lr(self) -> float:
        warmup = 1.0
        if self.warmup_steps and self.kind != "onecycle":
            warmup = min(1.0, (self.step_count + 1) / self.warmup_steps)
        return self.base_lr * warmup * self._shape(self.step_count) * self.plateau_factor

    def _apply(self) -> None:
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        """After each optimizer step."""
        self.step_count += 1
        self._apply()

    def epoch_end(self, metric: float) -> None:
        """Reduce-on-plateau: halve (x gamma) the lr when the monitored metric stops improving."""
        if self.kind != "plateau":
            return
        if metric > self.plateau_best:
            self.plateau_best, self.plateau_bad_epochs = metric, 0
        else:
            self.plateau_bad_epochs += 1
            if self.plateau_bad_epochs >= self.patience:
                self.plateau_factor *= self.gamma
                self.plateau_bad_epochs = 0
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "plateau_factor": self.plateau_factor,
            "plateau_best": self.plateau_best,
            "plateau_bad_epochs": self.plateau_bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.plateau_factor = float(state["plateau_factor"])
        self.plateau_best = float(state["plateau_best"])
        self.plateau_bad_epochs = int(state["plateau_bad_epochs"])
        self._apply()


class EarlyStopping:
    """Stops after `patience` epochs without the monitored (higher-is-better) metric improving."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best = -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0

    def update(self, metric: float, epoch: int) -> bool:
        """Record one epoch's metric; True when it is a new best."""
        if metric > self.best + self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = metric, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
