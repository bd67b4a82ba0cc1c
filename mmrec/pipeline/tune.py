"""run_tune: an Optuna study over settings.tune's search space, each trial one real `run_train` on validation.

The study lives in SQLite (results_dir/tune/<study>.db), so rerunning the same study name continues it.
Trials train into results_dir/tune/<study>/trial_<n>/ on a train+validation view of the split: the test
split is never opened.

The selected trial is the fastest-fitting one among those within tune.fastest_within_se paired standard
errors of the best validation value (the one-standard-error rule, with fit time as the cost): trials
whose difference from the best is within validation noise are ties, and a tie goes to the cheaper fit.
The comparison is paired, user by user (each trial stores its monitored metric per validation user), so
the band narrows as validation grows: with many users only real ties are swapped.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
from pydantic import ValidationError

from mmrec.data.tables import load_items
from mmrec.device import resolve_device
from mmrec.errors import ConfigError, DivergedError
from mmrec.evaluation.metrics import paired_gain_se
from mmrec.fileio import ProcessLock, atomic_path, read_json
from mmrec.pipeline.train import run_train
from mmrec.pipeline.tune_study import (
    TrialSummary,
    TuneResult,
    check_compatible,
    retry_interrupted,
    summarize_trials,
    validation_only_split,
)
from mmrec.pipeline.tune_report import plot_study, write_best_config, write_summary
from mmrec.training.blend import SEARCH_TASK
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import (
    FeaturesSettings,
    SearchDimension,
    Settings,
    TrainingSettings,
    format_validation_error,
    settings_as_dict,
)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

PER_USER_FILE = "val_per_user.npy"  # a trial's monitored metric per validation user (float64, no pickle)


def _done(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial that counts toward --trials: complete, pruned, or failed because its settings diverged (a rerun
    would diverge again; an interrupted one is retried instead)."""
    return trial.state in FINISHED or (trial.state == optuna.trial.TrialState.FAIL
                                       and bool(trial.user_attrs.get("diverged")))


def _interrupt_within(exc: BaseException) -> bool:
    """Whether a Ctrl-C raised `exc` or lies under it (Optuna storing a trial when it landed raised its own
    error while handling it)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def with_values(settings: Settings, values: dict[str, Any]) -> Settings:
    """A deep copy of `settings` with dotted values assigned (each touched section validated as a whole)."""
    copy = settings.model_copy(deep=True)
    by_section: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        section, _, key = dotted.partition(".")
        by_section.setdefault(section, {})[key] = value
    for section, updates in by_section.items():
        current = getattr(copy, section)
        setattr(copy, section, type(current).model_validate({**current.model_dump(), **updates}))
    return copy


def suggest(trial: optuna.Trial, name: str, dimension: SearchDimension) -> Any:
    """The trial's value for one search dimension."""
    if dimension.type == "categorical":
        return trial.suggest_categorical(name, dimension.choices)
    assert dimension.low is not None and dimension.high is not None
    if dimension.type == "int":
        return trial.suggest_int(name, int(dimension.low), int(dimension.high), step=int(dimension.step or 1),
                                 log=dimension.log)
    return trial.suggest_float(name, dimension.low, dimension.high, step=dimension.step, log=dimension.log)


# What every trial shares besides the searched values: a study resumed with other base settings would compare
# trials trained on different things (e.g. other backbone weights) and write a best_config.yaml none of them used.
# Left out: where a run happens and how fast it reports, which change no result (and the monitor, checked apart).
BASE_SECTIONS = ("data", "split", "features", "model", "training")
NOT_COMPARED = {*(f"features.{key}" for key in FeaturesSettings.RUN_KEYS),
                *(f"training.{key}" for key in TrainingSettings.RUN_KEYS), "training.monitor"}


def base_settings(settings: Settings, space: dict[str, SearchDimension]) -> dict[str, Any]:
    """The flattened `BASE_SECTIONS` settings ("model.dropout": 0.1) that are not searched (see BASE_SECTIONS)."""
    recorded = settings_as_dict(settings)
    return {f"{section}.{key}": value for section in BASE_SECTIONS for key, value in recorded[section].items()
            if f"{section}.{key}" not in space and f"{section}.{key}" not in NOT_COMPARED}


