"""`mmrec recommend`: top-K recommendations for users, optionally diversified, as a table and JSON."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mmrec.cli.common import (
    RECOMMENDER_HELP,
    ConfigOption,
    RichProgress,
    complete_recommender,
    console,
    err_console,
    kept_on_interrupt,
    no_effect,
    print_json_data,
    print_model,
    print_notes,
    shown,
    state,
)
from mmrec.errors import ConfigError


def _reason_text(reason: dict) -> str:
    """The reason's sentence ("because you liked ..."), else its facts as key=value."""
    if "why" in reason:
        return str(reason["why"])
    parts = [f"{k}={v}" for k, v in reason.items() if k != "source"]
    return "; ".join(parts) or reason.get("source", "")


def print_result(result, to: Console | None = None) -> None:
    """The lists as tables, then diversity and notes, on `to` (default stdout; stderr when stdout holds JSON)."""
    to = to or console
    for user in result.users:
        title = f"user {shown(user.user_id)}" + (f" [yellow](fallback: {user.fallback})" if user.fallback else "")
        if user.diversity_before is not None:
            title += f"  diversity {user.diversity_before:.3f} -> {user.diversity_after:.3f}"
        table = Table(title=title, header_style="bold", title_justify="left")
        for name, justify in (
            ("#", "right"),
            ("item", "left"),
            ("title", "left"),
            ("score", "right"),
            ("reason", "left"),
        ):
            table.add_column(name, justify=justify, overflow="fold")
        for item in user.items:
            table.add_row(
                str(item["rank"]),
                shown(item["item_id"]) + (" [cyan](new)" if item.get("new") else ""),
                shown(item["title"]),
                f"{item['score']:.4f}",
                shown(_reason_text(item["reason"])),
            )
        to.print(table)
    if result.diversity_lambda is not None:
        lists = [u for u in result.users if u.diversity_before is not None]
        # Float noise (a reordered list of the same items differs by ~1e-8 in its sum) is not a more diverse list.
        raised = sum(u.diversity_after > u.diversity_before + 1e-6 for u in lists)
        changes = Counter(u.mmr_change for u in lists if u.diversity_after <= u.diversity_before + 1e-6)
        kept = "".join(f"; {changes[change]} {text}" for change, text in (
            ("reordered", "with the same items in MMR's order (no more diverse set found)"),
            ("other items", "with other items of the same diversity"),
            ("unchanged", "kept as ranked: MMR found no more diverse list for them")) if changes[change])
        to.print(
            f"mean intra-list diversity (0-2; 1 = unrelated): {result.mean_diversity('before'):.3f} -> "
            f"{result.mean_diversity('after'):.3f} (MMR lambda={result.diversity_lambda}: {raised} of {len(lists)} "
            f"list(s) more diverse{kept}; lists are in MMR order, so a lower score can rank above a higher one)"
        )
    print_notes(result.notes, to=to)
    print_model(result.checkpoint, to)
    if result.output:
        to.print(f"[dim]recommendations:[/dim] {result.output}")


