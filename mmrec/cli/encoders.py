"""`mmrec encoders extract | show`: user/item id encoders fitted on the train split."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from mmrec.cli.common import ConfigOption, console, state

if TYPE_CHECKING:  # pandas comes with it: imported only when the command runs, so `mmrec --help` stays light
    from mmrec.pipeline.encoders import EncodersResult

app = typer.Typer(
    help="User/item id encoders (fitted on the train split, stored as JSON).", no_args_is_help=True
)


def _print(result: EncodersResult, examples: int) -> None:
    table = Table(title="Id encoders (index 0 = unknown/padding)")
    for column in ("encoder", "size (incl. 0)", "fingerprint", "first mappings"):
        table.add_column(column, overflow="fold")
    for name, encoder in (("user", result.users), ("item", result.items)):
        mappings = ", ".join(
            f"{value}->{index}" for index, value in enumerate(encoder.ids[:examples], start=1)
        )
        table.add_row(name, f"{len(encoder):,}", encoder.fingerprint[:12], mappings)
    console.print(table)
    console.print(f"Files: {result.paths[0]}, {result.paths[1]}")
    for part, counts in result.unknown.items():
        if counts["users"] or counts["items"]:
            console.print(
                f"[yellow]{part}:[/yellow] {counts['users']:,} user(s) and {counts['items']:,} item(s) "
                "unknown to the encoders (cold; they encode to 0 and are reported, not errors)"
            )


@app.command("extract")
def extract(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Fit the encoders on splits_dir/train.csv and save them to checkpoint_dir/encoders/."""
    from mmrec.pipeline.encoders import run_encoders_extract

    result = run_encoders_extract(state(ctx).settings(config))
    _print(result, examples=3)
    console.print(f"[green]Saved[/green] encoders to [bold]{result.paths[0].parent}[/bold]")


@app.command("show")
def show(
    ctx: typer.Context,
    config: ConfigOption = None,
    examples: int = typer.Option(5, "--examples", "-n", min=0, help="How many id->index mappings to print."),
) -> None:
    """Print encoder sizes, fingerprints and a few mappings."""
    from mmrec.pipeline.encoders import run_encoders_show

    _print(run_encoders_show(state(ctx).settings(config)), examples)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="encoders")
