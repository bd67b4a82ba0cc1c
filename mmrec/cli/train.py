"""`mmrec train`: train the multimodal two-tower model with rich progress and a summary table."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mmrec.cli.common import ConfigOption, RichProgress, configure_logging, console, no_effect, print_notes, state
from mmrec.errors import Interrupted
from mmrec.progress import null_progress


def train(
    ctx: typer.Context,
    config: ConfigOption = None,
    device: Annotated[str | None, typer.Option("--device", "-d", help="cpu | cuda | cuda:N | auto (training.device).",
                                               autocompletion=lambda: ["auto", "cpu", "cuda"])] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Maximum epochs (training.epochs).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "--batch_size", min=1,
                                                   help="Interactions per step (training.batch_size).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", "--learning-rate", "--learning_rate",
                                             help="Learning rate (training.learning_rate).")] = None,
    use_wandb: Annotated[bool | None, typer.Option(
        "--use-wandb/--no-wandb", "--use_wandb/--no_wandb",
        help="Log to Weights & Biases (offline without an API key or wandb login).")] = None,
    wandb_project: Annotated[str | None, typer.Option("--wandb-project", "--wandb_project",
                                                      help="wandb project (tracking.wandb_project).")] = None,
    wandb_run_name: Annotated[str | None, typer.Option("--wandb-run-name", "--wandb_run_name",
                                                       help="wandb run name (tracking.wandb_run_name).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue from a last_model.pth (exact resume).",
                                                exists=True, dir_okay=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Per-step debug logs.")] = False,
) -> None:
    """Train on the split, validate every epoch, early-stop, and write organized checkpoints."""
    app_state = state(ctx)
    if verbose:
        app_state.verbose = True
        configure_logging(True)
    settings = app_state.settings(config, {
        "training.device": device, "training.epochs": epochs, "training.batch_size": batch_size,
        "training.learning_rate": lr, "tracking.use_wandb": use_wandb, "tracking.wandb_project": wandb_project,
        "tracking.wandb_run_name": wandb_run_name,
    })
    named = [f"--{name.replace('_', '-')} {value}" for name, value in (("wandb_project", wandb_project),
                                                                       ("wandb_run_name", wandb_run_name)) if value]
    # As recommend refuses --diversity-lambda without MMR (an explicit --no-wandb beside them is this run's choice).
    if named and use_wandb is None and not settings.tracking.use_wandb:
        raise no_effect(named[0], "Weights & Biases tracking is off",
                        "Add --use-wandb (or set tracking.use_wandb: true)")
    from mmrec.models.transitions import describe_variant  # torch: imported once the settings are good
    from mmrec.models.trend import days, describe_halflife
    from mmrec.pipeline.train import run_train

    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 draws progress and the summary
        run_train(settings, resume=resume, progress=null_progress)
        return
    started = time.time()
    try:
        with RichProgress() as progress:
            result = run_train(settings, resume=resume, progress=progress)
    except KeyboardInterrupt:
        # Command-line settings to repeat in the command that continues the run (tracking too: a pasted command
        # without --use-wandb went on untracked).
        given = {"--device": device, "--epochs": epochs, "--batch-size": batch_size, "--lr": lr,
                 "--wandb-project": wandb_project, "--wandb-run-name": wandb_run_name}
        options = [{True: "--use-wandb", False: "--no-wandb"}.get(use_wandb, ""),
                   *(f"{flag} {shlex.quote(str(value))}" for flag, value in given.items() if value is not None)]
        raise _interrupted(settings, started, config or app_state.config, " ".join(o for o in options if o),
                           resume) from None

    table = Table(title=f"Training: {result.combo} on {result.device}"
                  + (f" x{result.world_size} processes" if result.world_size > 1 else ""))
    # The monitored metric and the recall at the same cut-off keep the table narrow.
    monitor = result.monitor.lower()
    cut = f"@{monitor.split('@')[1]}" if "@" in monitor else ""
    available = result.history[-1].val if result.history else {}
    metric_names = [m for m in dict.fromkeys([monitor, f"recall{cut}" if cut else "recall@10"]) if m in available]
    for column in ("epoch", "loss", *metric_names, "s/epoch", "inter/s"):
        table.add_column(column, justify="right", no_wrap=True)
    for record in result.history:
        style = "bold green" if record.epoch == result.best_epoch else None
        table.add_row(str(record.epoch), f"{record.loss:.4f}", *(f"{record.val.get(m, 0.0):.4f}" for m in metric_names),
                      f"{record.seconds:.1f}", f"{record.interactions_per_s:,.0f}", style=style)
    console.print(table)
    print_notes(result.notes, progress)
    for reason, count in result.skipped.items():
        if reason == "val_users_unseen_in_train":  # in validation all the same, from an empty history
            console.print(f"[yellow]{count:,} validation user(s) have no training interaction: validation still "
                          "counts them, ranking the popularity list for them (there is no history to go on)")
        else:
            console.print(f"[yellow]Skipped {count:,} ({reason.replace('_', ' ')})")
    stop = "early-stopped" if result.stopped_early else "ran all epochs"
    monitored = f"val {result.monitor}" if any(record.val for record in result.history) else \
        "-loss (no validation data)"
    speed = (f"{result.interactions_per_s:,.0f} inter/s, {result.seconds_per_epoch:.1f} s/epoch"
             if result.epochs_run else "no epoch trained in this run")
    console.print(
        f"Best {monitored} = [bold]{result.best_metric:.4f}[/bold] at epoch {result.best_epoch} ({stop}); "
        f"{result.n_train_interactions:,} train interactions, {speed}, peak memory {result.peak_memory_mb:,.0f} MiB."
    )
    if result.item_item:
        blend = result.item_item
        console.print(
            f"Item-item model ({'EASE + content' if settings.model.modalities else 'EASE, no content'}, "
            f"fitted{' and its lambda chosen' if blend.get('l2_grid') else ''} in "
            f"{blend['fit_seconds']:.1f} s"
            + (f"; the whole blend search {blend['search_seconds']:.1f} s" if blend.get("search_seconds") else "")
            + "): blend weight "
            f"[bold]{blend['blend']:g}[/bold], recency half-life {blend['halflife']:g}"
            + (f", content similarity ({blend['content_modality']}) weight [bold]{blend['content_blend']:g}[/bold]"
               if blend.get("content_blend") else "")
            + (f", transitions ({describe_variant(blend.get('sequence_directions', 'next'), blend['sequence_halflife'])}) "
               f"weight [bold]{blend['sequence_blend']:g}[/bold]" if blend.get("sequence_blend") else "")
            + (f", popularity weight [bold]{blend['trend_blend']:g}[/bold] "
               f"({describe_halflife(blend['trend_halflife_days'])})" if blend.get("trend_blend") else "")
            + (f", cold items ordered by content similarity ({blend['cold_modality']}) weight "
               f"[bold]{blend['cold_blend']:g}[/bold]" if blend.get("cold_blend") else "")
            + (f", cold items shifted by [bold]{blend['cold_shift']:g}[/bold] standard deviations"
               if blend.get("cold_shift") else "")
            + (f", new users' popularity half-life [bold]{days(blend['fallback_halflife_days'])}[/bold]"
               if blend.get("fallback_halflife_days") else "")
            + (" (all tied on validation: every validation user is new"
               + (f"; their list's recency raised val {result.monitor} to {blend['monitored']:.4f})"
                  if blend.get("fallback_halflife_days") else ")") if result.validation_all_new else
               f" chosen on validation: val {result.monitor} [bold]{blend['monitored']:.4f}[/bold] "
               f"(two-tower alone {result.best_metric:.4f}).")
        )
    if result.best_path:
        console.print(f"Checkpoints: [bold]{result.best_path}[/bold] and {result.last_path.name if result.last_path else '-'}")


def _interrupted(settings, started: float, config: Path | None = None, options: str = "",
                 resume: Path | None = None) -> Interrupted:
    """What a Ctrl-C during training leaves, and how to go on from it (the command to paste: its settings file
    and the training `options` given on the command line; `resume`: the checkpoint this run continued)."""
    from mmrec.checkpoints.store import LAST, checkpoint_path, read_meta

    last = checkpoint_path(Path(settings.paths.checkpoint_dir), settings.features.combo, LAST)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)  # under torchrun: resumed by as many processes
    program = f"torchrun --nproc_per_node {world} -m mmrec train" if world > 1 else "mmrec train"

    def command(checkpoint: Path) -> str:
        return " ".join(part for part in (program, f"-c {shlex.quote(str(config))}" if config else "", options,
                                          f"--resume {shlex.quote(str(checkpoint))}") if part)

    if not last.is_file() or last.stat().st_mtime < started:
        if resume is not None and Path(resume).is_file():  # what it resumed from is as it was: go on from it again
            return Interrupted(
                f"Training was interrupted before its first new epoch ended: this run saved nothing, and {resume} "
                f"still holds epoch {read_meta(Path(resume)).get('epoch', '?')}.",
                hint=f"Continue it with `{command(Path(resume))}` (with any other settings this run was given).")
        return Interrupted("Training was interrupted before its first epoch ended: this run saved nothing.",
                           hint="Run `mmrec train` again.")
    epoch = read_meta(last).get("epoch", "?")
    return Interrupted(
        f"Training was interrupted; epoch {epoch} is saved in {last} (its best_model.pth is marked unfinished: "
        "until a run ends, evaluate and recommend serve the last finished model, if there is one, and say so).",
        hint=f"Continue it with `{command(last)}` (with any other settings this run was given).")


def register(root: typer.Typer) -> None:
    root.command("train")(train)
