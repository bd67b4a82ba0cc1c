"""run_evaluate: fit every requested recommender on the same train split and score it on test."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmrec.checkpoints import CheckpointSpec
from mmrec.checkpoints.store import CHECKSUM
from mmrec.data.splits import load_split, read_split_report, stale_split_note
from mmrec.data.tables import load_items
from mmrec.device import resolve_device
from mmrec.errors import CheckpointError, ConfigError
from mmrec.evaluation.dataset import (
    EvaluationData,
    build_evaluation_data,
    read_interactions_file,
    validate_interactions,
)
from mmrec.evaluation.evaluator import ModelEvaluation, evaluate_model
from mmrec.evaluation.report import (
    REPORT_FILES,
    SAMPLED_NOTE,
    EvaluationReport,
    negatives_path,
    replaced_models_note,
    write_negatives,
    write_predictions,
    write_report,
)
from mmrec.evaluation.sampled import draw_pairs
from mmrec.fileio import sha256_file
from mmrec.models.trend import days
from mmrec.pipeline.preprocess import stale_processed_note
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.recommenders import RECOMMENDERS, create_recommender
from mmrec.recommenders.base import Recommender
from mmrec.settings import EvaluationSettings, Settings


def load_recommender(
    name: str,
    settings: Settings,
    items: pd.DataFrame,
    train: pd.DataFrame,
    device: torch.device,
    checkpoint_name: str | None = None,
    progress: ProgressCallback = null_progress,
) -> Recommender:
    """A recommender fitted on `train` over the catalogue `items` (multimodal: from its checkpoint); slow
    steps of the fit (an item-item model not stored yet) are announced through `progress`."""
    kwargs, served_note = {}, None
    if name == "multimodal":
        from mmrec.checkpoints.spec import load_served

        trained, served_note = load_served(settings.paths.checkpoint_dir, settings.features.combo,
                                           checkpoint_name or settings.inference.checkpoint_name, device)
        kwargs = {
            "checkpoint_path": trained,
            "items": items,
            "cache_dir": settings.paths.cache_dir,
            "cache": settings.cache,
            "device": device,
            "features": settings.features,
            "progress": progress,
        }
    model = create_recommender(name, settings.evaluation, **kwargs)
    if served_note:
        model.served_note = served_note
    model.announce = lambda text: progress(ProgressEvent(f"fit:{name}", message=f"{text}."))
    return model.fit(train, items["item_id"].tolist())


def served_meta(settings: Settings, checkpoint_name: str | None) -> tuple[Path, dict[str, Any], str | None]:
    """(path, metadata, note) of the multimodal checkpoint evaluate will load (served_checkpoint), read before the
    load, to refuse a wrong split before any model is fitted."""
    from mmrec.checkpoints.store import read_meta, served_checkpoint

    path, note = served_checkpoint(settings.paths.checkpoint_dir, settings.features.combo,
                                   checkpoint_name or settings.inference.checkpoint_name)
    return path, read_meta(path), note


def checkpoint_notes(path: Path, meta: dict[str, Any], served_note: str | None, train_source: Path,
                     from_split: bool) -> list[str]:
    """Refuse (CheckpointError) to evaluate the multimodal checkpoint `path` (metadata `meta`) on a split it was not
    trained on: its test rows may be among the checkpoint's training data, which inflates every metric.
    `train_source`: the train file evaluate fits on; when the user named it (`from_split` False) a mismatch is a
    note, not an error. Also the notes on the checkpoint itself: why it is served (`served_note`), a run that did
    not finish, a blend the two-tower network has no part in."""
    from mmrec.checkpoints.store import item_item_kind, served_model, served_weights, unfinished_note

    notes = [served_note] if served_note else []
    if note := unfinished_note(meta, path):
        notes.append(note)
    chosen = meta.get("item_item")
    if isinstance(chosen, dict) and "two-tower" not in (shares := served_weights(chosen)):
        model = (meta.get("settings") or {}).get("model") or {}
        dims = meta.get("model_args") or {}
        kind = item_item_kind(model.get("use_vision", True) and bool(dims.get("vision_dim", 1)),
                              model.get("use_text", True) and bool(dims.get("text_dim", 1)))
        notes.append(f"The multimodal checkpoint serves {served_model(chosen)}"
                     + (f" (the item-item model: {kind})" if "item-item" in shares else "")
                     + ": validation gave a blend step weight 1, so the two-tower network carries none of these "
                       "scores (`mmrec checkpoints info` shows every weight).")
    recorded = meta.get("split") or {}
    trained_on = recorded.get("train_sha256")
    if not trained_on or sha256_file(train_source) == trained_on:  # checkpoints before 2026-12 record none
        return notes
    where = Path(recorded.get("splits_dir", "?")) / "train.csv"
    then = "the split was made again since" if where.resolve() == train_source.resolve() else f"it was {where}"
    if from_split:
        raise CheckpointError(
            f"Checkpoint {path} was trained on another train.csv than {train_source} holds now ({then}): this "
            "split's test rows may be among its training data, so its metrics would be inflated.",
            hint="Run `mmrec train` on this split first (or evaluate on the split it was trained on).")
    notes.append(f"The multimodal checkpoint was trained on other rows than {train_source} holds ({then}): make "
                 "sure no test row was among them, or its metrics are inflated.")
    return notes


def chosen_fallback(evaluation: EvaluationSettings, item_item: Any, train: pd.DataFrame
                    ) -> tuple[EvaluationSettings | None, str] | None:
    """What the multimodal model's users without training interactions get when `mmrec train` chose the recency of
    their popularity list (`item_item`: the checkpoint's recorded choice, model.fallback_halflife): (the evaluation
    settings its fallback is made with, or None for the configured one; what they get, said after "get"). That
    choice when the settings leave it open (cold_user_fallback popularity, no popularity_halflife_days) and `train`
    has times to age by; else the configured list, said as not the one training chose. None without a choice."""
    halflife = item_item.get("fallback_halflife_days") if isinstance(item_item, dict) else None
    if not halflife:
        return None
    chose = f"the half-life of {days(float(halflife))} `mmrec train` chose (model.fallback_halflife)"
    if evaluation.cold_user_fallback != "popularity":
        return None, (f"the {evaluation.cold_user_fallback} list (evaluation.cold_user_fallback), not the popularity "
                      f"list with {chose}")
    if evaluation.popularity_halflife_days is not None:
        return None, (f"the popularity list with a half-life of {days(evaluation.popularity_halflife_days)} "
                      + ("(evaluation.popularity_halflife_days, the one `mmrec train` chose too)"
                         if evaluation.popularity_halflife_days == float(halflife) else
                         f"(evaluation.popularity_halflife_days), not {chose}"))
    if "timestamp" not in train.columns:
        return None, (f"popularity of all time, not {chose}: the interactions it is fitted on have no timestamp "
                      "column to age by")
    return (evaluation.model_copy(update={"popularity_halflife_days": float(halflife)}),
            f"the popularity list with a half-life of {days(float(halflife))}, as `mmrec train` chose on validation "
            "(model.fallback_halflife; evaluation.popularity_halflife_days, when set, wins)")


def trend_left_out_note(spec: CheckpointSpec, frame: pd.DataFrame) -> str | None:
    """A note when the checkpoint blends in recent popularity but `frame` (what the model is fitted on) has no
    timestamp column to age it by (TrendModel.build then gives none), else None."""
    blend = spec.item_item
    if blend is None or not (blend.trend_blend and blend.trend_halflife_days) or "timestamp" in frame.columns:
        return None
    return (f"The checkpoint blends in recent popularity (half-life {days(blend.trend_halflife_days)}, weight "
            f"{blend.trend_blend:g}), but the interactions it is fitted on here have no timestamp column to age by: "
            "it is left out.")


Frames = tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame], list[pd.DataFrame], dict[str, str], list[str]]


def _frames(settings: Settings, test_data: Path | None, train_data: Path | None, with_val: bool = False) -> Frames:
    """(train, test, also-masked frames, other known positives, sources, notes): explicit files win, read as
    preprocess reads interactions.csv (its column names and rating threshold); val is masked with the split's
    train, and with a train file of the user's still never drawn as a sampled negative (it is the user's).
    `with_val`: the split's val rows join its train rows (`sources["fit_also"]`): every model scores from both."""
    splits_dir = Path(settings.paths.splits_dir)
    if with_val and train_data is not None:  # before any file is read
        raise ConfigError("--with-val adds the split's validation rows to its train split; --train-data names a "
                          "train file of your own instead.",
                          hint="Put the rows you want fitted in that file, or leave --train-data out.")
    split = load_split(splits_dir) if test_data is None or train_data is None else None
    sources, notes = {}, []
    if train_data is not None:
        train, sources["train"] = read_interactions_file(train_data, "train", settings.data, notes), str(train_data)
    else:
        train = validate_interactions(split.train, f"train split in {splits_dir}")
        sources["train"] = str(splits_dir / "train.csv")
    if test_data is not None:
        test, sources["test"] = read_interactions_file(test_data, "test", settings.data, notes), str(test_data)
    else:
        test = validate_interactions(split.test, f"test split in {splits_dir}")
        sources["test"] = str(splits_dir / "test.csv")
    also_seen, known = [], []
    if with_val:
        if split.val.empty:
            raise ConfigError(f"--with-val has no effect: the split in {splits_dir} has no validation rows.",
                              hint="Split with a validation share, or leave the option out.")
        train = pd.concat([train, validate_interactions(split.val, f"val split in {splits_dir}")], ignore_index=True)
        sources["fit_also"] = str(splits_dir / "val.csv")
        notes.append("Every model scores the test users from their train and validation interactions (--with-val), "
                     "as serving scores from every interaction: a split by time's latest rows, and the users and "
                     "items validation alone holds. The multimodal network keeps the weights training chose on "
                     "validation; its other parts (item-item, content, transitions, popularity) are fitted on both.")
        return train, test, also_seen, known, sources, notes
    # Validation items are masked too when train comes from the same split (they are the user's past).
    if split is not None and not split.val.empty:
        (also_seen if train_data is None else known).append(split.val)
        if train_data is None:
            sources["masked"] = str(splits_dir / "val.csv")
    return train, test, also_seen, known, sources, notes


