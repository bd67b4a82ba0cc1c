"""PNG plots of an evaluation report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mmrec.evaluation.report import TOPK_METRICS, EvaluationReport
from mmrec.fileio import atomic_path


def _save(figure: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def plot_curves(report: EvaluationReport, path: Path) -> Path | None:
    """One panel per metric: metric@K against K, one line per model."""
    metrics = [
        m
        for m in TOPK_METRICS
        if any(f"{m}@{k}" in r.metrics for r in report.models for k in report.k_values)
    ]
    if not metrics:
        return None
    figure, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for model in report.models:
            axis.plot(
                report.k_values,
                [model.metrics.get(f"{metric}@{k}", np.nan) for k in report.k_values],
                marker="o",
                label=model.name,
            )
        axis.set_title(f"{metric}@K")
        axis.set_xlabel("K")
        axis.set_xticks(report.k_values)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"{report.task}: full ranking over {report.counts.get('catalogue_items', '?')} items")
    figure.tight_layout()  # keeps the title clear of the panels' titles
    return _save(figure, path)


def plot_bars(report: EvaluationReport, metric: str, path: Path, cold: bool = False) -> Path | None:
    """Grouped bars: one group per model, one bar per K (or a single bar for mrr / sampled_auc)."""
    columns = [c for c in report.metric_columns(cold) if c == metric or c.startswith(f"{metric}@")]
    if not columns:
        return None
    figure, axis = plt.subplots(figsize=(1.6 + 1.3 * len(report.models), 3.4))
    width = 0.8 / len(columns)
    x = np.arange(len(report.models))
    for i, column in enumerate(columns):
        values = [(m.cold_item_metrics if cold else m.metrics).get(column, 0.0) for m in report.models]
        axis.bar(x + i * width - 0.4 + width / 2, values, width, label=column)
    axis.set_xticks(x, [m.name for m in report.models], rotation=20)
    axis.set_title(("cold items: " if cold else "") + metric)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


BAR_METRICS = (*TOPK_METRICS, "mrr", "sampled_auc", "sampled_ndcg", "sampled_hit_rate")
COLD_BAR_METRICS = ("ndcg", "recall")


def plot_files() -> dict[str, str]:
    """Every plot an evaluation can write: name -> file name (what an earlier evaluation may have left)."""
    return {"curves": "metrics_at_k.png", **{f"bar_{m}": f"bar_{m}.png" for m in BAR_METRICS},
            **{f"cold_bar_{m}": f"cold_bar_{m}.png" for m in COLD_BAR_METRICS}}


def write_plots(report: EvaluationReport, results_dir: Path) -> dict[str, Path]:
    """metrics_at_k.png plus bar_<metric>.png (and cold_bar_<metric>.png) under results_dir, those the report has
    values for (evaluate writes them into a staging folder: `staged_files` removes an earlier evaluation's others)."""
    results_dir = Path(results_dir)
    plots = {"curves": lambda path: plot_curves(report, path)}
    plots |= {f"bar_{m}": lambda path, m=m: plot_bars(report, m, path) for m in BAR_METRICS}
    plots |= {f"cold_bar_{m}": lambda path, m=m: plot_bars(report, m, path, cold=True) for m in COLD_BAR_METRICS}
    written: dict[str, Path] = {}
    for name, file_name in plot_files().items():
        if path := plots[name](results_dir / file_name):
            written[name] = path
    return written