def enqueue_current_settings(study: optuna.Study, settings: Settings, space: dict[str, SearchDimension]) -> str | None:
    """Queue `settings`' own values of the searched settings as the study's next trial (a baseline the search
    must beat on validation). A number outside its range is moved to the nearest value the range holds
    (weight_decay 0 -> the low end of a log range), a choice not among the choices is drawn. Returns the note."""
    recorded = settings_as_dict(settings)
    current = {name: recorded[name.partition(".")[0]][name.partition(".")[2]] for name in space}
    queued = {name: space[name].nearest(value) for name, value in current.items()}
    queued = {name: value for name, value in queued.items() if value is not None}
    if not queued:
        return None
    moved = [f"{name} {current[name]!r} -> {value!r}" for name, value in queued.items() if value != current[name]]
    drawn = [f"{name}={value!r}" for name, value in current.items() if name not in queued]
    changes = ([f"moved into the search space: {', '.join(moved)}"] if moved else []) + (
        [f"drawn, not among the choices: {', '.join(drawn)}"] if drawn else [])
    study.enqueue_trial(queued, user_attrs={"baseline": True, "baseline_changes": "; ".join(changes)})
    return "The first trial runs the current settings" + (f" ({'; '.join(changes)})" if changes else "") + "."


def train_trial(settings: Settings, trial: optuna.Trial, progress: ProgressCallback
                ) -> tuple[float, dict[str, Any], np.ndarray | None]:
    """One `mmrec train` run as a trial: per-epoch validation -> trial.report / pruning; returns the
    objective, the trial's attributes and the monitored metric per validation user.

    The objective is the final validation metric run_train reports: the item-item blend's when it
    was fitted, else the two-tower model's best epoch. This is the only place that knows run_train.
    """
    monitor = settings.training.monitor

    def report(event: ProgressEvent) -> None:
        if event.task == SEARCH_TASK:  # the blend search's stage lines: the study prints one line per trial
            return
        if event.task == "epochs" and not event.done and monitor in event.metrics:
            trial.report(float(event.metrics[monitor]), step=event.completed)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {event.completed}")
            event = replace(event, message="")  # the study prints one line per trial instead
        progress(event)

    result = run_train(settings, progress=report, per_user=True)
    blended = (result.item_item or {}).get("monitored")
    value = blended if blended is not None and math.isfinite(blended) else result.best_metric
    return float(value), {
        "two_tower": result.best_metric,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "item_item_blend": (result.item_item or {}).get("blend"),
    }, result.val_per_user


