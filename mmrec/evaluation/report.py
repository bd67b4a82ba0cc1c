"""The evaluation report: one table of every model on the same split, as JSON and markdown."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmrec.evaluation.evaluator import ModelEvaluation
from mmrec.evaluation.metrics import paired_difference
from mmrec.fileio import atomic_write_json, atomic_write_text, read_json
from mmrec.provenance import package_versions

TOPK_METRICS = ("precision", "recall", "ndcg", "hit_rate")
SAMPLED_NOTE = (
    "sampled_* metrics rank each test positive among sampled negatives only; they are not "
    "comparable to full-ranking metrics."
)


REPORT_FILES = ("evaluation.json", "evaluation.md")  # the index first: what readers open

@dataclass
class EvaluationReport:
    """What `mmrec evaluate` measured, plus where it wrote files."""

    task: str
    k_values: list[int]
    models: list[ModelEvaluation]
    counts: dict[str, int]
    sources: dict[str, str] = field(default_factory=dict)  # which train/test/val files were used
    device: str = "cpu"
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # model -> the checkpoint it was loaded from (mmrec.checkpoints.store.checkpoint_provenance)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what draws at random (evaluation.seed: the random baseline, and the ranking task's negatives, whose number and
    # sampling strategy are here too), so that the figures can be reproduced from the outputs
    protocol: dict[str, Any] = field(default_factory=dict)

    def metric_columns(self, cold: bool = False) -> list[str]:
        """Metric names in display order (only those some model reported)."""
        present = {name for m in self.models for name in (m.cold_item_metrics if cold else m.metrics)}
        order = [f"{metric}@{k}" for metric in TOPK_METRICS for k in self.k_values] + ["mrr"]
        order += [f"coverage@{k}" for k in self.k_values] + ["sampled_auc"]
        order += [f"sampled_{metric}@{k}" for metric in ("hit_rate", "ndcg") for k in self.k_values]
        return [name for name in order if name in present]

    def compared_metrics(self) -> list[str]:
        """The metrics `comparisons` pairs: NDCG and recall at 10 (at the largest K when 10 is not among them)."""
        k = 10 if 10 in self.k_values else max(self.k_values, default=10)
        return [f"ndcg@{k}", f"recall@{k}"]

    def comparisons(self) -> list[dict[str, Any]]:
        """The first model against each other one, per user: for each of `compared_metrics`, the mean paired
        difference (first minus other), its 95% confidence interval and p-value (`paired_difference`). Empty
        with one model, or without per-user values (the ranking task)."""
        first, others = (self.models[0], self.models[1:]) if self.models else (None, [])
        rows = []
        for other in others:
            if first.topk_rows is None or other.topk_rows is None or not np.array_equal(first.topk_rows,
                                                                                          other.topk_rows):
                continue
            for metric in self.compared_metrics():
                if metric in first.per_user and metric in other.per_user:
                    rows.append({"model": first.name, "baseline": other.name, "metric": metric,
                                 **paired_difference(first.per_user[metric], other.per_user[metric])})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "k_values": self.k_values,
            "protocol": self.protocol,
            "device": self.device,
            "sources": self.sources,
            "checkpoints": self.checkpoints,
            "counts": self.counts,
            "notes": self.notes,
            "comparisons": self.comparisons(),
            "models": {
                m.name: {
                    "metrics": m.metrics,
                    "cold_item_metrics": m.cold_item_metrics,
                    "n_users": m.n_users,
                    "n_cold_item_users": m.n_cold_item_users,
                    "fallback_users": m.fallback_users,
                    "fit_seconds": round(m.fit_seconds, 3),
                    "eval_seconds": round(m.eval_seconds, 3),
                    "users_per_second": round(m.users_per_second, 1),
                }
                for m in self.models
            },
            "versions": package_versions(),
        }


def markdown_table(report: EvaluationReport, cold: bool = False) -> str:
    """A GitHub markdown table: one row per model, best value per column in bold."""
    columns = report.metric_columns(cold)
    if not columns:
        return ""
    rows = [(m.name, m.cold_item_metrics if cold else m.metrics) for m in report.models]
    best = {c: max(values.get(c, float("-inf")) for _, values in rows) for c in columns}
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for name, values in rows:
        cells = []
        for c in columns:
            value = values.get(c)
            text = "—" if value is None else f"{value:.4f}"
            cells.append(f"**{text}**" if value is not None and value == best[c] and len(rows) > 1 else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(report: EvaluationReport) -> str:
    parts = [f"# Evaluation ({report.task})", ""]
    parts += [f"- {key}: {value}" for key, value in report.counts.items()]
    parts += [f"- {key}: {value}" for key, value in report.protocol.items()]
    named = {"fit_also": "also fitted on (--with-val)", "masked": "masked (validation)"}
    parts += [f"- {named.get(key, f'{key} data')}: {value}" for key, value in report.sources.items()]
    parts += [f"- {name} checkpoint: {c['path']} (epoch {c['epoch']}, written {c['created_at']}, sha256 "
              f"{str(c['sha256'])[:12]}{'' if c['finished'] else ', its training run had not finished'}"
              f"{', serves ' + c['serves'] if c.get('serves') else ''})"
              for name, c in report.checkpoints.items()]
    parts += ["", markdown_table(report)]
    cold = markdown_table(report, cold=True)
    if cold:
        parts += [
            "",
            "## Cold items (test items never seen in training, ranked among cold items only)",
            "",
            cold,
        ]
    if comparisons := report.comparisons():
        first = comparisons[0]
        parts += ["", f"## {first['model']} against each other model, paired over the same {first['users']:,} users",
                  "", "| other model | metric | difference | 95% CI | p |", "|---|---|---:|---|---:|"]
        parts += [f"| {c['baseline']} | {c['metric']} | {c['difference']:+.4f} | {c['ci_low']:+.4f} to "
                  f"{c['ci_high']:+.4f} | {format_p(c['p_value'])} |" for c in comparisons]
    parts += [""] + [f"> {note}" for note in report.notes]
    timing = [
        f"| {m.name} | {m.fit_seconds:.2f} | {m.eval_seconds:.2f} | {m.users_per_second:,.0f} |"
        for m in report.models
    ]
    parts += ["", "| model | fit s | eval s | users/s |", "|---|---:|---:|---:|", *timing, ""]
    return "\n".join(parts)


def format_p(p_value: float) -> str:
    """A p-value as read at a glance, two significant digits: 0.031, 0.25, 1.3e-03, 4.2e-05, < 1e-12 (a larger p
    never reads smaller than its neighbour: 0.00126 was "0.001" beside 0.00098's "9.8e-04")."""
    if p_value < 1e-12:
        return "< 1e-12"
    return f"{p_value:.2f}" if p_value >= 0.1 else f"{p_value:.3f}" if p_value >= 0.01 else f"{p_value:.1e}"


def replaced_models_note(report: EvaluationReport, results_dir: Path) -> str | None:
    """When results_dir's evaluation.json holds models this report lacks (an earlier `--compare`), what writing
    this report over it loses; None otherwise (nothing there, unreadable, or nothing lost)."""
    path = Path(results_dir) / REPORT_FILES[0]
    try:
        stored = read_json(path)
        earlier, served = stored.get("models") or {}, stored.get("checkpoints") or {}
    except (OSError, ValueError, AttributeError):
        return None
    lost = [str(name) for name in earlier if name not in {m.name for m in report.models}]
    # The same model name from another checkpoint (another backbone combo's, or another checkpoint folder's)
    lost += [f"{name} of {Path(str(before.get('path'))).parent.name}/{Path(str(before.get('path'))).name}"
             for name, before in served.items() if isinstance(before, dict) and name in report.checkpoints
             and before.get("path") != report.checkpoints[name].get("path")]
    if not lost:
        return None
    return (f"This evaluation replaces {path}, whose results also held {', '.join(lost)}: each evaluation rewrites "
            "the evaluation files of paths.results_dir. Pass --compare (or name them with --recommender-type) to "
            "keep them in the table, or evaluate into another folder (MMREC_PATHS__RESULTS_DIR=...).")


def write_report(report: EvaluationReport, results_dir: Path) -> dict[str, Path]:
    """evaluation.json and evaluation.md under results_dir (atomic)."""
    results_dir = Path(results_dir)
    paths = {"json": results_dir / REPORT_FILES[0], "markdown": results_dir / REPORT_FILES[1]}
    atomic_write_json(paths["json"], report.to_dict())
    atomic_write_text(paths["markdown"], markdown_report(report))
    return paths


def negatives_path(predictions: Path) -> Path:
    """Where the sampled negatives go beside `predictions`: recs.json -> recs.negatives.json."""
    predictions = Path(predictions)
    return predictions.with_name(f"{predictions.stem}.negatives{predictions.suffix}")


def write_negatives(pairs: tuple[np.ndarray, np.ndarray, np.ndarray, int], user_ids: np.ndarray,
                    item_ids: list[str], protocol: dict[str, Any], path: Path) -> Path:
    """The sampled evaluation's pairs (`draw_pairs`: each test positive and the negatives every model ranked it
    against): JSON {protocol, pairs: [{user_id, item_id, negatives}]} or CSV user_id,item_id,negative (a row per
    negative: ids joined in one cell by a separator could not be told apart from ids that hold it), so the sampled
    figures can be recomputed from the files."""
    rows, cols, negatives, _ = pairs
    entries = [(str(user_ids[row]), item_ids[col], [item_ids[j] for j in drawn])
               for row, col, drawn in zip(rows, cols, negatives)]
    if path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["user_id", "item_id", "negative"])
        writer.writerows((user, item, negative) for user, item, drawn in entries for negative in drawn)
        atomic_write_text(path, buffer.getvalue())
    else:
        atomic_write_json(path, {"protocol": protocol, "pairs": [
            {"user_id": user, "item_id": item, "negatives": drawn} for user, item, drawn in entries]})
    return path


def write_predictions(
    report: EvaluationReport, user_ids: np.ndarray, item_ids: list[str], path: Path
) -> Path:
    """Top-K per user per model: JSON {model: {user: [{item_id, score}]}} or CSV model,user_id,rank,item_id,score.
    Places filled by masked items (a user who has seen almost every item) are left out, as recommend leaves them."""
    path = Path(path)
    table = {
        m.name: {str(user_ids[row]): [{"item_id": item_ids[j], "score": round(float(score), 6)}
                                      for j, score in zip(top, scores) if np.isfinite(score)]
                 for row, top, scores in zip(m.topk_rows, m.topk, m.topk_scores)}
        for m in report.models
        if m.topk is not None and m.topk_scores is not None
    }
    if path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["model", "user_id", "rank", "item_id", "score"])
        for model, users in table.items():
            for user, items in users.items():
                writer.writerows((model, user, rank, item["item_id"], item["score"])
                                 for rank, item in enumerate(items, 1))
        atomic_write_text(path, buffer.getvalue())
    else:
        atomic_write_json(path, table)
    return path
