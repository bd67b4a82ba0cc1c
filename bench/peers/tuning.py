"""Tune each system on validation (same small grid budget for all), then touch test once.

Timing: `fit_s` = wall seconds of the selected config's fit; `tune_s` = all fits + validation
rankings; `score_s` = wall seconds to score and rank the test users once. Memory: `peak_rss_mib`
= peak resident set size of this process during the selected config's fit and test scoring,
minus the RSS just before the fit (psutil, sampled every 5 ms by a background thread) — it
covers numpy/torch/Cython allocations, which tracemalloc would not see.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Self

import psutil

from bench.peers.evaluation import SELECTION_METRIC, evaluate, evaluate_per_user
from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context

MAX_CONFIGS = 6  # the same tuning budget for every system


class PeakRss:
    """Context manager: peak RSS above the starting RSS, in MiB."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.peak_mib = 0.0

    def __enter__(self) -> Self:
        self.start = self.process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.peak_mib = (self.peak - self.start) / 2**20


@dataclass
class SystemResult:
    name: str
    library: str
    best_config: dict[str, Any]
    val: dict[str, float]
    test: dict[str, float]
    fit_s: float
    score_s: float
    tune_s: float
    peak_rss_mib: float
    grid: list[dict[str, Any]] = field(default_factory=list)
    val_per_config: list[float] = field(default_factory=list)
    notes: str = ""
    test_users: list[str] = field(default_factory=list)  # evaluated test users, for paired tests
    test_ndcg10_per_user: list[float] = field(default_factory=list)  # aligned with test_users
    # A system that runs its own search (mmrec-tuned): every trial's settings, validation value and cost, so
    # the quality / fit-time trade of its selection can be read back without the study's work folder.
    trials: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def tune_and_test(system: BenchSystem, split: Split, ctx: Context,
                  log: Callable[[str], None] = lambda _: None) -> SystemResult:
    """Fit every grid config on train, select on validation NDCG@10, evaluate the winner on test once."""
    if len(system.grid) > MAX_CONFIGS:
        raise ValueError(f"{system.name}: grid of {len(system.grid)} configs exceeds the budget of {MAX_CONFIGS}")
    tune_start = time.perf_counter()
    best = None
    val_scores = []
    for config in system.grid:
        gc.collect()
        with PeakRss() as memory:
            start = time.perf_counter()
            scorer = system.fit(split, config, ctx)
            fit_s = time.perf_counter() - start
        val = evaluate(split, scorer, "val")
        val_scores.append(val[SELECTION_METRIC])
        log(f"  {system.name} {config} fit {fit_s:.1f}s val {SELECTION_METRIC}={val[SELECTION_METRIC]:.4f}")
        if best is None or val[SELECTION_METRIC] > best[2][SELECTION_METRIC]:
            best = (config, scorer, val, fit_s, memory.peak_mib)
        del scorer
    tune_s = time.perf_counter() - tune_start
    config, scorer, val, fit_s, fit_mib = best
    # A system that searches inside one "config" (mmrec-tuned runs `mmrec tune`) reports what it chose
    # and the chosen fit's own seconds; the whole search stays in tune_s.
    config = {**config, **getattr(scorer, "chosen_config", {})}
    fit_s = getattr(scorer, "fit_seconds", fit_s)
    trials = list(getattr(scorer, "trials", []))
    with PeakRss() as memory:
        start = time.perf_counter()
        test, test_users, per_user = evaluate_per_user(split, scorer, "test")
        score_s = time.perf_counter() - start
    return SystemResult(
        name=system.name, library=system.library, best_config=config, val=val, test=test, fit_s=fit_s,
        score_s=score_s, tune_s=tune_s, peak_rss_mib=max(fit_mib, memory.peak_mib), grid=system.grid,
        val_per_config=val_scores, notes=system.notes, test_users=test_users,
        test_ndcg10_per_user=[round(float(v), 6) for v in per_user], trials=trials,
    )
