"""What a tuning study leaves behind: the best settings as a train config, a JSON summary, a PNG plot."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import optuna
import yaml

from mmrec.fileio import atomic_path, atomic_write_json, atomic_write_text
from mmrec.settings import SearchDimension, Settings, settings_as_dict

if TYPE_CHECKING:
    from mmrec.pipeline.tune_study import TrialSummary, TuneResult


# Below this many complete trials, the importances the study plot shows are flagged as rough.
ROUGH_IMPORTANCE_TRIALS = 10


def write_best_config(settings: Settings, path: Path, study: str, best: TrialSummary, monitor: str) -> Path:
    """The best trial's settings as a complete YAML config for `mmrec train -c` (paths are the user's)."""
    header = (f"# Selected settings of study {study!r}: trial {best.number}, validation {monitor} {best.value:.4f}.\n"
              f"# Train with them: mmrec train -c {path.name}\n")
    if best.attrs.get("best_epoch") == settings.training.epochs < best.attrs.get("epochs_run", 0):
        header += (f"# training.epochs is the trial's best epoch on validation (it ran {best.attrs['epochs_run']}; "
                   "the epochs after the best did not improve it).\n")
    atomic_write_text(path, header + yaml.safe_dump(settings_as_dict(settings), sort_keys=False))
    return path


def write_summary(result: TuneResult, space: dict[str, SearchDimension]) -> Path:
    """summary.json: the study, its counts, the best trial and every trial, the search space and timing."""

    def trial_json(trial: TrialSummary) -> dict[str, Any]:
        attrs = dict(trial.attrs)
        if attrs.get("folder") and not Path(attrs["folder"]).is_dir():  # removed: tune.keep_checkpoints=best
            attrs["folder"] = None
        return {"number": trial.number, "state": trial.shown_state, "value": trial.value, "params": trial.params,
                "last_epoch": trial.last_epoch, **attrs}

    atomic_write_json(result.summary, {
        "study": result.study_name,
        "storage": str(result.storage),
        "monitor": result.monitor,
        "direction": "maximize",
        "counts": result.counts(),
        "best": trial_json(result.best) if result.best else None,
        "best_value_trial": result.top.number if result.top else None,
        "tied_with_best_value": result.tied,
        "best_config": str(result.best_config) if result.best_config else None,
        "plot": str(result.plot) if result.plot else None,
        "search_space": {name: dim.model_dump(exclude_none=True) for name, dim in space.items()},
        "seconds_this_run": round(result.seconds, 3),
        "seconds_all_trials": round(sum(t.attrs.get("seconds", 0.0) for t in result.trials), 3),
        "resumed_with": result.resumed_with,
        "retried": result.retried,
        "notes": result.notes,
        "trials": [trial_json(t) for t in result.trials],
    })
    return result.summary


def plot_study(study: optuna.Study, trials: list[TrialSummary], monitor: str, path: Path,
               selected: int | None = None) -> tuple[Path | None, str]:
    """Optimization history (value per trial, best so far, the selected trial ringed) and, when estimable,
    parameter importances."""
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    if not complete:
        return None, "No complete trial yet: no study plot."
    importances, note = _importances(study, len(complete))
    panels = 2 if importances else 1
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.6), squeeze=False)
    history = axes[0][0]
    numbers = [t.number for t in complete]
    values = [float(t.value) for t in complete]  # type: ignore[arg-type]
    best_so_far = [max(values[: i + 1]) for i in range(len(values))]
    history.scatter(numbers, values, s=18, label="complete trial")
    history.step(numbers, best_so_far, where="post", color="tab:red", label="best so far")
    chosen = [(t.number, float(t.value)) for t in complete if t.number == selected]  # type: ignore[arg-type]
    if chosen:  # the one-standard-error rule's pick (best_config.yaml), which need not be the highest value
        history.scatter(*zip(*chosen), s=120, facecolors="none", edgecolors="tab:green", linewidths=2,
                        label="selected (best_config.yaml)")
    pruned = [t for t in trials if t.state == "PRUNED"]
    if pruned:
        history.scatter([t.number for t in pruned], [min(values)] * len(pruned), marker="x", color="grey",
                        label="pruned (drawn at the lowest value)")
    history.xaxis.set_major_locator(MaxNLocator(integer=True))
    history.set_xlabel("trial")
    history.set_ylabel(f"val {monitor}")
    history.set_title("Optimization history")
    history.grid(alpha=0.3)
    history.legend(fontsize=8)
    if importances:
        bars = axes[0][1]
        names = list(importances)[::-1]
        bars.barh(names, [importances[n] for n in names])
        rough = f", {len(complete)} trials: rough" if len(complete) < ROUGH_IMPORTANCE_TRIALS else ""
        bars.set_title(f"Parameter importance (PED-ANOVA{rough})")
        bars.tick_params(axis="y", labelsize=8)
    figure.suptitle(f"Study {study.study_name}: {len(complete)} complete, {len(pruned)} pruned")
    figure.tight_layout()  # long parameter names must not run into the history panel
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path, note


def _importances(study: optuna.Study, n_complete: int) -> tuple[dict[str, float], str]:
    if n_complete < 2:
        return {}, "Parameter importances need at least 2 complete trials; the plot shows the history only."
    try:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        with warnings.catch_warnings(record=True) as caught:  # said once, in the note, not as a raw UserWarning
            warnings.simplefilter("always")
            values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as exc:
        return {}, f"Parameter importances could not be estimated ({exc}); the plot shows the history only."
    if caught and len({round(float(v), 9) for v in values.values()}) <= 1:
        return {}, (f"Parameter importances cannot be told apart on these trials ({str(caught[0].message).strip()}); "
                    "the plot shows the history only.")
    note = (f"The plot's parameter importances rest on {n_complete} complete trials: a rough guide until the study "
            f"holds {ROUGH_IMPORTANCE_TRIALS} or more." if n_complete < ROUGH_IMPORTANCE_TRIALS else "")
    return {name: float(value) for name, value in values.items()}, note
