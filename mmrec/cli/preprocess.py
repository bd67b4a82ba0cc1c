"""`mmrec preprocess`: clean the raw inputs into processed tables, print the report, then cache features."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from mmrec.cli.common import (ConfigOption, RichProgress, cache_interrupted, console, kept_on_interrupt, print_notes,
                              shown, state)
from mmrec.errors import BusyError


def render_report(report: dict[str, Any], skipped: bool) -> Table:
    """One table: items, images by status, text, numeric imputations, interactions dropped by reason."""
    from mmrec.data.images import IMAGE_STATUSES  # PIL and numpy: imported only when a report is shown

    table = Table(title="Preprocess report" + (" (unchanged, from the last run)" if skipped else ""))
    table.add_column("section")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("examples", overflow="fold", max_width=60)
    items = report["items"]
    table.add_row("items", "rows in item_info", f"{items['input_rows']:,}", "")
    for reason, count in items["dropped"].items():
        table.add_row(
            "items", f"dropped: {reason}", f"{count:,}", shown(", ".join(items["examples"].get(reason, [])))
        )
    table.add_row("items", "kept", f"{items['kept']:,}", "")
    table.add_row("items", "without interactions (cold)", f"{items['without_interactions']:,}", "")
    images = report["images"]
    no_folder = images.get("folder_exists") is False and not images.get("ok")  # one note, no advice per item id
    for status in IMAGE_STATUSES:
        if images.get(status) or status == "ok":
            style = "" if status == "ok" else "[yellow]"
            table.add_row(
                "images",
                f"{style}{status}",
                f"{images[status]:,}",
                "no images folder (note below)" if no_folder and status == "missing" else
                shown(_missing_kinds(images) * (status == "missing")
                       + "; ".join(images["examples"].get(status, [])[:3])),
            )
    if images.get("reused"):
        table.add_row("images", "ok: unchanged since the last run (kept)", f"{images['reused']:,}", "")
    if images.get("images_per_s") and not no_folder:
        table.add_row(
            "images", f"speed ({images['workers']} workers)", f"{images['images_per_s']:,.0f}/s", ""
        )
    for key, count in items["text"].items():
        table.add_row("text", key.replace("_", " "), f"{count:,}", "")
    for column, info in items["numeric"].items():
        if info.get("formatted"):
            table.add_row("numeric", f"{shown(column)}: read as numbers (K/M/B, 1,234, $12.99)",
                          f"{info['formatted']:,}", shown(", ".join(info["formatted_examples"])))
        found = ", ".join(f"{k}={info[k]}" for k in ("non_numeric", "missing", "infinite", "negative",
                                                      "placeholder_zeros") if info.get(k))
        if info.get("far_above"):  # capped, not imputed: its own row
            table.add_row("numeric", f"{shown(column)}: capped (far above every other value)",
                          f"{info['far_above']:,}", f"at {info['far_above_cap']:g}")
        if info.get("no_information"):
            if info.get("constant") is not None:
                found = ", ".join([f"every valid value {info['constant']:g}", *([found] if found else [])])
            table.add_row("numeric", f"[yellow]{shown(column)}: left out, carries no information ({found})",
                          f"{items['kept']:,}", "")
            continue
        if not found and info.get("far_above"):  # the capped row says it: not "all valid"
            continue
        table.add_row(
            "numeric",
            f"{shown(column)}: imputed ({found})" if found else f"{shown(column)}: all valid",
            f"{info['imputed']:,}" if found else f"{items['kept']:,}",  # the count of what the row says
            (f"fill={info['fill_value']:g}" if found else "")
            + shown(f"; ids {', '.join(info['examples'])}" if info["examples"] else ""),
        )
    for column, info in (items.get("categories") or {}).items():
        table.add_row("categories", f"{shown(column)}: items with a value", f"{info['items_with_value']:,}",
                      f"{info['distinct_values']:,} distinct values, {info['shared_values']:,} held by 2+ items")
    inter = report["interactions"]
    table.add_row("interactions", "rows in interactions", f"{inter['input_rows']:,}", "")
    ratings = inter.get("ratings") or {}
    if ratings:  # every value read, so one off the scale (a 0 or a 6 on 1-5) is seen
        if "min" in ratings:  # many distinct values: their range
            table.add_row("interactions", "rating values read (range)", "",
                          f"from {ratings['min']:g} to {ratings['max']:g}")
        else:
            table.add_row("interactions", "rating values read (value: rows)", "",
                          ", ".join(f"{value}: {count:,}" for value, count in ratings.items()))
    for reason, count in inter["dropped"].items():
        table.add_row(
            "interactions", f"dropped: {reason}", f"{count:,}", shown(", ".join(inter["examples"].get(reason, [])))
        )
    table.add_row("interactions", "kept", f"{inter['kept']:,}", "")
    table.add_row("interactions", "users / items", f"{inter['users']:,} / {inter['items']:,}", "")
    return table


def preprocess(
    ctx: typer.Context,
    config: ConfigOption = None,
    skip_caching: Annotated[
        bool,
        typer.Option(
            "--skip-caching", "--skip_caching", help="Do not precompute backbone features afterwards."
        ),
    ] = False,
    force_reprocess: Annotated[
        bool,
        typer.Option(
            "--force-reprocess", "--force_reprocess", help="Redo everything even if the inputs are unchanged."
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, help="Image worker processes (preprocess.num_workers)."),
    ] = None,
) -> None:
    """Verify images, clean text/numbers/interactions, write processed tables and a report."""
    from mmrec.pipeline.preprocess import run_preprocess

    settings = state(ctx).settings(config, {"preprocess.num_workers": workers})
    with kept_on_interrupt(f"Preprocessing was interrupted: {settings.paths.processed_dir} is as it was before this "
                           "run (the new tables are built aside and swapped in at the end).",
                           "Run the same command again."), RichProgress() as progress:
        result = run_preprocess(settings, force=force_reprocess, progress=progress)
    console.print(render_report(result.report, result.skipped))
    print_notes([*result.report["items"].get("notes", []), *result.report["interactions"].get("notes", [])])
    images = result.report["images"]
    if images.get("folder_exists") is False:
        console.print(f"[yellow]There is no images folder at {images['folder']}: every item counts as lacking its "
                      "image. If the images are elsewhere, set data.images_subdir (relative to paths.data_dir); a "
                      "catalogue without images needs nothing (the model reads its text and metadata).")
    if result.skipped:
        console.print(
            "[cyan]Inputs unchanged since the last run: nothing redone[/cyan] (use --force-reprocess)."
        )
    console.print(
        f"Processed tables and report in [bold]{result.processed_dir}[/bold] ({result.seconds:.1f}s)"
    )
    if skip_caching:
        console.print("[dim]Feature caching skipped (--skip-caching).[/dim]")
        return
    from mmrec.pipeline.cache import run_cache_precompute  # the features layer; imported only when caching

    try:
        with kept_on_interrupt(*cache_interrupted(settings, config or state(ctx).config)), RichProgress() as progress:
            cached = run_cache_precompute(settings, progress=progress)
    except BusyError as busy:  # the tables are done; the other run fills the same store
        console.print(f"[yellow]Feature caching skipped: {busy.message} Its vectors serve this catalogue; run `mmrec "
                      "cache precompute` after it ends for any it lacks (it computes only those).")
        return
    report = cached.report
    counts = ", ".join(
        f"{m}: {report.computed.get(m, 0):,} computed / {report.already_cached.get(m, 0):,} cached"
        f" / {report.failed.get(m, 0):,} unreadable" if count else f"{m}: no item has it"
        for m, count in report.with_content.items()  # the modalities the model reads
    )
    console.print(
        f"Feature store {report.combo}: {counts} ({report.seconds:.1f}s) in [bold]{cached.cache_folder}"
    )
    from mmrec.cli.cache import print_import_gaps

    print_import_gaps(report)


def register(root: typer.Typer) -> None:
    root.command("preprocess")(preprocess)


_KIND_LABELS = {"not_found": "file not found", "folder": "a folder", "blank": "none named (blank cell)",
                "url": "URL (not downloaded)", "bad_id": "id is no file name", "unsupported_type": "file type not read"}


def _missing_kinds(images: dict) -> str:
    """'file not found 33, URL (not downloaded) 150: ' when the missing images are missing in more than one way."""
    kinds = images.get("missing_kinds") or {}
    if len(kinds) < 2:
        return ""
    return ", ".join(f"{_KIND_LABELS.get(kind, kind)} {count:,}" for kind, count in kinds.items()) + ": "
