"""`mmrec data synth | import movielens`: create datasets in the mmrec input format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mmrec.cli.common import ConfigOption, RichProgress, console, state

app = typer.Typer(
    help="Create input data: the synthetic demo catalogue or an imported public dataset.",
    no_args_is_help=True,
)
import_app = typer.Typer(help="Convert a public dataset into the mmrec input format.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@app.command("synth")
def synth(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: paths.data_dir).")
    ] = None,
    users: Annotated[int, typer.Option("--users", min=1, help="Number of users.")] = 300,
    items: Annotated[int, typer.Option("--items", min=2, help="Number of items.")] = 400,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files).")] = 0,
    interactions: Annotated[
        int | None,
        typer.Option(
            "--interactions",
            min=1,
            help="Exactly this many distinct interactions, with power-law item popularity (scale runs). "
            "Default: about 50 per user.",
        ),
    ] = None,
    no_images: Annotated[
        bool,
        typer.Option("--no-images", "--no_images", help="Write no image files (catalogue for scale runs)."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Generate a synthetic multimodal catalogue (images, text, numbers, interactions) + latent categories."""
    from mmrec.pipeline.data import run_synth

    settings = state(ctx).settings(config)
    with RichProgress(transient=True) as progress:
        summary = run_synth(
            settings,
            out,
            users=users,
            items=items,
            seed=seed,
            progress=progress,
            interactions=interactions,
            images=not no_images,
        )
    pictures = "one image each" if summary.images else "no image files"
    console.print(
        f"[green]Wrote[/green] {summary.items:,} items "
        f"({summary.categories} latent categories, {pictures}), "
        f"{summary.users:,} users and {summary.interactions:,} interactions to [bold]{summary.out_dir}[/bold]"
    )


@import_app.command("movielens")
def import_movielens(
    ctx: typer.Context,
    src: Annotated[
        Path,
        typer.Argument(
            help="MovieLens folder: ml-latest-small / ml-20m+ (ratings.csv, movies.csv[, tags.csv]), "
            "ml-1m / ml-10m (ratings.dat, movies.dat[, tags.dat]) or ml-100k (u.data, u.item)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the input-format files.")],
    posters: Annotated[
        Path | None, typer.Option("--posters", help="Folder of {movieId}.jpg posters.")
    ] = None,
    max_users: Annotated[
        int | None,
        typer.Option("--max-users", "--max_users", min=1, help="Keep only the first N users (quick trials)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Import MovieLens (+ posters) and write OUT/mmrec.yaml, a ready config for this data."""
    from mmrec.pipeline.data import run_import_movielens

    settings = state(ctx).settings(config)
    with RichProgress(transient=True) as progress:
        result = run_import_movielens(settings, src, out, posters, max_users, progress)
    table = Table(title=f"MovieLens import ({result.flavour})")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in (
        ("movies", result.movies),
        ("ratings", result.ratings),
        ("users", result.users),
        ("movies with tags", result.tagged_movies),
        ("posters copied", result.posters_copied),
        ("posters missing", result.posters_missing),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    if result.posters_missing:
        console.print(
            f"[yellow]{result.posters_missing:,} movies have no poster[/yellow] "
            f"(e.g. {', '.join(result.missing_examples)}); preprocess will flag them has_image=False."
        )
    console.print(
        f"Numeric feature columns for this data: [bold]{result.numeric_columns}[/bold] "
        "(no view/comment/thumbup counts; rating statistics are computed from the train split only).\n"
        f"Wrote a ready config: [bold]{result.config_path}[/bold]  ->  "
        f"mmrec preprocess --config {result.config_path}"
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
