"""`mmrec checkpoints list | organize | organize-manual | info`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mmrec.cli.common import (
    ConfigOption,
    JsonOption,
    absent_folder_note,
    console,
    err_console,
    print_json_data,
    shown,
    state,
)
from mmrec.errors import CheckpointError, ConfigError

app = typer.Typer(help="List, organize and inspect model checkpoints.", no_args_is_help=True)

DirOption = Annotated[Path | None, typer.Option("--checkpoint-dir", "--checkpoint_dir",
                                                help="Checkpoint folder (paths.checkpoint_dir).")]


def _checkpoint_dir(ctx: typer.Context, config: Path | None, checkpoint_dir: Path | None) -> Path:
    """The checkpoint folder; a --checkpoint-dir that is no folder is refused (a mistyped one is not an empty one:
    organize said it had nothing to move)."""
    settings = state(ctx).settings(config, {"paths.checkpoint_dir": checkpoint_dir})
    root = Path(settings.paths.checkpoint_dir)
    if checkpoint_dir is not None and not root.is_dir():
        raise CheckpointError(f"Checkpoint folder {root} " + ("is a file, not a folder." if root.exists() else
                                                              "does not exist."),
                              hint="Pass the folder `mmrec train` wrote (paths.checkpoint_dir), or train first.")
    return root


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


@app.command("list")
def list_command(ctx: typer.Context, config: ConfigOption = None, checkpoint_dir: DirOption = None,
                 as_json: JsonOption = False) -> None:
    """Table of checkpoints: path, epoch, validation metric (a best checkpoint's is the served blend's), size;
    combo and layout beside old flat checkpoints."""
    from mmrec.checkpoints.catalog import list_checkpoints

    root = _checkpoint_dir(ctx, config, checkpoint_dir)
    infos = list_checkpoints(root)
    if as_json:  # every checkpoint, broken ones included (valid: false, with the problem)
        print_json_data({"checkpoint_dir": root, "checkpoints": [{**asdict(info), "valid": info.valid}
                                                                 for info in infos]})
        if note := absent_folder_note(root):  # on stderr: stdout stays JSON
            err_console.print(f"[yellow]No checkpoints{shown(note)}.")
        return
    if not infos:
        console.print(f"No checkpoints in {root}{shown(absent_folder_note(root))}. Train one with `mmrec train`.")
        return
    table = Table(title=f"Checkpoints in {root}")
    # Narrow enough for 80 columns: organized checkpoints sit under a row naming their combo folder, a flat one
    # (old layout) at the top level with its combo on a second line; the status shows only beside broken ones
    # (explained below the table), an unfinished run's epoch is starred, and one shared monitored metric names
    # its column.
    broken = any(not info.valid for info in infos)
    monitors = {info.monitor for info in infos if info.metric is not None and info.monitor}
    metric_name = next(iter(monitors)) if len(monitors) == 1 else "metric"
    columns = ("path", "epoch", metric_name, "size", *(("status",) if broken else ()))
    for column in columns:  # numbers never wrap; a path folds only when a name is longer than the room left
        table.add_column(column, justify="left" if column in ("path", "status") else "right",
                         no_wrap=column != "path", overflow="fold", min_width=len(column) if column != "path" else None)
    folder = None
    for info in infos:
        metric = "-"
        if info.metric is not None and info.monitor:
            metric = f"{info.metric:.4f}" if metric_name != "metric" else f"{info.monitor} {info.metric:.4f}"
        # An organized checkpoint's file under a row naming its combo folder: the file name is what
        # --checkpoint-name takes, and a combo name (30+ characters) said once leaves room at 80 columns.
        if info.organized and info.path.parent != folder:
            folder = info.path.parent
            table.add_row(*(f"[bold]{shown(str(folder.relative_to(root)))}/" if column == "path" else ""
                            for column in columns))
        path = (f"  {shown(info.path.name)}" if info.organized else f"{shown(str(info.path.relative_to(root)))}\n"
                f"[dim]↳ {shown(info.combo) if info.combo else '[yellow]combo unknown'}[/dim]")
        cells = {"path": path,
                 "epoch": f"{info.epoch or '-'}{'*' if info.finished is False else ''}", metric_name: metric,
                 "size": _size(info.size_bytes), "status": "" if info.valid else "[red]broken"}
        table.add_row(*(cells[column] for column in columns))
    console.print(table)
    for info in infos:
        if not info.valid:
            console.print(f"[red]{shown(str(info.path.relative_to(root)))} is broken:[/red] "
                          f"{shown(str(info.problem))}")
    if any(info.finished is False for info in infos):
        console.print("* unfinished: a best checkpoint of a training run still going or interrupted; its metric is "
                      "the two-tower model's at that epoch, before the run chose its blend.")
    if any(info.blended for info in infos):
        blended = sorted((str(info.path.relative_to(root)), info.served) for info in infos if info.blended)
        console.print(f"{shown(metric_name)} is on validation: a best checkpoint's is the model it serves ("
                      + "; ".join(f"{shown(name)}: {served}" for name, served in blended)
                      + "; the two-tower model alone for any other), a last checkpoint's the two-tower model's at "
                        "that epoch.")
    if any(not info.organized for info in infos):
        from mmrec.checkpoints.catalog import organize, unknown_combo_checkpoints

        plan = organize(root, dry_run=True)  # what each flat checkpoint needs, as organize would find it
        if plan.moves:
            console.print(f"{len(plan.moves)} flat checkpoint(s) (old layout) name their combo: run "
                          "`mmrec checkpoints organize` to move them into combo folders.")
        offered, _ = unknown_combo_checkpoints(root)  # what organize-manual asks about (not a file that won't load)
        if offered:
            console.print(f"{len(offered)} flat checkpoint(s) name no combo: run "
                          "`mmrec checkpoints organize-manual` to say which.")
        if plan.conflicts:
            named = ", ".join(shown(str(path.relative_to(root))) for path in plan.conflicts)
            console.print(f"{len(plan.conflicts)} flat checkpoint(s) have a namesake in their combo folder ({named}): "
                          "remove or rename one of each pair.")


@app.command("organize")
def organize_command(
    ctx: typer.Context, config: ConfigOption = None, checkpoint_dir: DirOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "--dry_run", help="Show the moves without making them.")] = False,
) -> None:
    """Move flat checkpoints into {combo}/ folders using their sidecar metadata."""
    from mmrec.checkpoints.catalog import organize

    root = _checkpoint_dir(ctx, config, checkpoint_dir)
    report = organize(root, dry_run=dry_run)
    verb = "would move" if dry_run else "moved"
    for source, target in report.moves:
        console.print(f"{verb} {source.relative_to(root)} -> {target.relative_to(root)}")
    for path in report.conflicts:
        console.print(f"[yellow]skipped {path.name}: its destination already exists")
    for path in report.unknown_combo:
        console.print(f"[yellow]skipped {path.name}: no metadata names its combo (use `organize-manual`)")
    console.print(f"{len(report.moves)} {verb}, {len(report.conflicts) + len(report.unknown_combo)} skipped.")


@app.command("organize-manual")
def organize_manual_command(ctx: typer.Context, config: ConfigOption = None,
                            checkpoint_dir: DirOption = None) -> None:
    """Ask for the combo of each flat checkpoint that has none recorded, then move it (empty = skip)."""
    from mmrec.checkpoints.catalog import move_checkpoint, unknown_combo_checkpoints

    root = _checkpoint_dir(ctx, config, checkpoint_dir)
    pending, unreadable = unknown_combo_checkpoints(root)
    if unreadable:
        console.print(f"[yellow]Not offered: {', '.join(path.name for path in unreadable)} (not loadable as a "
                      "checkpoint: see `mmrec checkpoints list`).")
    if not pending:
        console.print("No flat checkpoints with an unknown combo.")
        return
    moved = 0
    for path in pending:
        while True:
            combo = typer.prompt(f"Combo for {path.name} (e.g. efficientnet-lite_sentence-bert; empty = skip)",
                                 default="", show_default=False).strip()
            if not combo:
                console.print(f"skipped {path.name}")
                break
            try:
                target = move_checkpoint(path, combo, root)
            except CheckpointError as error:
                console.print(f"[red]{error.message}[/red] {error.hint or ''}")
                continue
            console.print(f"moved {path.name} -> {target.relative_to(root)}")
            moved += 1
            break
    console.print(f"{moved} moved, {len(pending) - moved} skipped.")


@app.command("info")
def info_command(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="A .pth file (default: the best checkpoint of the config's combo).")] = None,
    config: ConfigOption = None,
    checkpoint_dir: DirOption = None,
) -> None:
    """JSON summary of one checkpoint (settings, metrics, encoders, versions)."""
    from mmrec.checkpoints.catalog import summary
    from mmrec.checkpoints.store import BEST, find_checkpoint

    settings = state(ctx).settings(config, {"paths.checkpoint_dir": checkpoint_dir})
    if path is not None and checkpoint_dir is not None:
        raise ConfigError(f"--checkpoint-dir {checkpoint_dir} has no effect beside the checkpoint named ({path}).",
                          hint="Name the .pth file, or the folder to take the config's combo's best checkpoint from.")
    if path is None:
        path = find_checkpoint(Path(settings.paths.checkpoint_dir), settings.features.combo,
                               settings.inference.checkpoint_name or BEST)
    facts = summary(path)
    print_json_data(facts)
    if facts["status"] != "ok":
        problem = facts["problem"]
        raise CheckpointError(problem if str(path) in problem else f"Checkpoint {path} is broken: {problem}",
                              hint="Use another checkpoint (see `mmrec checkpoints list`) or retrain.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="checkpoints")