def run_tune(settings: Settings, progress: ProgressCallback = null_progress) -> TuneResult:
    """Run (or continue) the study `settings.tune.study_name` until it holds `tune.n_trials` finished trials."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("mmrec tune runs its trials one after another in one process, not under torchrun.",
                          hint="Run `mmrec tune` without torchrun; train the best config with torchrun after.")
    resolve_device(settings.training.device)  # a device this machine lacks: refused before any of the study exists
    tune = settings.tune
    space = tune.space()
    for name, dimension in space.items():  # cross-field checks (e.g. embedding_dim % num_heads) on the base
        for sample in dimension.samples():
            drawn = _trial_settings(settings, {name: sample}, f"{name}={sample!r}")
            if name in ("features.vision_backbone", "features.text_backbone"):  # its weights, before any training
                from mmrec.features.registry import resolve_backbone_weights

                resolve_backbone_weights(drawn.features, name.split(".")[1].split("_")[0])
    root = Path(settings.paths.results_dir) / "tune"
    study_dir = root / tune.study_name
    storage = root / f"{tune.study_name}.db"
    start = time.perf_counter()
    notes: list[str] = []
    with ProcessLock(root / f"{tune.study_name}.lock", f"Study {tune.study_name!r} is being run by another process",
                     "Wait for it to finish, or tune under another --study name."):
        split_dir, split_fingerprint = validation_only_split(Path(settings.paths.splits_dir), study_dir / "split",
                                                                  settings.training.holdout_ratio > 0)
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed or interrupted trial: our message, no traceback
        try:
            study = optuna.create_study(
                storage=f"sqlite:///{storage}", study_name=tune.study_name, load_if_exists=True,
                direction="maximize", pruner=optuna.pruners.MedianPruner(
                    n_startup_trials=tune.pruner_startup_trials, n_warmup_steps=tune.pruner_warmup_epochs + 1),
            )
        except sqlalchemy.exc.SQLAlchemyError as exc:  # not an SQLite file, or one Optuna cannot read
            raise ConfigError(
                f"The study file {storage} cannot be opened as an Optuna study "
                f"({str(getattr(exc, 'orig', None) or exc).splitlines()[0]}).",
                hint="Tune under another --study name, or move that file away to start the study afresh.",
            ) from None
        identity = {"monitor": settings.training.monitor, "split": split_fingerprint,
                    "space": {name: dim.model_dump() for name, dim in space.items()},
                    "settings": base_settings(settings, space)}
        check_compatible(study, identity, storage, base_settings(Settings.model_construct(), space))
        # A resumed study must not redraw the first run's random start-up values: offset the seed by
        # the trials already stored (a fresh study uses training.seed itself).
        study.sampler = optuna.samplers.TPESampler(seed=settings.training.seed + len(study.trials))
        if not study.trials and (note := _set_aside_earlier_outputs(study_dir)):  # a study started over
            notes.append(note)
            progress(ProgressEvent("tune", message=note, done=True))
        if not study.trials:  # a fresh study: trial 0 runs the current settings, so tuning never ends below them
            note = enqueue_current_settings(study, settings, space)
            if note:
                notes.append(note)
                progress(ProgressEvent("tune", message=note, done=True))
        retried = retry_interrupted(study, study_dir)
        if retried:
            notes.append(f"Retrying {len(retried)} interrupted trial(s): {', '.join(map(str, retried))}.")
            progress(ProgressEvent("tune", message=notes[-1], done=True))
        finished = sum(_done(t) for t in study.get_trials(deepcopy=False))
        resumed_with = finished
        if finished:
            notes.append(f"Resumed study {tune.study_name!r} with {finished} finished trial(s) from {storage}.")
            progress(ProgressEvent("tune", message=notes[-1], done=True))

        warm_up(settings)

        def objective(trial: optuna.Trial) -> float:
            params = {name: suggest(trial, name, dimension) for name, dimension in space.items()}
            folder = study_dir / f"trial_{trial.number}"
            trial_settings = _trial_settings(settings, {
                **params, "paths.splits_dir": split_dir, "paths.checkpoint_dir": folder / "checkpoints",
                "paths.results_dir": folder / "results",
                "tracking.wandb_run_name": f"{tune.study_name}-trial{trial.number}",
            }, f"trial {trial.number} ({params})")
            trial.set_user_attr("folder", str(folder))
            began, began_cpu = time.perf_counter(), time.process_time()
            try:
                value, attrs, per_user = train_trial(trial_settings, trial, progress)
            except KeyboardInterrupt:
                trial.set_user_attr("interrupted", True)  # retried when the study is rerun
                raise
            except DivergedError as exc:  # these settings cannot train: a failed trial, and the search goes on
                trial.set_user_attr("diverged", str(exc))
                return float("nan")  # Optuna stores a NaN objective as a failed trial
            finally:
                trial.set_user_attr("seconds", round(time.perf_counter() - began, 3))
                trial.set_user_attr("cpu_seconds", round(time.process_time() - began_cpu, 3))
            for key, attr in attrs.items():
                trial.set_user_attr(key, attr)
            if per_user is not None:
                with atomic_path(folder / PER_USER_FILE) as tmp, open(tmp, "wb") as handle:
                    np.save(handle, per_user.astype(np.float64), allow_pickle=False)
            return value

        def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            if tune.keep_checkpoints == "best":
                _drop_checkpoints_but_candidates(study, study_dir, tune.fastest_within_se)
            done = sum(_done(t) for t in study.get_trials(deepcopy=False))
            best = _best_value(study)
            if trial.state == optuna.trial.TrialState.PRUNED:
                line = f"trial {trial.number}: pruned after epoch {trial.last_step}"
            elif trial.state != optuna.trial.TrialState.COMPLETE:
                line = f"trial {trial.number} ({trial.params}) failed: {trial.user_attrs.get('diverged', 'no value')}"
            else:
                line = f"trial {trial.number}: val {settings.training.monitor} {trial.value:.4f}"
            progress(ProgressEvent("trials", done, tune.n_trials, f"study {tune.study_name}",
                                   {"best": best} if best is not None else {}, message=line))

        remaining = tune.n_trials - finished
        if remaining <= 0:
            notes.append(f"Study {tune.study_name} already holds {finished} finished trial(s), and --trials "
                         f"{tune.n_trials} counts the study's trials in all (not trials to add): none ran. Raise "
                         f"--trials above {finished} to search further.")
        optimize_began = time.perf_counter()
        if remaining > 0:
            try:
                study.optimize(objective, n_trials=remaining, timeout=tune.timeout_s, callbacks=[after_trial])
            except Exception as exc:
                if _interrupt_within(exc):  # a Ctrl-C while Optuna stored a trial: an interrupt as any other
                    raise KeyboardInterrupt from None
                raise
        timed_out = tune.timeout_s is not None and time.perf_counter() - optimize_began >= tune.timeout_s
        finished = sum(_done(t) for t in study.get_trials(deepcopy=False))
        progress(ProgressEvent("trials", finished, tune.n_trials, f"study {tune.study_name}", done=True))

        trials = summarize_trials(study, study_dir)
        best, top, tied = select_trial(trials, tune.fastest_within_se)
        if best is not None and top is not None and best.number != top.number:
            notes.append(
                f"Selected trial {best.number} (val {best.value:.4f}, {fit_cost(best):.0f} CPU s fit): the "
                f"cheapest of {len(tied)} trials within {tune.fastest_within_se:g} paired standard error(s) of the "
                f"best, trial {top.number} (val {top.value:.4f}, {fit_cost(top):.0f} CPU s). "
                "tune.fastest_within_se: 0 selects the best value.")
        if best is not None and best.attrs.get("baseline"):
            changes = best.attrs.get("baseline_changes")
            searched = sum(t.state in ("COMPLETE", "PRUNED") for t in trials) - 1  # trials besides this one
            beaten = top is not None and top.number != best.number  # within noise: the note above says so
            verdict = (f"none of the {searched} other trial(s) did better on validation"
                       + (f" by more than {tune.fastest_within_se:g} paired standard error(s)" if beaten else "")
                       if searched else
                       "no other trial has finished yet, so nothing was searched: raise --trials (or --timeout) "
                       "and run the same command again to continue the study")
            notes.append(f"The selected trial {best.number} is the settings the study started from"
                         + (f" ({changes})" if changes else "") + f": {verdict}.")
        # (The finished trial of the starting settings: a retry of an interrupted one is that trial.)
        baseline = next((t for t in trials if t.attrs.get("baseline") and t.state == "COMPLETE"), None)
        if (best is not None and baseline is not None and best.number != baseline.number
                and best.params == baseline.params and baseline.number in tied):
            notes.append(f"Trial {best.number} ran the same settings as trial {baseline.number}, the settings the "
                         "study started from (selected by its fit time, which differs by chance): the search found "
                         "nothing better.")
        if finished < tune.n_trials and timed_out:
            notes.append(f"The timeout (--timeout {tune.timeout_s:g} s) ended the study after {finished} of "
                         f"{tune.n_trials} trials; run the same command again to continue it.")
        best_config = None
        if best is not None and (note := _stale_selection_note(study_dir, best.number)):
            notes.append(note)
        if best is not None:
            values = selected_values(settings, best)
            if "training.epochs" in values and values["training.epochs"] != best.params.get("training.epochs"):
                notes.append(f"best_config.yaml trains {values['training.epochs']} epoch(s), trial {best.number}'s "
                             f"best on validation (it ran {best.attrs.get('epochs_run', '?')}): the same model "
                             "without the epochs after it, which did not improve it.")
            # Its own checkpoint folder: training the selected settings leaves the checkpoints of the
            # settings tuned from (paths.checkpoint_dir) alone; evaluating them leaves their results alone too.
            selected = with_values(settings, {**values, "paths.checkpoint_dir": study_dir / "checkpoints",
                                              "paths.results_dir": study_dir / "results"})
            best_config = write_best_config(selected, study_dir / "best_config.yaml", tune.study_name, best,
                                            settings.training.monitor)
        else:
            notes.append("No trial finished, so there are no best settings yet; rerun to continue the study.")
        plot, plot_note = plot_study(study, trials, settings.training.monitor, study_dir / "study.png",
                                     best.number if best is not None else None)
        if plot_note:
            notes.append(plot_note)
        result = TuneResult(
            study_name=tune.study_name, storage=storage, study_dir=study_dir, monitor=settings.training.monitor,
            trials=trials, best=best, top=top, tied=tied, resumed_with=resumed_with, retried=retried,
            seconds=time.perf_counter() - start, best_config=best_config, plot=plot,
            summary=study_dir / "summary.json", notes=notes,
        )
        write_summary(result, space)
    return result


# What a study writes into its folder besides its split (recomputed each run): set aside when it starts over.
STUDY_OUTPUTS = ("best_config.yaml", "summary.json", "study.png", "checkpoints", "results")


def _set_aside_earlier_outputs(study_dir: Path) -> str | None:
    """A fresh study (its .db deleted to start over) in a folder an earlier study of the name wrote: that
    study's outputs (best_config.yaml, summary, plot, trial folders, the selected settings' model) are moved into
    earlier-<time>/, so no file describes trials the new study does not hold; None when there were none."""
    earlier = [path for path in (*(study_dir / name for name in STUDY_OUTPUTS), *study_dir.glob("trial_*"))
               if path.exists()]
    if not earlier:
        return None
    aside = study_dir / f"earlier-{time.strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=True)
    for path in earlier:
        path.rename(aside / path.name)
    names = sorted(path.name for path in earlier)
    return (f"This study starts afresh, but {study_dir} held an earlier study's files ({', '.join(names[:4])}"
            + (f" and {len(names) - 4:,} more" if len(names) > 4 else "") + f"): moved into {aside}, so nothing "
            "there describes trials this study does not hold.")


def _stale_selection_note(study_dir: Path, selected: int) -> str | None:
    """A note when best_config.yaml is about to select another trial than it did, while a model trained from the
    earlier selection is in the study's checkpoints folder (evaluate -c best_config.yaml would serve it)."""
    try:
        before = (read_json(study_dir / "summary.json").get("best") or {}).get("number")
    except (OSError, ValueError, AttributeError):
        return None
    if before is None or before == selected or not (study_dir / "checkpoints").is_dir():
        return None
    return (f"best_config.yaml now selects trial {selected} (it selected trial {before}): the model in "
            f"{study_dir / 'checkpoints'} was trained from the earlier selection, so evaluate and recommend with "
            "best_config.yaml serve that one until `mmrec train -c best_config.yaml` runs again.")


