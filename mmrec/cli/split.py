"""`mmrec split`: train/validation/test CSVs and a report, refusing splits that leak."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mmrec.cli.common import ConfigOption, console, print_notes, state
from mmrec.settings import SPLIT_STRATEGIES


def _strategy(value: str | None) -> str | None:
    # leave-one-out is the spelling in the design notes; the settings use leave_one_out.
    if value is None:
        return None
    normalised = value.replace("-", "_")
    if normalised not in SPLIT_STRATEGIES:
        raise typer.BadParameter(f"{value!r} is not one of: {', '.join(SPLIT_STRATEGIES)}")
    return normalised


def split(
    ctx: typer.Context,
    config: ConfigOption = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            "-s",
            callback=_strategy,
            help=f"One of: {', '.join(SPLIT_STRATEGIES)} (split.strategy).",
            autocompletion=lambda: list(SPLIT_STRATEGIES),
        ),
    ] = None,
    sample_n: Annotated[
        int | None,
        typer.Option(
            "--sample-n", "--sample_n", min=1, help="Split only N sampled interactions (split.sample_n)."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (split.seed).")] = None,
) -> None:
    """Split the processed interactions into train/val/test (see docs/data.md for the strategies)."""
    from mmrec.pipeline.split import run_split

    settings = state(ctx).settings(
        config, {"split.strategy": strategy, "split.sample_n": sample_n, "split.seed": seed}
    )
    result = run_split(
        settings, progress=lambda event: event.message and console.print(f"[dim]{event.message}")
    )
    report = result.report
    table = Table(title=f"Split: {report['strategy']} (seed {report['seed']})")
    # Two-line headers and a time range that may wrap: the table fits an 80-column terminal.
    for column in ("part", "interactions", "users", "items", "cold\nusers", "cold\nitems", "time range (UTC)"):
        table.add_column(column, justify="left" if column in ("part", "time range (UTC)") else "right",
                         no_wrap=column != "time range (UTC)", min_width=len(column.split("\n")[0]))
    for name, part in report["parts"].items():
        time_range = " -> ".join(t[:10] for t in part["time_range"]) if part["time_range"] else "-"
        table.add_row(
            name,
            f"{part['interactions']:,}",
            f"{part['users']:,}",
            f"{part['items']:,}",
            f"{part['cold_users']:,}",
            f"{part['cold_items']:,}",
            time_range,
        )
    console.print(table)
    print_notes(report["notes"])
    console.print(
        f"No leakage found. Wrote train/val/test CSVs and {result.report_path.name} "
        f"to [bold]{result.splits_dir}[/bold]"
    )


def register(root: typer.Typer) -> None:
    root.command("split")(split)
