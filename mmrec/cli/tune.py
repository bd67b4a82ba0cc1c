"""`mmrec tune`: an Optuna search over settings.tune.search_space on validation, with a table of the best trials."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mmrec.cli.common import (ConfigOption, RichProgress, configure_logging, console, kept_on_interrupt, print_notes,
                              state)


def tune(
    ctx: typer.Context,
    config: ConfigOption = None,
    trials: Annotated[int | None, typer.Option("--trials", "-n", min=1,
                                               help="Trials the study holds when done (tune.n_trials).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout",
                                                  help="Start no new trial after S seconds (tune.timeout_s).")] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name; the same name resumes it "
                                                              "(tune.study_name).")] = None,
    device: Annotated[str | None, typer.Option("--device", "-d", help="cpu | cuda | cuda:N | auto (training.device).",
                                               autocompletion=lambda: ["auto", "cpu", "cuda"])] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Best trials shown in the table.")] = 5,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs.")] = False,
) -> None:
    """Search model, loss and item-item settings on validation; write the best config, a plot and a summary.

    Each trial is one `mmrec train` run in results_dir/tune/STUDY/trial_N; the study is kept in
    results_dir/tune/STUDY.db, so rerunning the same command continues it after a kill.
    """

    app_state = state(ctx)
    if verbose:
        app_state.verbose = True
        configure_logging(True)
    settings = app_state.settings(config, {
        "tune.n_trials": trials, "tune.timeout_s": timeout, "tune.study_name": study, "training.device": device,
    })
    storage = Path(settings.paths.results_dir) / "tune" / f"{settings.tune.study_name}.db"
    with kept_on_interrupt(f"Tuning was interrupted; the study keeps its finished trials in {storage}.",
                           "Run the same command again to continue it (the interrupted trial runs again first)."), \
            RichProgress(transient=True) as progress:  # one line per trial stays; no bar of the last trial's epochs
        from mmrec.pipeline.tune import run_tune
        result = run_tune(settings, progress=progress)

    everything = result.ranked()
    selected = result.best.number if result.best is not None else None
    ranked = [t for i, t in enumerate(everything) if i < top or t.number == selected]  # the selected one always shown
    table = Table(title=f"Study {result.study_name}: best {min(top, len(everything))} of {len(result.trials)} trials "
                        f"(val {result.monitor})")
    for column in ("rank", "trial", f"val {result.monitor}", "two-tower", "epochs", "s", "sel"):
        table.add_column(column, justify="right", no_wrap=True)
    marks = {}
    for trial in ranked:
        rank = everything.index(trial) + 1
        attrs = trial.attrs
        marks[trial.number] = "*" if selected == trial.number else ("=" if trial.number in result.tied else "")
        table.add_row(
            str(rank), str(trial.number), f"{trial.value:.4f}",
            f"{attrs['two_tower']:.4f}" if "two_tower" in attrs else "-",
            f"{attrs.get('best_epoch', '-')}/{attrs.get('epochs_run', '-')}",
            f"{attrs.get('seconds', 0.0):.1f}", marks[trial.number],
            style="bold green" if selected == trial.number else None,
        )
    table.caption = ("sel: * the selected trial, the fastest of those tied (=) with the best validation value "
                     "(within tune.fastest_within_se paired standard errors)")
    console.print(table)
    # The settings below the table, one line per trial: a table column that narrow would break names mid-word.
    for trial in ranked:
        style = "bold green" if selected == trial.number else "default"
        console.print(f"[{style}]trial {trial.number}{marks[trial.number]}:[/{style}] " + "  ".join(
            f"{_label(name, trial.params)}={_short(value)}" for name, value in trial.params.items()))
    counts = ", ".join(f"{count} {state.lower()}" for state, count in sorted(result.counts().items()))
    console.print(f"Trials: {counts or 'none'}; {result.seconds:.1f} s this run"
                  + (f", resumed with {result.resumed_with} finished" if result.resumed_with else "") + ".")
    print_notes(result.notes, progress)
    if result.best_config is not None:
        console.print(f"Selected settings: [bold]{result.best_config}[/bold]  (mmrec train -c {result.best_config})")
        folder = result.best.attrs.get("folder") if result.best is not None else None
        if folder:  # the selected trial was trained on the same train.csv: usable without retraining
            console.print("Or use the selected trial's model as it is: "
                          f"MMREC_PATHS__CHECKPOINT_DIR={folder}/checkpoints mmrec evaluate -c {result.best_config}")
    if result.plot is not None:
        console.print(f"Plot: {result.plot}")
    console.print(f"Summary: {result.summary}   Study: {result.storage}")


def _label(name: str, params: dict[str, object]) -> str:
    """`training.learning_rate` -> `learning_rate` unless another searched setting has the same key."""
    key = name.rpartition(".")[2]
    return key if sum(other.rpartition(".")[2] == key for other in params) == 1 else name


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def register(root: typer.Typer) -> None:
    root.command("tune")(tune)
