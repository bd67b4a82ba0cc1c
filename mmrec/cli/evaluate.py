"""`mmrec evaluate`: score recommenders on the test split and print one comparison table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mmrec.cli.common import (
    RECOMMENDER_HELP,
    ConfigOption,
    RichProgress,
    complete_recommender,
    console,
    kept_on_interrupt,
    no_effect,
    print_model,
    print_notes,
    state,
)
from mmrec.errors import ConfigError
from mmrec.registry import RECOMMENDERS

_EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}


def parse_k_values(raw: list[str]) -> list[int] | None:
    """`--k 5 --k 10`, `--k "5 10 20"` or `--k 5,10` -> [5, 10, 20]; None when not given."""
    tokens = [t for value in raw for t in value.replace(",", " ").split()]
    if not tokens:
        if raw:  # --k '': the default cut-offs were used unsaid
            raise ConfigError("--k names no cut-off.", hint="e.g. --k 5 10 20, or leave --k out for the default.")
        return None
    if not all(t.isdigit() and int(t) > 0 for t in tokens):
        raise ConfigError(
            f"--k expects positive integers, got {' '.join(tokens)!r}.", hint="e.g. --k 5 10 20"
        )
    return sorted({int(t) for t in tokens})


def split_extra_args(extra: list[str]) -> tuple[list[str], list[str]]:
    """Words left after `--k 5 10 20` / `--recommender-type a b`: (k values, recommender names)."""
    ks, names = [], []
    for token in extra:
        if token.replace(",", "").isdigit():
            ks.append(token)
        elif token in RECOMMENDERS:
            names.append(token)
        else:
            raise ConfigError(f"Unexpected argument {token!r}.", hint="See `mmrec evaluate --help`.")
    return ks, names


def metrics_table(report, cold: bool = False) -> Table:
    """Rich table with one column per model and one row per metric (fits 80 columns for 5 models)."""
    columns = report.metric_columns(cold)
    if cold:
        users = max((m.n_cold_item_users for m in report.models), default=0)
        pairs = report.counts.get("test_cold_item_interactions", 0)
        n_cold = report.counts.get("catalogue_cold_items", 0)
        title = (f"Cold items (never seen in training), ranked among the {n_cold:,} cold items only: {pairs:,} test "
                 f"interaction(s) of {users:,} user(s)"
                 + (" -- too few to tell models apart" if pairs < 30 else ""))
    else:
        users = report.counts["test_users"]
        left = report.counts.get("test_users_without_new_items", 0)
        scored = users - left
        if report.task == "ranking":  # less users with too few items outside their own to draw negatives from
            scored = min(scored, max((m.n_users for m in report.models), default=scored))
        why = [f"{left:,} have no test item new to them"] if left else []
        if users - left > scored:
            why.append(f"{users - left - scored:,} have too few items outside their own to draw negatives from")
        title = f"{report.task}: {users:,} test users" + (f", {scored:,} scored ({'; '.join(why)})" if why else "")
    table = Table(title=title, header_style="bold")
    table.add_column("metric")
    for model in report.models:
        table.add_column(model.name, justify="right")
    values = [m.cold_item_metrics if cold else m.metrics for m in report.models]
    for column in columns:
        best = max(v.get(column, float("-inf")) for v in values)
        cells = []
        for v in values:
            value = v.get(column)
            text = "—" if value is None else f"{value:.4f}"
            cells.append(
                f"[bold green]{text}" if value is not None and value == best and len(values) > 1 else text
            )
        table.add_row(column, *cells)
    if not cold:
        table.add_row("users/s", *(f"{m.users_per_second:,.0f}" for m in report.models), style="dim")
    return table


def comparisons_table(report) -> Table | None:
    """The first model against each other one, paired per user (EvaluationReport.comparisons); None if none."""
    from mmrec.evaluation.report import format_p

    comparisons = report.comparisons()
    if not comparisons:
        return None
    first = comparisons[0]
    table = Table(title=f"{first['model']} minus each other model, paired over the same {first['users']:,} users "
                        "(95% CI; p < 0.05: a difference beyond chance)", header_style="bold")
    for column in ("other model", "metric", "difference", "95% CI", "p"):
        table.add_column(column, justify="left" if column in ("other model", "metric") else "right")
    for c in comparisons:
        style = "" if c["p_value"] < 0.05 else "dim"
        table.add_row(c["baseline"], c["metric"], f"{c['difference']:+.4f}",
                      f"{c['ci_low']:+.4f} to {c['ci_high']:+.4f}", format_p(c["p_value"]), style=style)
    return table


def print_report(report, progress: RichProgress | None = None) -> None:
    console.print(metrics_table(report))
    if any(m.cold_item_metrics for m in report.models):
        console.print(metrics_table(report, cold=True))
    if (table := comparisons_table(report)) is not None:
        console.print(table)
    print_notes(report.notes, progress)
    for name, checkpoint in report.checkpoints.items():
        print_model(checkpoint, console, name)
    plots = [p for name, p in report.files.items() if str(p).endswith(".png")]
    for name, path in report.files.items():
        if not str(path).endswith(".png"):
            console.print(f"[dim]{name}:[/dim] {path}")
    if plots:
        console.print(f"[dim]plots:[/dim] {len(plots)} PNG files in {plots[0].parent}")


def evaluate(
    ctx: typer.Context,
    config: ConfigOption = None,
    test_data: Annotated[
        Path | None,
        typer.Option(
            "--test-data", "--test_data", help="Test interactions CSV/parquet (default: the test split), read as "
            "preprocess reads interactions: data.*_column names, data.positive_rating_threshold."
        ),
    ] = None,
    train_data: Annotated[
        Path | None,
        typer.Option(
            "--train-data",
            "--train_data",
            help="Training interactions CSV/parquet (default: the train split).",
        ),
    ] = None,
    with_val: Annotated[
        bool,
        typer.Option(
            "--with-val", "--with_val",
            help="Score the test users from the split's train and validation rows (every model; the multimodal "
                 "network keeps its trained weights): a split by time's latest interactions, as serving has them.",
        ),
    ] = False,
    eval_task: Annotated[
        str | None,
        typer.Option(
            "--eval-task", "--eval_task", help="retrieval (full ranking) or ranking (sampled negatives)."
        ),
    ] = None,
    recommender_type: Annotated[
        list[str] | None,
        typer.Option(
            "--recommender-type", "--recommender_type", help=f"{RECOMMENDER_HELP}; repeatable.",
            autocompletion=complete_recommender,
        ),
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Evaluate every registered recommender in one table.")
    ] = False,
    checkpoint_name: Annotated[
        str | None,
        typer.Option(
            "--checkpoint-name", "--checkpoint_name", help="Checkpoint file of the multimodal model."
        ),
    ] = None,
    use_sampling: Annotated[
        bool,
        typer.Option(
            "--use-sampling",
            "--use_sampling",
            help="Also report sampled-negative metrics (labelled sampled_*).",
        ),
    ] = False,
    num_negatives: Annotated[
        int | None,
        typer.Option("--num-negatives", "--num_negatives", help="Sampled negatives per test positive."),
    ] = None,
    sampling_strategy: Annotated[
        str | None,
        typer.Option("--sampling-strategy", "--sampling_strategy", help="random or popularity negatives."),
    ] = None,
    save_predictions: Annotated[
        Path | None,
        typer.Option(
            "--save-predictions", "--save_predictions",
            help="Write top-K per user (.json or .csv); with sampled metrics also F.negatives.json|csv, the "
            "negatives every model ranked each test positive against."
        ),
    ] = None,
    warmup_recommender_cache: Annotated[
        bool,
        typer.Option(
            "--warmup-recommender-cache",
            "--warmup_recommender_cache",
            help="Precompute item vectors/features before timing.",
        ),
    ] = False,
    use_parallel: Annotated[
        bool,
        typer.Option(
            "--use-parallel", "--use_parallel", help="Evaluate the recommenders in parallel threads."
        ),
    ] = False,
    num_workers: Annotated[
        int | None,
        typer.Option("--num-workers", "--num_workers", min=1, help="Threads for --use-parallel (default 2)."),
    ] = None,
    k: Annotated[
        list[str] | None, typer.Option("--k", help="Cut-offs: --k 5 10 20, --k 5 --k 10 or --k '5 10'.")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = None,
) -> None:
    """Evaluate recommenders on the held-out split (full ranking by default) and write results/."""

    extra_k, extra_names = split_extra_args(ctx.args)
    k_values = parse_k_values((k or []) + extra_k)
    named = list(recommender_type or []) + extra_names
    # --compare: every registered recommender, the named ones first (the first is compared with each other one).
    names = list(dict.fromkeys(named + list(RECOMMENDERS))) if compare else named or ["multimodal"]
    overrides = {
        "evaluation.eval_task": eval_task,
        "evaluation.num_negatives": num_negatives,
        "evaluation.sampling_strategy": sampling_strategy,
        "evaluation.k_values": k_values,
        "evaluation.device": device,
        "inference.checkpoint_name": checkpoint_name,
    }
    settings = state(ctx).settings(config, overrides)
    sampled = use_sampling or settings.evaluation.eval_task == "ranking"
    for option, given in (("--num-negatives", num_negatives), ("--sampling-strategy", sampling_strategy)):
        if given is not None and not sampled:
            raise no_effect(option, "metrics rank the whole catalogue, no sampled negatives",
                            "Add --use-sampling (or --eval-task ranking)")
    if num_workers is not None and not use_parallel:
        raise no_effect("--num-workers", "the recommenders are evaluated one after the other", "Add --use-parallel")
    if checkpoint_name is not None and "multimodal" not in names:
        raise no_effect("--checkpoint-name", "only the multimodal model reads a checkpoint",
                        "Add multimodal to --recommender-type")
    if save_predictions is not None:
        state(ctx).output_file(save_predictions, "--save-predictions",  # before any work, not after it
                               (test_data, "the --test-data"), (train_data, "the --train-data"))
    from mmrec.evaluation.report import REPORT_FILES

    results_dir = Path(settings.paths.results_dir)
    kept = (f"{results_dir} holds the previous evaluation as it was (an evaluation's files are written together at "
            "the end)" if (results_dir / REPORT_FILES[0]).is_file() else f"nothing was written to {results_dir}")
    with kept_on_interrupt(f"Evaluation was interrupted: {kept}.",
                           "Run the same command again."), RichProgress(transient=True) as progress:
        from mmrec.pipeline.evaluate import run_evaluate
        report = run_evaluate(
            settings,
            names,
            test_data=test_data,
            train_data=train_data,
            with_val=with_val,
            checkpoint_name=checkpoint_name,
            use_sampling=use_sampling,
            save_predictions=save_predictions,
            warmup_recommender_cache=warmup_recommender_cache,
            use_parallel=use_parallel,
            num_workers=num_workers or 2,
            progress=progress,
        )
    print_report(report, progress)


def register(root: typer.Typer) -> None:
    root.command("evaluate", context_settings=_EXTRA_ARGS)(evaluate)