def run_evaluate(
    settings: Settings,
    recommender_types: Sequence[str] = ("multimodal",),
    test_data: Path | None = None,
    train_data: Path | None = None,
    eval_task: str | None = None,
    checkpoint_name: str | None = None,
    use_sampling: bool = False,
    num_negatives: int | None = None,
    sampling_strategy: str | None = None,
    save_predictions: Path | None = None,
    k_values: Sequence[int] | None = None,
    warmup_recommender_cache: bool = False,
    use_parallel: bool = False,
    num_workers: int = 2,
    device: str | None = None,
    write_files: bool = True,
    with_val: bool = False,
    progress: ProgressCallback = null_progress,
) -> EvaluationReport:
    """Evaluate each recommender type on one split and write JSON/markdown/plots to results_dir.

    Arguments left None use settings.evaluation; retrieval = full ranking, ranking = sampled negatives.
    `with_val`: every model scores from the split's train and validation rows (`_frames`).
    """
    updates = {
        "eval_task": eval_task,
        "num_negatives": num_negatives,
        "sampling_strategy": sampling_strategy,
        "k_values": list(k_values) if k_values else None,
        "device": device,
    }
    evaluation = settings.evaluation.model_validate(
        {**settings.evaluation.model_dump(), **{k: v for k, v in updates.items() if v is not None}}
    )
    if save_predictions is not None and Path(save_predictions).suffix.lower() not in (".json", ".csv"):
        raise ConfigError(f"--save-predictions {save_predictions}: predictions are written as .json or .csv.",
                          hint="Name the file with one of those suffixes.")
    names = list(dict.fromkeys(recommender_types))
    unknown = [n for n in names if n not in RECOMMENDERS]
    if not names or unknown:
        raise ConfigError(
            f"Unknown recommender type(s): {', '.join(unknown) or '(none given)'}.",
            hint=f"Choose from: {', '.join(RECOMMENDERS)}.",
        )
    torch_device = resolve_device(evaluation.device)
    items = load_items(Path(settings.paths.processed_dir))
    train, test, also_seen, known, sources, file_notes = _frames(settings, test_data, train_data, with_val)
    # Whatever is evaluated: the raw data changed since preprocess, or the split predates the last preprocess.
    split_read = test_data is None or train_data is None
    splits, processed = Path(settings.paths.splits_dir), Path(settings.paths.processed_dir)
    stale = (stale_processed_note(settings), stale_split_note(splits, processed) if split_read else None)
    file_notes = [note for note in stale if note] + file_notes
    for note in file_notes:
        progress(ProgressEvent("evaluate", message=note))
    checked = served_meta(settings, checkpoint_name) if "multimodal" in names else None
    split_notes = checkpoint_notes(*checked, Path(sources["train"]), train_data is None) if checked else []
    for note in split_notes:  # shown now, before the fits (and again in the report's notes)
        progress(ProgressEvent("evaluate", message=note))
    data = build_evaluation_data(train, test, items["item_id"].tolist(), also_seen, known)
    # The advice to score from train + validation is for a split by time (or a hand-made one: unknown).
    strategy = read_split_report(Path(settings.paths.splits_dir)).get("strategy") if also_seen else None
    count_notes = _report_counts(data, progress, val_apart=bool(also_seen) and strategy in TIME_ORDERED + (None,),
                                 cold_report=evaluation.eval_task == "retrieval")
    sampled = use_sampling or evaluation.eval_task == "ranking"
    n_items = len(data.item_ids)
    if sampled and evaluation.num_negatives >= n_items:
        raise ConfigError(
            f"--num-negatives {evaluation.num_negatives}: the catalogue has {n_items:,} items, so no test positive can "
            f"be ranked against {evaluation.num_negatives} distinct other items.",
            hint=f"Pass fewer than {n_items:,} (99 is the common choice on larger catalogues), or --eval-task "
                 "retrieval to rank the whole catalogue.")
    if sampled:  # a user with fewer items outside their own than negatives is skipped: refuse when all are
        owned = np.diff((data.relevant + data.not_negatives).tocsr().indptr)
        tested = np.diff(data.relevant.indptr) > 0
        if tested.any() and not (n_items - owned[tested] >= evaluation.num_negatives).any():
            raise ConfigError(
                f"--num-negatives {evaluation.num_negatives}: no test user has that many items outside their own "
                f"(the most any has is {int((n_items - owned[tested]).max()):,}), so every test positive would be "
                "skipped and the table would score nobody.",
                hint="Pass fewer negatives, or --eval-task retrieval to rank the whole catalogue.")
    # The most items any test user can be shown: the catalogue less that user's training (and validation) items.
    rankable = n_items - int(np.diff(data.exclude.indptr).min()) if data.exclude.shape[0] else n_items
    if evaluation.eval_task == "retrieval" and (beyond := [k for k in evaluation.k_values if k >= rankable]):
        left = (f"the catalogue's {n_items:,} items" if rankable == n_items else
                f"the at most {rankable:,} items a test user can be shown (the catalogue's {n_items:,} less the "
                "items each already has, which are masked)")
        count_notes.append(f"Cut-off(s) {', '.join(map(str, beyond))} reach {left}: such a list holds every item a "
                           "user can get, so its recall and hit rate are 1 wherever the user has a test item.")
        progress(ProgressEvent("evaluate", message=count_notes[-1]))
    if "random" in names:  # beside each table the random row is in: full ranking, sampled negatives or both
        k = 10 if 10 in evaluation.k_values else evaluation.k_values[0]
        if evaluation.eval_task == "retrieval":
            count_notes.append(chance_note(data, k))
        if sampled:  # at a cut-off inside the sampled candidates (past them every hit rate is 1)
            inside = [cut for cut in evaluation.k_values if cut <= evaluation.num_negatives] or evaluation.k_values
            count_notes.append(sampled_chance_note(evaluation.num_negatives, 10 if 10 in inside else max(inside)))
    if sampled and (beyond := [k for k in evaluation.k_values if k > evaluation.num_negatives]):
        count_notes.append(f"Cut-off(s) {', '.join(map(str, beyond))} exceed the {evaluation.num_negatives} sampled "
                           "negatives: every positive ranks inside them, so their sampled hit rate is 1.")
        progress(ProgressEvent("evaluate", message=count_notes[-1]))

    fallback = create_recommender(evaluation.cold_user_fallback, evaluation).fit(train, data.item_ids)
    checkpoints: dict[str, dict[str, Any]] = {}  # model -> the checkpoint it was loaded from
    own_list: list[float] = []  # the half-life of the multimodal model's own fallback, when it got one
    model_notes: list[str] = []  # what a loaded checkpoint says about this run's settings

    def one(name: str) -> ModelEvaluation:
        progress(ProgressEvent(task=f"evaluate:{name}", description=f"fitting {name}", total=2))
        started = time.perf_counter()
        model = load_recommender(name, settings, items, train, torch_device, checkpoint_name, progress)
        fit_seconds = time.perf_counter() - started
        if getattr(model, "checkpoint", None) is not None:
            checkpoints[name] = model.checkpoint
            if checked and (model.checkpoint["path"], model.checkpoint["sha256"]) != (str(checked[0]),
                                                                                   checked[1].get(CHECKSUM)):
                # A training run saved another checkpoint between the check and the load: check what was loaded.
                split_notes[:] = checkpoint_notes(Path(model.checkpoint["path"]), model.spec.to_meta(),
                                                  model.served_note, Path(sources["train"]), train_data is None)
        if isinstance(spec := getattr(model, "spec", None), CheckpointSpec) and (
                note := spec.features_note(settings.features, settings.model)):
            model_notes.append(note)
        if note := getattr(model, "categories_note", None):
            model_notes.append(note)
        model_fallback = fallback  # the multimodal model's own when training chose its recency
        if isinstance(spec, CheckpointSpec) and len(data.cold_user_rows) and (
                chosen := chosen_fallback(evaluation, spec.to_meta().get("item_item"), train)):
            own, what = chosen
            others = [other for other in names if other in ("item_knn", "user_knn")] if own else []
            if own is not None:
                model_fallback = create_recommender("popularity", own).fit(train, data.item_ids)
                own_list.append(own.popularity_halflife_days)
            model_notes.append(
                f"The multimodal model's users without training interactions get {what}"
                + (f"; {' and '.join(others)} get popularity of all time (evaluation.popularity_halflife_days: "
                   f"{own.popularity_halflife_days:g} gives every model, the popularity baseline too, that list)."
                   if others else "."))
        if isinstance(spec, CheckpointSpec) and (note := trend_left_out_note(spec, train)):
            model_notes.append(note)
        progress(ProgressEvent(task=f"evaluate:{name}", completed=1, total=2, description=f"scoring {name}"))
        result = evaluate_model(
            name,
            model,
            data,
            evaluation,
            device=torch_device,
            fallback=model_fallback,
            use_sampling=use_sampling,
            return_topk=save_predictions is not None,
            fit_seconds=fit_seconds,
            do_warmup=warmup_recommender_cache,
        )
        headline = {
            k: v for k, v in result.metrics.items() if k in (f"ndcg@{evaluation.k_values[-1]}", "sampled_auc")
        }
        progress(
            ProgressEvent(
                task=f"evaluate:{name}",
                completed=2,
                total=2,
                description=f"evaluated {name}",
                metrics=headline,
                done=True,
            )
        )
        return result

    if use_parallel and len(names) > 1:
        with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
            results = list(pool.map(one, names))  # map keeps the requested order
    else:
        results = [one(name) for name in names]

    report = EvaluationReport(
        task=evaluation.eval_task,
        k_values=list(evaluation.k_values),
        models=results,
        counts=data.counts,
        sources=sources,
        device=str(torch_device),
        checkpoints=checkpoints,
        protocol={"seed": evaluation.seed, **({"num_negatives": evaluation.num_negatives,
                                                "sampling_strategy": evaluation.sampling_strategy} if sampled else {})},
    )
    report.notes += file_notes + split_notes + count_notes + model_notes
    if evaluation.eval_task == "ranking" and len(results) > 1:
        report.notes.append(f"No user-by-user comparison of {results[0].name} with the other models: it is made on "
                            "full ranking only (--eval-task retrieval).")
    if sampled:
        report.notes.append(
            f"{SAMPLED_NOTE} ({evaluation.num_negatives} distinct {evaluation.sampling_strategy} negatives per "
            "positive)")
        if skipped := max(int(r.metrics.get("sampled_skipped_positives", 0)) for r in results):
            report.notes.append(
                f"{skipped:,} test positive(s) are left out of the sampled metrics: their user has fewer than "
                f"{evaluation.num_negatives} items outside their own to draw as negatives.")
    if note := tied_cold_note(results, len(data.cold_items)):
        report.notes.append(note)
    if data.counts["test_cold_users"]:
        report.notes.append(
            f"{data.counts['test_cold_users']:,} test user(s) have no training interactions; "
            f"id-based models score them with the {evaluation.cold_user_fallback} fallback."
            + ((" That is every test user (a split by user): every model but random serves them that same list, so "
                "the table cannot tell models apart; a split that keeps each user's first interactions in train "
                "(e.g. temporal_user) can." if not own_list else
                " That is every test user (a split by user): every model but random serves them a popularity list, "
                f"the multimodal model the one of half-life {days(own_list[0])} validation chose, so the table "
                "compares those lists, not the models; a split that keeps each user's first interactions in train "
                "(e.g. temporal_user) can tell the models apart.")
               if data.counts["test_cold_users"] >= data.counts["test_users"] else ""))
    if write_files:
        results_dir = Path(settings.paths.results_dir)
        if note := replaced_models_note(report, results_dir):
            report.notes.append(note)
        from mmrec.data.staging import staged_files
        from mmrec.evaluation.plots import plot_files, write_plots  # matplotlib: only when evaluate writes plots

        # The whole set (JSON, markdown, plots) lands together: a killed evaluate leaves the previous one intact,
        # never new JSON beside old plots.
        family = [*REPORT_FILES, *plot_files().values()]
        with staged_files(results_dir, family, last=REPORT_FILES[0]) as staging:
            staged = {**write_report(report, staging), **write_plots(report, staging)}
        report.files.update({name: results_dir / path.name for name, path in staged.items()})
        if save_predictions is not None:
            report.files["predictions"] = write_predictions(
                report, data.user_ids, data.item_ids, save_predictions
            )
            if sampled:  # the negatives every model was ranked against: the sampled figures recompute from files
                pairs = draw_pairs(data.relevant, data.not_negatives, evaluation.num_negatives,
                                   evaluation.sampling_strategy, data.train_popularity, evaluation.seed)
                report.files["negatives"] = write_negatives(pairs, data.user_ids, data.item_ids, report.protocol,
                                                            negatives_path(save_predictions))
    return report


