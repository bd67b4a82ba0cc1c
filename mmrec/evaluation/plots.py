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


def write_plots(report: EvaluationReport, results_dir: Path) -> dict[str, Path]:
    """metrics_at_k.png plus bar_<metric>.png (and cold_bar_<metric>.png) under results_dir. A plot of this
    family that an earlier evaluation wrote and this one does not (another task, other models) is removed, so
    the folder's plots always match its evaluation.json."""
    results_dir = Path(results_dir)
    plots = {"curves": (lambda path: plot_curves(report, path), "metrics_at_k.png")}
    for metric in (*TOPK_METRICS, "mrr", "sampled_auc", "sampled_ndcg", "sampled_hit_rate"):
        plots[f"bar_{metric}"] = (lambda path, metric=metric: plot_bars(report, metric, path), f"bar_{metric}.png")
    for metric in ("ndcg", "recall"):
        plots[f"cold_bar_{metric}"] = (lambda path, metric=metric: plot_bars(report, metric, path, cold=True),
                                       f"cold_bar_{metric}.png")
    written: dict[str, Path] = {}
    for name, (plot, file_name) in plots.items():
        path = plot(results_dir / file_name)
        if path:
            written[name] = path
        else:
            (results_dir / file_name).unlink(missing_ok=True)
    return written
