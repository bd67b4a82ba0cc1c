"""`mmrec data synth | import movielens | import mmrec`: create datasets in the mmrec input format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mmrec.cli.common import ConfigOption, RichProgress, console, output_folder, print_notes, shown, state
from mmrec.data.import_config import kept_config_note

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
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default: paths.data_dir).", callback=output_folder),
    ] = None,
    users: Annotated[int, typer.Option("--users", min=1, help="Number of users.")] = 300,
    items: Annotated[int, typer.Option("--items", min=2, help="Number of items.")] = 400,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same files).")] = 0,
    interactions: Annotated[
        int | None,
        typer.Option(
            "--interactions",
            min=1,
            help="Exactly this many distinct interactions, with power-law item popularity (scale runs). "
            "Default: about 50 per user (fewer on a small catalogue: at most half its items each).",
        ),
    ] = None,
    no_images: Annotated[
        bool,
        typer.Option("--no-images", "--no_images", help="Write no image files (catalogue for scale runs)."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace input files in --out that mmrec did not generate.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Generate a synthetic multimodal catalogue (images, text, numbers, interactions) + latent categories."""
    from mmrec.pipeline.data import run_synth

    settings = state(ctx).settings(config)
    with RichProgress(transient=True) as progress:
        summary = run_synth(
            settings,
            out.expanduser() if out is not None else None,  # '~' is the home folder, as in every path
            users=users,
            items=items,
            seed=seed,
            progress=progress,
            interactions=interactions,
            images=not no_images,
            overwrite=force,
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
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the input-format files.",
                                      callback=output_folder)],
    posters: Annotated[
        Path | None, typer.Option("--posters", help="Folder of {movieId}.jpg posters.")
    ] = None,
    max_users: Annotated[
        int | None,
        typer.Option("--max-users", "--max_users", min=1, help="Keep only the first N users (quick trials)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace input files in --out that no import wrote (your own data).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Import MovieLens (+ posters) and write OUT/mmrec.yaml, a ready config for this data."""
    from mmrec.pipeline.data import run_import_movielens

    settings = state(ctx).settings(config)
    with RichProgress(transient=True) as progress:
        result = run_import_movielens(settings, src.expanduser(), out.expanduser(),
                                      posters.expanduser() if posters is not None else None, max_users, progress,
                                      force)
    console.print(_counts_table(f"MovieLens import ({result.flavour})", [
        ("movies", result.movies),
        ("ratings", result.ratings),
        ("users", result.users),
        ("movies with tags", result.tagged_movies),
        ("posters copied", result.posters_copied),
        ("posters missing", result.posters_missing),
    ]))
    if result.posters_missing:
        console.print(
            f"[yellow]{result.posters_missing:,} movies have no poster[/yellow] "
            f"(e.g. {', '.join(result.missing_examples)}); preprocess will flag them has_image=False."
        )
    if result.posters_unchanged:
        console.print(f"{result.posters_unchanged:,} of the posters were already there with the same bytes: left "
                      "as they were, so preprocess does not check them again.")
    if result.config_kept:
        console.print(f"[yellow]{shown(kept_config_note(result.out_dir, result.config_path, result.config_kept))}")
    console.print(
        f"Numeric feature columns for this data: [bold]{result.numeric_columns}[/bold] "
        "(no view/comment/thumbup counts; rating statistics are computed from the train split only).\n"
        f"Wrote a ready config: [bold]{result.config_path}[/bold]  ->  "
        f"mmrec preprocess --config {result.config_path}"
    )


@import_app.command("mmrec")
def import_mmrec(
    ctx: typer.Context,
    src: Annotated[
        Path,
        typer.Argument(
            help="MMRec dataset folder (enoche/MMRec, e.g. data/baby): {name}.inter (userID, itemID, rating, "
            "timestamp, x_label), image_feat.npy, text_feat.npy[, i_id_mapping.csv]."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the input-format files, the split and "
                                                          "the config.", callback=output_folder)],
    name: Annotated[
        str | None,
        typer.Option("--name", help="The dataset's .inter file, {name}.inter, when SRC holds several."),
    ] = None,
    keep_cold_users: Annotated[
        bool,
        typer.Option(
            "--keep-cold-users",
            "--keep_cold_users",
            help="Keep validation/test rows of users without training rows (MMRec drops them; evaluate then "
            "scores those users with the cold-user fallback).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace input files in --out that no import wrote (your own data).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Import an MMRec benchmark dataset (Amazon Baby/Sports/Clothing) with its own train/validation/test
    split; writes OUT/mmrec.yaml and prints the commands to run next."""
    from mmrec.pipeline.data import run_import_mmrec

    settings = state(ctx).settings(config)
    with RichProgress(transient=True) as progress:
        result = run_import_mmrec(settings, src.expanduser(), out.expanduser(), name, keep_cold_users, progress,
                                  force)
    rows = [
        (".inter rows", result.rows_read),
        ("interactions", result.interactions),
        ("users", result.users),
        ("items (itemID 0..max)", result.items),
        ("items without interactions", result.items_without_interactions),
        *((f"x_label {k} ({part}) rows", result.labels[part]) for k, part in enumerate(("train", "val", "test"))),
        *((f"{part}.csv rows", result.parts[part]) for part in ("train", "val", "test")),
        ("duplicate pairs (counted once)", result.duplicates),
        ("cold val/test rows " + ("kept" if result.cold_users_kept else "left out"), sum(result.cold_rows.values())),
    ]
    console.print(_counts_table(f"MMRec import ({result.inter_file.name})", rows))
    for modality in ("vision", "text"):
        if modality in result.vectors:
            path, count, dim = result.vectors[modality]
            console.print(f"{modality}: {path.name}, {count:,} x {dim} (imported by `mmrec cache import` below)")
        else:
            console.print(f"[yellow]{modality}: no {'image' if modality == 'vision' else 'text'}_feat.npy[/yellow]; "
                          f"the config sets model.use_{modality}: false.")
    print_notes(result.notes, progress)
    console.print(f"Wrote the split to [bold]{result.splits_dir}[/bold] (do not run `mmrec split`: it would replace "
                  f"it) and a ready config: [bold]{result.config_path}[/bold]\nNext, run:")
    for command in result.next_commands:
        console.print(command, markup=False, highlight=False, soft_wrap=True)


def _counts_table(title: str, rows: list[tuple[str, int]]) -> Table:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in rows:
        table.add_row(label, f"{value:,}")
    return table


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