# Share of test positives on items unseen in training above which evaluate says the comparison is mostly about
# scoring from content (every baseline but random scores such items 0).
COLD_SHARE_NOTE = 0.5


TIME_ORDERED = ("temporal", "temporal_user", "leave_one_out")  # split strategies whose validation precedes test


def tied_cold_note(results: list, n_cold: int) -> str | None:
    """A note naming the models whose cold-item table is all zeros but MRR: they score every cold item alike (no
    interactions to go by), ties rank the relevant ones last, so their MRR there is about 1 / cold items; None
    when no model does."""
    tied = sorted(r.name for r in results if r.name != "random" and r.cold_item_metrics  # random breaks no tie
                  and 0 < r.cold_item_metrics.get("mrr", 0) * n_cold < 2
                  and not any(v for k, v in r.cold_item_metrics.items() if "@" in k))
    if not tied:
        return None
    return (f"On cold items {', '.join(tied)} score every item alike (they go by interactions, which cold items "
            f"lack): ties rank the relevant ones last among the {n_cold:,} cold items, so their cold MRR is about "
            f"1/{n_cold:,} and every top-K metric 0, not a signal.")


def chance_note(data: EvaluationData, k: int) -> str:
    """What a uniformly random ranking scores in expectation on these test users (recall@k = k / rankable items,
    hit rate@k = 1 - C(n - r, k) / C(n, k)), beside which the random row, one seeded draw, reads as chance."""
    rankable = (len(data.item_ids) - np.diff(data.exclude.indptr)).astype(np.float64)
    relevant = np.diff(data.relevant.indptr).astype(np.float64)
    scored = relevant > 0
    n, r = rankable[scored], relevant[scored]
    recall = float(np.mean(np.minimum(k, n) / np.maximum(n, 1)))
    miss = np.ones_like(n)
    for i in range(k):  # no relevant item among the first k of n: a product of k draws without replacement
        miss *= np.where(n - i > 0, np.clip((n - r - i) / np.maximum(n - i, 1), 0, 1), 0)
    return (f"By chance (a uniformly random ranking) recall@{k} is {recall:.4f} and hit_rate@{k} "
            f"{float(np.mean(1 - miss)):.4f} in expectation on these test users; the random row is one seeded draw.")


