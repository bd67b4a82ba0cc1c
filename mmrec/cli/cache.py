"""`mmrec cache`: precompute, list, inspect and clear the feature store; list the backbones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mmrec.cli.common import (
    ConfigOption,
    JsonOption,
    RichProgress,
    absent_folder_note,
    cache_interrupted,
    confirm,
    console,
    err_console,
    print_json_data,
    kept_on_interrupt,
    print_notes,
    shown,
    state,
)

if TYPE_CHECKING:
    from mmrec.features.item_features import PrecomputeReport

cache_app = typer.Typer(help="Feature store: precompute | import | list | stats COMBO | clear COMBO|--all | prune | "
                        "backbones.",
                        no_args_is_help=True)


def _complete_combo(ctx: typer.Context, incomplete: str) -> list[str]:
    """Existing combo names under the configured cache_dir (best effort: completion must not fail)."""
    try:
        from mmrec.pipeline.cache import combo_names

        cache_dir = state(ctx).settings(ctx.params.get("config")).paths.cache_dir
        return [name for name in combo_names(cache_dir) if name.startswith(incomplete)]
    except Exception:
        return []


def _warn_refused(refused: list[str], cache_dir: Path) -> None:
    if refused:
        console.print(f"[yellow]Refused {len(refused)} combo folder(s) in {cache_dir} that are symbolic links "
                      f"(not opened, not deleted): {', '.join(refused)}")


def _size(num_bytes: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num_bytes < 1024 or unit == "GiB":
            return f"{num_bytes:,.0f} {unit}" if unit == "B" else f"{num_bytes:,.1f} {unit}"
        num_bytes /= 1024
    return str(num_bytes)


@cache_app.command("precompute")
def precompute(
    ctx: typer.Context,
    config: ConfigOption = None,
    test: Annotated[bool, typer.Option("--test", help="Only the first 100 items (a quick check).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Recompute features that are already cached.")] = False,
    max_items: Annotated[int | None, typer.Option("--max-items", "--max_items", min=1,
                                                  help="Only the first N items.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "--batch_size", min=1,
                                                   help="Extraction batch size (features.batch_size).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto|cpu|cuda|cuda:N (features.device).")] = None,
) -> None:
    """Fill the feature store of the configured combo (resumes where a previous run stopped)."""
    from mmrec.pipeline.cache import run_cache_precompute

    settings = state(ctx).settings(config, {"features.batch_size": batch_size, "features.device": device})
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 draws progress and the summary
        run_cache_precompute(settings, test=test, force=force, max_items=max_items)
        return
    with kept_on_interrupt(*cache_interrupted(settings, config or state(ctx).config)), RichProgress() as progress:
        result = run_cache_precompute(settings, test=test, force=force, max_items=max_items, progress=progress)
    report = result.report
    ranks = f", {result.world_size} processes" if result.world_size > 1 else ""
    rate = f"{report.items_per_second:,.1f} items/s" if report.items_per_second else "nothing to compute"
    table = Table(title=f"Feature store {report.combo} ({report.n_items:,} items{ranks}, {report.seconds:.1f} s, "
                        f"{rate})")
    columns = ["modality", "with content", "already cached", "computed", "unreadable"]
    columns += ["not imported"] if report.imported else []
    for column in columns:
        table.add_column(column, justify="left" if column == "modality" else "right")
    for modality in report.with_content:
        row = [modality, f"{report.with_content[modality]:,}", f"{report.already_cached[modality]:,}",
               f"{report.computed[modality]:,}", f"{report.failed[modality]:,}"]
        row += [f"{report.not_imported[modality]:,}"] if report.imported else []
        table.add_row(*row)
    console.print(table)
    from mmrec.features.item_features import borrowed_message

    for modality, copied in report.borrowed.items():
        if copied:
            console.print(borrowed_message(modality, copied))
    for modality in ("vision", "text"):
        if modality not in report.with_content:
            console.print(f"{modality}: not computed (model.use_{modality} is false: the model does not read it).")
    for modality, item_id, reason in report.failures:
        console.print(f"[yellow]unreadable {modality} input for item {shown(str(item_id))}: {shown(str(reason))}")
    print_import_gaps(report)
    console.print(f"Cache: [bold]{result.cache_folder}[/bold]")
    from mmrec.pipeline.preprocess import stale_processed_note

    if note := stale_processed_note(settings):  # the features are those of the processed items, not the raw ones
        console.print(f"[yellow]{shown(note)}")


def print_import_gaps(report: PrecomputeReport) -> None:
    """Say which imported modality still lacks vectors (precompute computes nothing for it)."""
    for modality, identity in report.imported.items():
        if report.not_imported[modality]:
            what = (f"{report.not_imported[modality]:,} items have no imported {modality} vector ({identity}); "
                    "they are treated as lacking it" if identity else f"no {modality} vectors imported yet")
            console.print(f"[yellow]{modality} comes from `mmrec cache import` (nothing computed): {what}. "
                          f"Import a file that covers them with `mmrec cache import --modality {modality} FILE`.")


@cache_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Vectors: a .npy matrix [items, dim] (with --ids) or a parquet "
                                              "file with item_id and one vector column (or one number column "
                                              "per dimension).")],
    modality: Annotated[str, typer.Option("--modality", help="vision | text: the features these vectors are.")],
    ids: Annotated[str | None, typer.Option(
        "--ids", help="For .npy: the row ids (text file, one per line, or .npy/.json list), or 'catalogue' when "
                      "the rows follow the processed item table's order (MMRec's image_feat.npy/text_feat.npy).",
    )] = None,
    column: Annotated[str | None, typer.Option(
        "--column", help="For parquet: the vector column (default: the only column besides item_id; "
                            "with several number columns and nothing else, those columns in order).")] = None,
    config: ConfigOption = None,
) -> None:
    """Import precomputed item vectors (CLIP, sentence embeddings, ...) into the configured combo,
    whose features.<modality>_backbone must be `imported`."""
    from mmrec.features.vector_file import examples
    from mmrec.pipeline.cache import run_cache_import

    settings = state(ctx).settings(config)
    with RichProgress() as progress:
        result = run_cache_import(settings, modality, file, ids, column, progress)
    report = result.report
    console.print(f"{report.path}: {report.rows:,} rows of {report.dim}-d {modality} vectors, identity "
                  f"{report.identity}, catalogue of {report.catalogue_items:,} items.")
    if report.unchanged:
        console.print(f"Already imported into {report.combo}: nothing written.")
    else:
        console.print(f"Imported {report.written:,} {modality} vectors into {report.combo} "
                      f"in {report.seconds:.1f} s.")
        if report.replaced:
            dims = (f"; those were {report.replaced_dim}-d, these are {report.dim}-d" if report.replaced_dim
                    else "")
            console.print(f"They replace the earlier import {report.replaced} ({report.removed:,} vectors "
                          f"deleted{dims}). Checkpoints trained on it no longer load: train again.")
    if report.unknown_ids:
        console.print(f"[yellow]Skipped {len(report.unknown_ids):,} row(s) whose item id is not in the catalogue: "
                      f"{shown(examples(report.unknown_ids))}")
    if report.missing_items:
        console.print(f"[yellow]{len(report.missing_items):,} catalogue item(s) have no row in the file and no "
                      f"{modality} vector (treated as lacking it): {shown(examples(report.missing_items))}")
    print_notes(report.notes)
    console.print(f"Cache: [bold]{result.cache_folder}[/bold]")


@cache_app.command("list")
def list_command(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every combo cache with vector counts, dims, size on disk and last update."""
    from mmrec.pipeline.cache import list_caches

    settings = state(ctx).settings(config)
    listing = list_caches(settings.paths.cache_dir)
    if as_json:  # `refused`: combo entries that are symbolic links, left unopened
        print_json_data({"cache_dir": settings.paths.cache_dir, "caches": listing.caches, "refused": listing.refused})
        if note := absent_folder_note(settings.paths.cache_dir):  # on stderr: stdout stays JSON
            err_console.print(f"[yellow]No feature caches{shown(note)}.")
        return
    _warn_refused(listing.refused, settings.paths.cache_dir)
    infos = listing.caches
    if not infos:
        imported = "imported" in (settings.features.vision_backbone, settings.features.text_backbone)
        how = "`mmrec cache import` (this config's backbones are imported)" if imported else "`mmrec cache precompute`"
        absent = shown(absent_folder_note(settings.paths.cache_dir))
        console.print(f"No feature caches in {settings.paths.cache_dir}{absent}. Fill one with {how}.")
        return
    table = Table(title=f"Feature caches in {settings.paths.cache_dir}", collapse_padding=True)
    # Two-line headers and a date that folds: the table fits an 80-column terminal with a whole combo name.
    table.caption = "vectors and dims: vision/text"
    for column in ("combo", "vectors", "dims", "size", "updated"):
        table.add_column(column, justify="left" if column in ("combo", "updated") else "right",
                         no_wrap=column != "updated", overflow="fold", min_width=10 if column == "updated" else None)
    for info in infos:
        if info.problem:
            table.add_row(info.combo, "[red]damaged", "-", _size(info.size_bytes), "-")
            continue
        table.add_row(info.combo, f"{info.vectors['vision']:,}/{info.vectors['text']:,}",
                      f"{info.dims.get('vision', '-')}/{info.dims.get('text', '-')}", _size(info.size_bytes),
                      _short_time(info.updated_at))
    console.print(table)
    for info in infos:
        if info.problem:
            console.print(f"[red]{shown(info.problem)}")


