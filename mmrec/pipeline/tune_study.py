"""The bookkeeping of a tuning study: its lock, the train+validation view of the split, resume and retries."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from mmrec.data.splits import REPORT_FILE
from mmrec.errors import ConfigError, DataError
from mmrec.fileio import atomic_path, atomic_write_text, not_a_file

TrialState = optuna.trial.TrialState


@dataclass
class TrialSummary:
    """One trial as the study stored it (value = the validation objective; None unless complete)."""

    number: int
    state: str  # COMPLETE | PRUNED | FAIL | RUNNING | WAITING
    value: float | None
    params: dict[str, Any]
    last_epoch: int | None  # last epoch reported to the pruner
    # two_tower, best_epoch, epochs_run, seconds, cpu_seconds, folder
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def shown_state(self) -> str:
        """The state as reports name it: a trial a kill or Ctrl-C stopped (stored as FAIL, its parameters run
        again) is INTERRUPTED, not a failure."""
        if self.state == "FAIL" and self.attrs.get("interrupted"):
            return "INTERRUPTED"
        return "DIVERGED" if self.state == "FAIL" and self.attrs.get("diverged") else self.state


@dataclass
class TuneResult:
    """What `run_tune` did and where it wrote the study, the best settings, the plot and the summary."""

    study_name: str
    storage: Path
    study_dir: Path
    monitor: str
    trials: list[TrialSummary]
    best: TrialSummary | None  # the selected trial (tune.fastest_within_se), whose settings best_config holds
    resumed_with: int  # trials finished before this run
    retried: list[int]  # interrupted trials whose parameters were queued again
    seconds: float
    best_config: Path | None
    plot: Path | None
    summary: Path
    notes: list[str] = field(default_factory=list)
    top: TrialSummary | None = None  # the best validation value
    tied: list[int] = field(default_factory=list)  # trials within fastest_within_se of `top` (best among them)

    def counts(self) -> dict[str, int]:
        """Trials per shown state, e.g. {"COMPLETE": 3, "PRUNED": 1, "INTERRUPTED": 1}."""
        counts: dict[str, int] = {}
        for trial in self.trials:
            counts[trial.shown_state] = counts.get(trial.shown_state, 0) + 1
        return counts

    def ranked(self, n: int | None = None) -> list[TrialSummary]:
        """Complete trials, best validation value first."""
        complete = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        return sorted(complete, key=lambda t: (-t.value, t.number))[:n]


def summarize_trials(study: optuna.Study, study_dir: Path) -> list[TrialSummary]:
    """The study's trials. A trial's folder is trial_<n> under `study_dir` whatever path the study recorded: a
    project copied or moved elsewhere reads its own trials' files, never those left at the old place."""

    def attrs(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        values = {k: v for k, v in trial.user_attrs.items() if k != "retry_of"}
        if "folder" in values:
            values["folder"] = str(study_dir / f"trial_{trial.number}")
        return values

    return [TrialSummary(trial.number, trial.state.name, trial.value, dict(trial.params), trial.last_step,
                         attrs(trial)) for trial in study.get_trials(deepcopy=False)]


def _has_rows(path: Path) -> bool:
    """Whether the CSV at `path` holds a row besides its header (False when there is no such file)."""
    try:
        with open(path, encoding="utf-8") as handle:
            handle.readline()
            return any(line.strip() for line in handle)
    except OSError:
        return False


def _header(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline()
    except OSError:
        raise DataError(f"Split file {path} not found.", hint="Run `mmrec split` first (with the same --config).") \
            from None


def validation_only_split(splits_dir: Path, view_dir: Path, holdout: bool) -> tuple[Path, str]:
    """A split folder for trials: train.csv, val.csv and split_report.json as they are, test.csv with no rows.

    Trials train on this view, so test interactions are never read. Returns the folder and a
    fingerprint of train+val (a resumed study must see the same split). An empty val.csv is refused
    unless `holdout` (training.holdout_ratio > 0: every trial carves the same validation out of train).
    """
    if not holdout and not _has_rows(splits_dir / "val.csv"):  # refused before anything is written
        raise DataError(f"The validation split {splits_dir / 'val.csv'} is empty: tuning chooses on validation.",
                        hint="Re-run `mmrec split` with split.val_ratio > 0, or set training.holdout_ratio > 0.")
    header = _header(splits_dir / "train.csv")
    digest = hashlib.sha256()
    view_dir.mkdir(parents=True, exist_ok=True)
    for name in ("train.csv", "val.csv", REPORT_FILE):
        source, target = splits_dir / name, view_dir / name
        target.unlink(missing_ok=True)
        if name == REPORT_FILE and not source.is_file():  # optional (hand-made splits have none)
            continue
        if name == "val.csv" and not source.exists():  # optional too: no validation rows
            atomic_write_text(target, header)
            continue
        if problem := not_a_file(source):
            raise DataError(f"Split file {source} {problem}.", hint="Run `mmrec split` first (with the same --config).")
        try:
            os.link(source, target)
        except OSError:  # another filesystem, or links unsupported
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        if name == REPORT_FILE:  # read for the holdout's strategy only; not part of the fingerprint
            continue
        with open(source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    atomic_write_text(view_dir / "test.csv", header)
    return view_dir, digest.hexdigest()


def check_compatible(study: optuna.Study, identity: dict[str, Any], storage: Path,
                     defaults: dict[str, Any] | None = None) -> None:
    """A resumed study must keep its monitor, split, search space and base settings; a new one records them.
    (Studies started before the base settings were recorded are not checked for them.) A base setting the record
    lacks (one an older mmrec did not have) counts as its default, `defaults` (flattened as identity's)."""
    recorded = study.user_attrs.get("mmrec")
    if recorded is None:
        study.set_user_attr("mmrec", identity)
        return
    if isinstance(recorded.get("settings"), dict) and defaults:
        then, searched = recorded["settings"], recorded.get("space") or {}
        recorded = {**recorded, "settings": {**{key: value for key, value in defaults.items() if key not in then
                                                and key not in searched and key in identity.get("settings", {})},
                                             **then}}
    changed = [key for key in identity if key in recorded and recorded[key] != identity[key]]
    if changed:
        what = {"monitor": "training.monitor", "split": "train/val split", "space": "search space",
                "settings": "base settings"}
        differ = []
        for part, absent in (("space", "not searched"), ("settings", "searched")):  # absent from the settings:
            if part in changed:                                                   # the space searches it
                then, now = recorded[part], identity[part]

                def shown(values: dict[str, Any], key: str, absent: str = absent) -> str:
                    if key not in values:
                        return absent
                    value = values[key]
                    return (", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in value.items() if v is not None)
                            if isinstance(value, dict) else repr(value))

                differ += [f"{key} {shown(then, key)} -> {shown(now, key)}" for key in sorted({*then, *now})
                           if shown(then, key) != shown(now, key)]
        named = f" ({', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''})" if differ else ""
        raise ConfigError(
            f"Study {study.study_name!r} in {storage} was started with a different "
            f"{' and '.join(what[key] for key in changed)}{named}; its trials are not comparable with this run.",
            hint="Tune under another --study name, or delete the .db file to start this study over.",
        )


def retry_interrupted(study: optuna.Study, study_dir: Path) -> list[int]:
    """Queue again the parameters of trials a kill or Ctrl-C interrupted (once each); returns their numbers. What
    such a trial left in its folder (an unfinished training run) is removed: its retry trains afresh."""
    trials = study.get_trials(deepcopy=False)
    requeued = {t.user_attrs.get("retry_of") for t in trials}
    storage = study._storage  # Optuna has no public call to close a trial whose process died
    retried = []
    for trial in trials:
        if trial.state == TrialState.RUNNING:  # its process was killed: we hold the study's lock
            storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        elif not (trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted")):
            continue
        if trial.number not in requeued:  # the baseline's retry is the baseline (its note names it so)
            kept = {key: trial.user_attrs[key] for key in ("baseline", "baseline_changes") if key in trial.user_attrs}
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number, **kept})
            retried.append(trial.number)
        shutil.rmtree(study_dir / f"trial_{trial.number}", ignore_errors=True)
    return retried