def sampled_chance_note(num_negatives: int, k: int) -> str:
    """What a uniformly random ranking scores in expectation on sampled metrics: each test positive is ranked among
    itself and `num_negatives` negatives, so its rank is uniform over 1..num_negatives + 1."""
    n = num_negatives + 1
    ndcg = sum(1.0 / np.log2(rank + 1) for rank in range(1, min(k, n) + 1)) / n
    return (f"By chance (a uniformly random ranking) sampled_auc is 0.5, sampled_hit_rate@{k} {min(k, n) / n:.4f} and "
            f"sampled_ndcg@{k} {ndcg:.4f} in expectation (each test positive ranked among itself and {num_negatives} "
            "negatives); the random row is one seeded draw.")


def _report_counts(data: EvaluationData, progress: ProgressCallback, val_apart: bool = False,
                   cold_report: bool = True) -> list[str]:
    """Tell the user about everything unusual in the test data (nothing is dropped silently). `val_apart`: the
    models score from the split's train alone, its validation rows only masked (what a time split's advice is
    about). `cold_report`: a cold-item table is made (full ranking only)."""
    c = data.counts
    notes = []
    if c["test_unknown_items_dropped"]:
        notes.append(
            f"{c['test_unknown_items_dropped']} test interactions are on items outside the catalogue (skipped)"
        )
    if c.get("train_interactions_outside_catalogue"):
        notes.append(f"{c['train_interactions_outside_catalogue']:,} training interaction(s) are on items outside the "
                     "catalogue (skipped: the baselines and the item-item model fit without them; items removed since "
                     "the split was made?)")
    if c["test_duplicate_pairs"]:
        notes.append(f"{c['test_duplicate_pairs']} duplicate test pairs (counted once)")
    if c["test_pairs_seen_in_training"]:
        left = c["test_users_without_new_items"]
        notes.append(
            f"{c['test_pairs_seen_in_training']:,} test interaction(s) repeat a user-item pair of the training data "
            "(or validation): recommendations never hold an item the user already has, so they are not test "
            "positives" + (f"; {left:,} test user(s) have no other and are not scored" if left else "") + ".")
    if c["test_cold_item_interactions"]:
        notes.append(
            f"{c['test_cold_item_interactions']} test interactions on items unseen in training"
            + (" (cold-item report)" if cold_report else " (no cold-item report: it needs --eval-task retrieval)")
        )
        positives = c["test_interactions"] - c["test_unknown_items_dropped"]  # the rows cold ones are counted of
        if positives and c["test_cold_item_interactions"] >= COLD_SHARE_NOTE * positives:
            notes.append(
                f"{100 * c['test_cold_item_interactions'] / positives:.0f}% of the test interactions are on items "
                "unseen in training: a model that scores from interactions alone (popularity, item_knn, user_knn) "
                "cannot rank those items, so the table mostly measures scoring from item content."
                + (" On a split by time the validation rows sit between train and test: --with-val scores from "
                   "train and validation together (the latest interactions, as serving does)." if val_apart else ""))
    for note in notes:
        progress(ProgressEvent(task="evaluate", message=note))
    return notes
