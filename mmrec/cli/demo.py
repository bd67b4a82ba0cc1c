"""`mmrec demo`: the whole pipeline on embedded synthetic data, ending in a comparison table."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from mmrec.cli.common import ConfigOption, RichProgress, console, kept_on_interrupt, output_folder, state
from mmrec.cli.evaluate import print_report
from mmrec.cli.recommend import print_result

_PATH_LAYOUT = {
    "data_dir": "raw",
    "processed_dir": "processed",
    "splits_dir": "splits",
    "cache_dir": "cache",
    "checkpoint_dir": "models/checkpoints",
    "results_dir": "results",
}


def demo_config() -> Path:
    """The demo's settings, shipped inside the package (mmrec/configs/demo.yaml): any folder works."""
    return Path(str(resources.files("mmrec") / "configs" / "demo.yaml"))


def demo(
    ctx: typer.Context,
    config: ConfigOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Put every artefact under this folder (overrides paths.*).",
                                  callback=output_folder)
    ] = None,
    users: Annotated[int, typer.Option("--users", min=1, help="Synthetic users.")] = 300,
    items: Annotated[int, typer.Option("--items", min=2, help="Synthetic items.")] = 400,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Training epochs (default: from the config).")
    ] = None,
    recommend_users: Annotated[
        int,
        typer.Option(
            "--recommend-users", "--recommend_users", min=1, help="Users to show recommendations for."
        ),
    ] = 3,
    device: Annotated[
        str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N for every stage.")
    ] = None,
) -> None:
    """Synth data -> preprocess -> split -> cache -> train -> evaluate (all five models) -> recommend."""
    from mmrec.pipeline.demo import run_demo

    app_state = state(ctx)
    if config is None and app_state.config is None:
        config = demo_config()
    overrides: dict[str, Any] = {"training.epochs": epochs}
    if out is not None:
        overrides.update({f"paths.{key}": str(out / sub) for key, sub in _PATH_LAYOUT.items()})
    if device is not None:
        overrides.update(
            {f"{section}.device": device for section in ("features", "training", "evaluation", "inference")}
        )
    settings = app_state.settings(config, overrides)
    folder = os.path.commonpath([str(Path(getattr(settings.paths, key)).resolve()) for key in _PATH_LAYOUT])
    with kept_on_interrupt(f"The demo was interrupted; the stages it finished are kept under {folder}.",
                           "Run the same command again: it starts over, reusing the image and text features already "
                           "computed."), RichProgress(transient=True) as progress:
        result = run_demo(
            settings, users=users, items=items, recommend_users=recommend_users, progress=progress
        )
    print_report(result.evaluation)
    print_result(result.recommendations)
    stages = ", ".join(f"{name} {seconds:.0f}s" for name, seconds in result.stage_seconds.items())
    console.print(f"[bold]demo finished in {result.total_seconds:.0f}s[/bold] ({stages})")
    if result.best_checkpoint:
        console.print(f"[dim]best checkpoint:[/dim] {result.best_checkpoint}")


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