def _trial_settings(settings: Settings, values: dict[str, Any], what: str) -> Settings:
    try:
        return with_values(settings, values)
    except ValidationError as exc:
        raise ConfigError(
            f"The settings of {what} are invalid:\n{format_validation_error(exc)}",
            hint="Narrow tune.search_space so every value it can draw is valid with the other settings "
                 "(e.g. embedding_dim choices divisible by model.num_heads).",
        ) from None


def _best_value(study: optuna.Study) -> float | None:
    complete = [t.value for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    return max(complete) if complete else None


def select_trial(trials: list[TrialSummary], within_se: float
                 ) -> tuple[TrialSummary | None, TrialSummary | None, list[int]]:
    """(selected, best by value, the trials tied with the best) among the complete trials.

    A trial ties with the best when its mean per-user deficit is at most `within_se` standard errors
    of the per-user differences (a paired comparison over the same validation users); the selected
    trial is the tied one with the shortest fit. Trials without per-user values (no validation data,
    or checkpoints dropped) only ever tie when they are the best.
    """
    complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    if not complete:
        return None, None, []
    top = max(complete, key=lambda t: (t.value, -t.number))
    reference = _per_user(top) if within_se > 0 else None
    tied = [top]
    for trial in complete:
        other = _per_user(trial) if reference is not None and trial is not top else None
        if other is None or other.shape != reference.shape:
            continue
        if paired_gain_se(reference, other) <= within_se:
            tied.append(trial)
    chosen = min(tied, key=lambda t: (fit_cost(t), -t.value, t.number))
    return chosen, top, sorted(t.number for t in tied)


# Learning-rate schedules whose shape stretches over training.epochs: fewer epochs would train another model.
EPOCH_SPANNING_SCHEDULERS = ("cosine", "onecycle")


def selected_values(settings: Settings, best: TrialSummary) -> dict[str, Any]:
    """The selected trial's settings as dotted values (what best_config.yaml holds over `settings`): its
    params, and training.epochs = its best epoch when it trained past it (early stopping's patience) and
    the schedule does not span training.epochs, so training them again ends where validation peaked."""
    values = dict(best.params)
    training = with_values(settings, values).training
    best_epoch = best.attrs.get("best_epoch")
    if (isinstance(best_epoch, int) and 0 < best_epoch < training.epochs
            and training.scheduler not in EPOCH_SPANNING_SCHEDULERS):
        values["training.epochs"] = best_epoch
    return values


def warm_up(settings: Settings) -> None:
    """Pay the process's one-off costs before any trial is timed, or the first trial of a process (the
    baseline, in a fresh study) paid them alone: a tie with it went to a later trial as cheaper, and "the search
    found nothing better" could not be said. The first torch optimizer built imports torch._dynamo (about 2 s of
    CPU); the feature store's modules load with the first trial's features; the first parquet read loads more of
    pyarrow."""
    import importlib

    import torch

    importlib.import_module("mmrec.features.item_features")  # imported by training when it loads the features
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    load_items(Path(settings.paths.processed_dir))


def fit_cost(trial: TrialSummary) -> float:
    """What the tie-break minimises: the trial's CPU seconds (process time), else its wall seconds.

    Wall time on a shared machine counts the time other processes held the cores, so two tied trials
    could swap places between reruns of the same study; CPU time counts only this process's work.
    """
    return float(trial.attrs.get("cpu_seconds", trial.attrs.get("seconds", math.inf)))


def _per_user(trial: TrialSummary) -> np.ndarray | None:
    path = Path(trial.attrs.get("folder", "")) / PER_USER_FILE
    if "folder" not in trial.attrs or not path.is_file():
        return None
    return np.load(path, allow_pickle=False)


def _drop_checkpoints_but_candidates(study: optuna.Study, study_dir: Path, within_se: float) -> None:
    """Remove the checkpoints (and per-user values) of every finished trial that is neither the best
    nor tied with it (tune.keep_checkpoints=best): the later selection can only swap among those kept."""
    _, _, tied = select_trial(summarize_trials(study, study_dir), within_se)
    for trial in study.get_trials(deepcopy=False):
        if trial.state in FINISHED and trial.number not in tied:
            folder = study_dir / f"trial_{trial.number}"
            if (folder / "checkpoints").is_dir():
                shutil.rmtree(folder / "checkpoints")
            (folder / PER_USER_FILE).unlink(missing_ok=True)
            if folder.is_dir() and not any(path.is_file() for path in folder.rglob("*")):  # only empty folders left
                shutil.rmtree(folder)
