"""run_batch_recommend: top-K for every user (or the chosen ones), streamed chunk by chunk into parquet.

Memory holds one chunk of users ([chunk, n_items] scores and their top-K lists), whatever the number
of users: each chunk becomes one parquet row group. The lists are those of `mmrec recommend` (same
Serving.top_k: scores, fallback, seen-item masking); reasons and MMR diversity are not computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmrec.errors import ConfigError
from mmrec.fileio import check_output_file
from mmrec.inference.ann import recall_at_k
from mmrec.inference.parquet_output import parquet_recommendations
from mmrec.inference.topk import rows_per_chunk
from mmrec.pipeline.recommend import (
    count_new_items,
    new_items_placed_note,
    requested_users,
    select_users,
    short_list_note,
)
from mmrec.pipeline.serving import Serving, load_serving
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import Settings


@dataclass
class BatchRecommendResult:
    recommender: str
    top_k: int
    output: Path
    n_users: int = 0
    n_rows: int = 0
    chunk_users: int = 0  # users scored at once
    fallback_users: int = 0  # unknown to the model: cold_user_fallback lists
    short_users: int = 0  # fewer than top_k unseen items to recommend
    ann: str | None = None
    ann_recall: float | None = None  # recall@top_k of the approximate lists against exact ones
    ann_check_users: int = 0
    notes: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None  # the checkpoint the lists come from (checkpoint_provenance)


def check_batch_output(output: Path) -> Path:
    """`output` if it can take a parquet table, else a ConfigError (before any work)."""
    if Path(output).suffix.lower() != ".parquet":
        raise ConfigError(
            f"Batch recommendations are written as parquet; --output {output} does not end in .parquet.",
            hint="Pass e.g. --output recs.parquet (columns user_id, rank, item_id, score, fallback); "
            "for JSON with reasons, name users with --users/--user-file/--sample-users instead of --all-users.",
        )
    return check_output_file(output, "--output")


def _chunks(users: Sequence[str], size: int):
    for start in range(0, len(users), size):
        yield start, [str(u) for u in users[start : start + size]]


def measure_ann_recall(serving: Serving, users: Sequence[str], n_users: int, k: int, chunk: int,
                       seed: int) -> tuple[float, int]:
    """(mean recall@k of the approximate top-k against exact top-k, users measured) over a seeded sample."""
    if serving.index is None:
        raise ValueError("measure_ann_recall needs a Serving with an approximate index")
    picked = np.random.default_rng(seed).choice(len(users), size=min(n_users, len(users)), replace=False)
    sample = [str(users[i]) for i in np.sort(picked)]
    exact_serving = dataclasses.replace(serving, index=None)
    approximate, exact = [], []
    for _, block in _chunks(sample, chunk):
        approximate += [idx for idx, _ in serving.top_k(block, k)[0]]
        exact += [idx for idx, _ in exact_serving.top_k(block, k)[0]]
    return recall_at_k(approximate, exact), len(sample)


def run_batch_recommend(
    settings: Settings,
    output: Path,
    all_users: bool = False,
    users: Sequence[str] | None = None,
    user_file: Path | None = None,
    sample_users: int | None = None,
    recommender_type: str = "multimodal",
    ann_check: int = 0,
    progress: ProgressCallback = null_progress,
) -> BatchRecommendResult:
    """Write settings.inference.top_k items per user to `output` (parquet: user_id, rank, item_id, score,
    fallback[, new]).

    all_users: every user of the processed data (those who only rated below the positive threshold included: the
    fallback serves them); otherwise the users chosen as for run_recommend.
    ann_check: also measure the approximate index's recall@K against exact scoring on N sampled users.
    """
    output = check_batch_output(output)
    inference = settings.inference
    if inference.use_diversity:
        raise ConfigError("MMR diversity is not computed for batch (parquet) recommendations.",
                          hint="Drop --use-diversity, or write JSON (--output recs.json) for chosen users.")
    if all_users and (users or user_file or sample_users):
        raise ConfigError("--all-users already covers every user; it cannot be combined with "
                          "--users, --user-file or --sample-users.", hint="Pass either --all-users or a user selection.")
    if ann_check and inference.ann == "none":
        raise ConfigError("--ann-check measures the approximate index, but none is on.",
                          hint="Pass --ann faiss_ivf or --ann faiss_hnsw (inference.ann) as well.")
    named, file_notes = ([], []) if all_users else requested_users(users, user_file, settings.data.user_id_column)
    progress(ProgressEvent(task="recommend", description=f"loading {recommender_type}"))
    serving = load_serving(settings, recommender_type, progress, ann_checked=bool(ann_check))
    chosen, selection_notes = (serving.users, []) if all_users else select_users(
        serving.seen.users, named, sample_users, settings.evaluation.seed, file_notes, inference.unknown_users,
        serving.users, serving.gone_since)
    for note in (serving.joined_since_note(chosen), serving.gone_since_note(chosen)):
        selection_notes = [*selection_notes, note] if note else selection_notes
    k = inference.top_k
    chunk = rows_per_chunk(settings.evaluation.batch_size, serving.n_items)
    result = BatchRecommendResult(recommender_type, k, output, n_users=len(chosen), chunk_users=chunk,
                                  ann=None if inference.ann == "none" else inference.ann,
                                  notes=[*serving.notes, *file_notes, *selection_notes],
                                  checkpoint=getattr(serving.model, "checkpoint", None))
    new_counts = (0, 0)  # lists holding a new item, new items in all
    with parquet_recommendations(output, serving.item_ids, serving.is_new if serving.new_slots else None,
                                 {"recommender": recommender_type, "checkpoint": result.checkpoint}) as table:
        for start, block in _chunks(chosen, chunk):
            lists, is_fallback = serving.top_k(block, k)
            table.write(block, lists, [serving.fallback_name if flag else None for flag in is_fallback])
            holding, n_new = count_new_items(serving, [idx for idx, _ in lists])
            new_counts = (new_counts[0] + holding, new_counts[1] + n_new)
            result.fallback_users += sum(is_fallback)
            result.short_users += sum(len(idx) < k for idx, _ in lists)
            progress(ProgressEvent(task="recommend", completed=start + len(block), total=len(chosen),
                                   description="recommending"))
        result.n_rows = table.n_rows
    progress(ProgressEvent(task="recommend", completed=len(chosen), total=len(chosen), done=True))
    if note := new_items_placed_note(serving, new_counts[0], len(chosen), new_counts[1]):
        result.notes.append(note)
    if ann_check:
        result.ann_recall, result.ann_check_users = measure_ann_recall(
            serving, chosen, ann_check, k, chunk, settings.evaluation.seed)
    if result.fallback_users:
        below_only = len(chosen) - len(serving.seen.users) if all_users else 0
        result.notes.append(serving.fallback_note(result.fallback_users, below_only))
    if note := short_list_note(result.short_users, k, serving):
        result.notes.append(note)
    return result