def _short_time(stamp: str) -> str:
    """An ISO time as 'YYYY-MM-DD' over 'HH:MM' (UTC, as stored): two short lines, so the table fits 80 columns."""
    day, _, time = str(stamp).partition("T")
    return f"{day}\n{time[:5]}" if time else day


@cache_app.command("stats")
def stats_command(
    ctx: typer.Context,
    combo: Annotated[str, typer.Argument(help="Combo name, e.g. efficientnet-lite_sentence-bert.",
                                         autocompletion=_complete_combo)],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Counts, dims, bytes, catalogue coverage and the last run's hits/misses of one combo cache."""
    from mmrec.errors import DataError
    from mmrec.pipeline.cache import cache_stats

    settings = state(ctx).settings(config)
    try:
        from mmrec.data.tables import load_items

        items = load_items(settings.paths.processed_dir)
    except DataError:
        items = None  # stats of the cache alone; coverage needs the processed catalogue
    stats = cache_stats(settings.paths.cache_dir, combo, items)
    if as_json:  # catalogue_items and the coverage figures are null without a processed catalogue
        print_json_data(stats)
        return
    # One column per modality, one row per figure: fits 80 columns whatever the backbones are called.
    title = f"Feature cache {stats.combo} ({_size(stats.size_bytes)})"
    table = Table(title=title, min_width=len(title))
    table.add_column("")
    for modality in ("vision", "text"):
        table.add_column(modality, justify="right")
    rows = {"backbone": lambda m: stats.backbones.get(m, "-"), "dim": lambda m: str(stats.dims.get(m, "-")),
            "vectors": lambda m: f"{stats.vectors[m]:,}", "unreadable": lambda m: f"{stats.failures[m]:,}"}
    if stats.catalogue_items is not None:
        rows.update({"coverage": lambda m: "-" if stats.coverage[m] != stats.coverage[m] else f"{stats.coverage[m]:.1%}",
                     "not cached": lambda m: f"{stats.uncached[m]:,}",
                     "no content": lambda m: f"{stats.missing_modality[m]:,}"})
    for name, cell in rows.items():
        table.add_row(name, *(cell(modality) for modality in ("vision", "text")))
    console.print(table)
    console.print(f"Folder: {stats.folder}")
    if stats.catalogue_items is not None:
        console.print(f"Catalogue: {stats.catalogue_items:,} items ({settings.paths.processed_dir})")
    else:
        console.print(f"[dim]No processed catalogue at {settings.paths.processed_dir}: coverage not shown.")
    run = stats.last_run
    if run:
        copied = f" ({run['copied']:,} of them copied from other combos)" if run.get("copied") else ""
        console.print(f"Last run ({run.get('kind', '?')}, {run.get('at', '?')}): hits {run.get('hits', 0):,}, "
                      f"misses {run.get('misses', 0):,}{copied}, computed {run.get('computed', 0):,}, "
                      f"unreadable {run.get('failed', 0):,}")


@cache_app.command("clear")
def clear_command(
    ctx: typer.Context,
    combo: Annotated[str | None, typer.Argument(help="Combo to delete (see `mmrec cache list`).",
                                                autocompletion=_complete_combo)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Delete every combo cache.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOption = None,
) -> None:
    """Delete one combo cache, or all of them with --all (asks first unless --yes)."""
    from mmrec.errors import ConfigError
    from mmrec.pipeline.cache import clear_cache, clear_plan

    if (combo is None) == (not all_):
        raise ConfigError("Name one combo to clear, or pass --all (not both).",
                          hint="e.g. `mmrec cache clear efficientnet-lite_sentence-bert` or `mmrec cache clear --all`.")
    settings = state(ctx).settings(config)
    cache_dir: Path = settings.paths.cache_dir
    plan = clear_plan(cache_dir, None if all_ else combo)  # refuses a linked or absent combo up front
    _warn_refused(plan.refused, cache_dir)
    if not plan.removed:
        console.print(f"No feature caches to delete in {cache_dir}.")
        return
    if not yes and not confirm(f"Delete feature cache(s) {', '.join(plan.removed)} in {cache_dir}?"):
        console.print("Nothing deleted.")
        raise typer.Exit(code=1)
    result = clear_cache(cache_dir, None if all_ else combo)
    console.print(f"Deleted {len(result.removed)} feature cache(s): {', '.join(result.removed)}")
    if result.refused:
        console.print(f"[yellow]Not deleted: {', '.join(result.refused)} (symbolic links; remove them yourself).")


@cache_app.command("prune")
def prune_command(
    ctx: typer.Context,
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", "--dry_run",
                                          help="Count what would go; delete nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the configured combo's vectors that no catalogue item reads with this config: those of other
    backbone weights or token limits, of images and texts edited since, of items no longer in the catalogue."""
    from mmrec.pipeline.cache import prune_cache

    settings = state(ctx).settings(config)
    combo, stale, stored = prune_cache(settings, dry_run=True)
    what = f"{stale:,} of {stored:,} entries of {combo} are read by no catalogue item with this config"
    if not stale or dry_run:
        console.print(f"{what}{': nothing to delete' if not stale else ' (--dry-run: nothing deleted)'}.")
        return
    if not yes and not confirm(f"{what}. Delete them?"):
        console.print("Nothing deleted.")
        raise typer.Exit(code=1)
    combo, stale, stored = prune_cache(settings)
    console.print(f"Deleted {stale:,} of {stored:,} entries of {combo}.")


@cache_app.command("backbones")
def backbones_command(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Every registered backbone with its dimension and whether its weights are here (no download); the
    settings' two backbones are marked with * and looked up at their features.*_weights paths."""
    from mmrec.features.registry import backbone_availability

    features = state(ctx).settings(config).features
    table = Table(title="Backbones (* = selected by the settings)")
    for column in ("modality", "name", "dim", "weights here", "where / default source"):
        table.add_column(column, justify="right" if column == "dim" else "left")
    for row in backbone_availability(features):
        where = row.where if row.available or row.where.startswith("not found at") else row.default_weights
        table.add_row(row.modality, f"{row.name} *" if row.selected else row.name, str(row.dim or "from file"),
                      "[green]yes" if row.available else "[red]no", where)
    console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(cache_app, name="cache")