def recommend(
    ctx: typer.Context,
    config: ConfigOption = None,
    users: Annotated[
        list[str] | None, typer.Option("--users", "--user", help="User ids: --users u1 u2 or repeated.")
    ] = None,
    user_file: Annotated[
        Path | None, typer.Option(
            "--user-file", "--user_file",
            help="File with one user id per line (# comment lines and a user_id header line are skipped), or "
                 "a table (CSV/TSV) whose header names its user_id column.")
    ] = None,
    sample_users: Annotated[
        int | None,
        typer.Option(
            "--sample-users", "--sample_users", min=1, help="Recommend for N random known users (seeded)."
        ),
    ] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", "--top_k", "--k", min=1, help="Items per user.")] = None,
    include_seen: Annotated[
        bool,
        typer.Option(
            "--include-seen", "--include_seen", help="Allow items the user already interacted with."
        ),
    ] = False,
    use_diversity: Annotated[
        bool,
        typer.Option(
            "--use-diversity", "--use_diversity", help="Re-rank with maximal marginal relevance (MMR)."
        ),
    ] = False,
    diversity_lambda: Annotated[
        float | None,
        typer.Option(
            "--diversity-lambda",
            "--diversity_lambda",
            help="MMR trade-off: 1 = relevance only, 0 = diversity only.",
        ),
    ] = None,
    recommender_type: Annotated[
        str,
        typer.Option(
            "--recommender-type", "--recommender_type", help=f"{RECOMMENDER_HELP}.",
            autocompletion=complete_recommender,
        ),
    ] = "multimodal",
    checkpoint_name: Annotated[
        str | None,
        typer.Option(
            "--checkpoint-name", "--checkpoint_name", help="Checkpoint file of the multimodal model."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o",
            help="Write the recommendations here: JSON, or a parquet table when the name ends in .parquet "
            "(batch mode, as with --all-users); '-' writes the JSON to stdout (tables and notes go to stderr).",
        ),
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = None,
    all_users: Annotated[
        bool,
        typer.Option(
            "--all-users", "--all_users",
            help="Batch mode: every user with an interaction, streamed in chunks of evaluation.batch_size "
            "users into --output F.parquet (user_id, rank, item_id, score, fallback). Reasons and diversity are "
            "not computed in batch mode.",
        ),
    ] = False,
    ann: Annotated[
        str | None,
        typer.Option(
            "--ann",
            help="Approximate candidates from a faiss index over the two-tower item vectors: faiss_ivf, "
            "faiss_hnsw or none (needs faiss-cpu, the `ann` extra). Candidates get the exact (blended) score.",
        ),
    ] = None,
    new_items: Annotated[
        int | None,
        typer.Option(
            "--new-items", "--new_items", min=0,
            help="Keep N places of each list for items no interaction names yet (new items), the best-scored "
            "for that user; they take the last places when they do not rank higher on their own (flagged `new`). "
            "Needs the multimodal recommender: the interaction-only baselines cannot tell new items apart.",
        ),
    ] = None,
    unknown_users: Annotated[
        str | None,
        typer.Option(
            "--unknown-users", "--unknown_users",
            help="Requested users with no interaction: auto (default) serves them the flagged fallback list but "
            "exits 2 when no requested user is known (wrong ids, or the wrong -c); fallback always serves it (a "
            "service's new visitors); error exits 2 for any unknown one.",
        ),
    ] = None,
    ann_check: Annotated[
        int,
        typer.Option(
            "--ann-check", "--ann_check", min=0,
            help="Batch mode with --ann: report recall@K of the approximate lists against exact ones on N "
            "sampled users.",
        ),
    ] = 0,
) -> None:
    """Recommend items to users (unknown users get a flagged popularity fallback; none known: exit 2).

    --all-users (or an --output ending in .parquet) writes a parquet table in bounded memory; reasons
    and MMR diversity are omitted there.
    """

    # `--users u1 u2 u3`: click leaves u2 u3 as extra arguments; they are more user ids.
    all_users_list = list(users or []) + [a for a in ctx.args]
    overrides = {
        "inference.top_k": top_k,
        "inference.exclude_seen": False if include_seen else None,
        "inference.use_diversity": True if use_diversity else None,
        "inference.diversity_lambda": diversity_lambda,
        "inference.checkpoint_name": checkpoint_name,
        "inference.device": device,
        "inference.ann": ann,
        "inference.new_items": new_items,
        "inference.unknown_users": unknown_users,
    }
    settings = state(ctx).settings(config, overrides)
    if checkpoint_name is not None and recommender_type != "multimodal":
        raise no_effect(f"--checkpoint-name {checkpoint_name}",
                        f"only the multimodal model reads a checkpoint, not {recommender_type}",
                        "Use --recommender-type multimodal")
    if diversity_lambda is not None and not settings.inference.use_diversity:
        raise no_effect(f"--diversity-lambda {diversity_lambda:g}", "MMR re-ranking is off",
                        "Add --use-diversity (or set inference.use_diversity: true)")
    if output is not None and str(output) != "-":  # before any work, not after it
        state(ctx).output_file(output, "--output", (user_file, "the --user-file"))
    if all_users or (output is not None and output.suffix.lower() == ".parquet"):
        _batch(settings, output, all_users, all_users_list, user_file, sample_users, recommender_type, ann_check)
        return
    if ann_check:
        raise ConfigError("--ann-check runs in batch mode only.",
                          hint="Add --all-users (or an --output ending in .parquet).")
    to_stdout = output is not None and str(output) == "-"  # the JSON on stdout, for a pipe; the tables on stderr
    if to_stdout:
        output = None
    if output is not None:
        if output.suffix.lower() in (".csv", ".jsonl", ".tsv", ".txt"):
            raise ConfigError(f"--output {output}: per-user recommendations are written as JSON (with reasons), "
                              f"not {output.suffix}.",
                              hint="End the file name in .json, or use .parquet (with --all-users for everyone) "
                              "for a table of user_id, rank, item_id, score, fallback.")
    with kept_on_interrupt(_unwritten(None if to_stdout else output), "Run the same command again."), \
            RichProgress(err_console if to_stdout else None, transient=True) as progress:
        from mmrec.pipeline.recommend import run_recommend
        result = run_recommend(
            settings, all_users_list, user_file, sample_users, recommender_type, output, progress
        )
    written = (f"The recommendations are written to {result.output}; only their display was cut short."
               if result.output else "Nothing was written (no --output).")
    with kept_on_interrupt(written, "Read the file, or run the same command again."
                           if result.output else "Run the same command again."):
        if to_stdout:
            print_json_data(result.to_dict())
        print_result(result, err_console if to_stdout else console)


def _unwritten(output: Path | None) -> str:
    """What an interrupted recommend leaves: nothing written, an earlier output file as it was."""
    return "Recommending was interrupted: " + (f"{output} is as it was before this run (it is written in one step at "
                                               "the end)." if output is not None else "nothing was written.")


def _batch(settings, output, all_users, users, user_file, sample_users, recommender_type, ann_check) -> None:
    """Batch mode: parquet output, a one-line summary instead of per-user tables."""
    from mmrec.pipeline.batch_recommend import check_batch_output, run_batch_recommend

    if output is None:
        raise ConfigError("--all-users writes a parquet table and needs --output.",
                          hint="Pass --output recs.parquet.")
    check_batch_output(output)  # before any work, not after it
    with kept_on_interrupt(_unwritten(output), "Run the same command again."), \
            RichProgress(transient=True) as progress:
        result = run_batch_recommend(settings, output, all_users, users, user_file, sample_users,
                                     recommender_type, ann_check, progress)
    console.print(f"{result.n_rows:,} recommendations for {result.n_users:,} users (top {result.top_k}, "
                  f"{result.recommender}, {result.chunk_users:,} users per chunk"
                  + (f", candidates from {result.ann}" if result.ann else "") + ")")
    if result.ann_recall is not None:
        console.print(f"{result.ann} recall@{result.top_k} against exact scoring: {result.ann_recall:.4f} "
                      f"over {result.ann_check_users} sampled users")
    print_notes(result.notes, progress)
    print_model(result.checkpoint, console)
    console.print(f"[dim]recommendations:[/dim] {result.output}")


def register(root: typer.Typer) -> None:
    root.command("recommend", context_settings={"allow_extra_args": True})(recommend)
