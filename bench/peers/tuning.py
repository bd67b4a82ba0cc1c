"""Tune each system on validation (same small grid budget for all), then touch test once.

Timing: `fit_s` = wall seconds of the selected config's fit; `tune_s` = all fits + validation
rankings (summed over the processes when a search resumed); `score_s` = wall seconds to score and rank the test users once. Memory: `peak_rss_mib`
= peak resident set size of this process during the selected config's fit and test scoring,
minus the RSS just before the fit (psutil, sampled every 5 ms by a background thread) — it
covers numpy/torch/Cython allocations, which tracemalloc would not see.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import psutil

from bench.peers.evaluation import SELECTION_METRIC, evaluate, evaluate_per_user
from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context
from mmrec.fileio import atomic_write_json

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
                  log: Callable[[str], None] = lambda _: None, partial: Path | None = None,
                  split_sha256: str | None = None) -> SystemResult:
    """Fit every grid config on train, select on validation NDCG@10, evaluate the winner on test once.

    partial: a file where each config's validation result is kept as soon as it is known, so a search
    killed midway (a slow peer's grid can outlast a session) resumes with the configs not yet done; if the
    winner was validated by an earlier process, it is fitted again for test (said in the result's notes).
    Only a file made on the same split files (`split_sha256`) is resumed: validation values of other data
    do not compare. The file is removed once the result is returned."""
    if len(system.grid) > MAX_CONFIGS:
        raise ValueError(f"{system.name}: grid of {len(system.grid)} configs exceeds the budget of {MAX_CONFIGS}")
    records = _load_partial(partial, system.grid, split_sha256, log)  # {grid index: its validation record}
    if system.prepare is not None:  # untimed, as the peers' cached features
        system.prepare(split, ctx)
    best_index, best_scorer = None, None  # the scorer is None when an earlier process validated the config
    for index, config in enumerate(system.grid):
        scorer = None
        if index in records:
            log(f"  {system.name} {config} validated before the resume: val {SELECTION_METRIC}="
                f"{records[index]['val'][SELECTION_METRIC]:.4f}")
        else:
            gc.collect()
            start = time.perf_counter()
            with PeakRss() as memory:
                fitted = time.perf_counter()
                scorer = system.fit(split, config, ctx)
                fit_s = time.perf_counter() - fitted
            val = evaluate(split, scorer, "val")
            records[index] = {"index": index, "config": config, "val": val, "fit_s": fit_s,
                              "peak_mib": memory.peak_mib, "tune_s": time.perf_counter() - start}
            log(f"  {system.name} {config} fit {fit_s:.1f}s val {SELECTION_METRIC}={val[SELECTION_METRIC]:.4f}")
            if partial is not None:
                atomic_write_json(partial, {"system": system.name, "split_sha256": split_sha256,
                                            "configs": list(records.values())})
        if best_index is None or (records[index]["val"][SELECTION_METRIC]
                                  > records[best_index]["val"][SELECTION_METRIC]):
            best_index, best_scorer = index, scorer
        del scorer
    assert best_index is not None
    record, scorer, notes = records[best_index], best_scorer, system.notes
    if scorer is None:  # validated by an earlier process: fit it again for test
        log(f"  {system.name} {record['config']}: fitted again for test (validated before the resume)")
        with PeakRss() as memory:
            start = time.perf_counter()
            scorer = system.fit(split, record["config"], ctx)
            record = {**record, "fit_s": time.perf_counter() - start, "peak_mib": memory.peak_mib}
        notes = (notes + "; " if notes else "") + "search resumed: the selected config was fitted again for test"
    config = {**record["config"], **getattr(scorer, "chosen_config", {})}
    # A system that searches inside one "config" (mmrec-tuned runs `mmrec tune`) reports what it chose
    # and the chosen fit's own seconds; the whole search stays in tune_s.
    fit_s = getattr(scorer, "fit_seconds", record["fit_s"])
    trials = list(getattr(scorer, "trials", []))
    with PeakRss() as memory:
        start = time.perf_counter()
        test, test_users, per_user = evaluate_per_user(split, scorer, "test")
        score_s = time.perf_counter() - start
    result = SystemResult(
        name=system.name, library=system.library, best_config=config, val=record["val"], test=test, fit_s=fit_s,
        score_s=score_s, tune_s=sum(r["tune_s"] for r in records.values()),
        peak_rss_mib=max(record["peak_mib"], memory.peak_mib), grid=system.grid,
        val_per_config=[records[i]["val"][SELECTION_METRIC] for i in range(len(system.grid))], notes=notes,
        test_users=test_users, test_ndcg10_per_user=[round(float(v), 6) for v in per_user], trials=trials,
    )
    if partial is not None:
        Path(partial).unlink(missing_ok=True)
    return result


def _load_partial(partial: Path | None, grid: list[dict[str, Any]], split_sha256: str | None = None,
                  log: Callable[[str], None] = lambda _: None) -> dict[int, dict[str, Any]]:
    """{grid index: record} of the configs an earlier process validated (those still in `grid`, same place), on
    the split files of sha256 `split_sha256` (a file of other split files, or of none recorded, is not resumed)."""
    if partial is None or not Path(partial).is_file():
        return {}
    try:
        saved = json.loads(Path(partial).read_text())
        stored = saved["configs"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # unreadable: the search starts over and rewrites it
    if saved.get("split_sha256") != split_sha256:  # the data or the split changed since: its values do not compare
        log(f"  {Path(partial).name}: the configs validated before were on other split files; validated again")
        return {}
    return {r["index"]: r for r in stored
            if isinstance(r, dict) and 0 <= r.get("index", -1) < len(grid) and r.get("config") == grid[r["index"]]}
