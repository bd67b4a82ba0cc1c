"""Choose the blend on validation (after training): the item-item model's lambda (dense solver), its
weight per recency half-life, then the weight and modality of content similarity on top of the leading
half-lives' blends (CONTENT_GRID; weight 1 = content alone), keeping the best of all, then
(model.sequence_blend) the variant (next items, or items done close together), weight and profile half-life
of transitions on top, then
(model.trend_blend) the weight and half-life of popularity (recent, or of all time); then,
when the served item-item model will be refitted on all of train.csv (a holdout), a tie on the item-item
weight goes to the larger one (model.item_item_refit_within_se); last (model.cold_blend), the weight and
modality of content similarity in the cold items' order among themselves, on validation's cold items."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mmrec.checkpoints.spec import ItemItemSpec
from mmrec.evaluation.full_ranking import relevant_among
from mmrec.evaluation.metrics import paired_gain_se
from mmrec.models.histories import IdEncoding, catalogue_index
from mmrec.models.content_profile import ContentProfileModel, content_modalities, unheld_columns
from mmrec.models.item_item_store import ItemItemStore
from mmrec.models.item_item import (BLEND_GRID, HALFLIFE_GRID, L2_EDGE_STEPS, L2_GRID, ItemItemModel, fit_profiles,
                                    item_item_content, item_item_fit_key, item_item_neighbours, item_item_profiles,
                                    item_item_search)
from mmrec.models.scoring import Scorer
from mmrec.models.transitions import SEQUENCE_VARIANTS, SEQUENCE_WEIGHTS, describe_variant, transition_model
from mmrec.models.trend import TREND_HALFLIVES_DAYS, TREND_WEIGHTS, TrendModel, describe_halflife
from mmrec.progress import ProgressEvent
from mmrec.settings import ModelSettings
from mmrec.training.trainer import Trainer

# Content-similarity weights tried on top of the item-item blend (0 = none, 1 = content alone), and on
# top of how many half-lives' best blends (the leading ones).
CONTENT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
CONTENT_BASES = 2
# Weights of content similarity in the cold items' order among themselves (mmrec.models.scoring.reorder_cold).
COLD_WEIGHTS = (0.25, 0.5, 0.75, 1.0)
# Shifts of the cold items' scores (in standard deviations of the user's scores over the catalogue) tried last.
COLD_SHIFTS = (-1.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0)
# Half-lives (days) of the popularity list served to users without training interactions, tried against all time.
FALLBACK_HALFLIVES_DAYS = (1.0, 7.0, 30.0, 365.0)


# Peak bytes of the dense item-item fit per (item, item) cell: bench/results/item_item.md measured 2.0 GiB at
# 10,000 items and 7.5 GiB at 20,000 (G in float64, the inverse, B and the scoring copy).
DENSE_BYTES_PER_CELL = 20
SEARCH_TASK = "item_item_search"  # the progress task of the search's stage lines (tune keeps them out of its output)


class _Stages:
    """One line as each stage of the blend search starts, with the seconds since the search began: it can
    take minutes on a large catalogue, and a log written without a terminal shows these lines too."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.started = trainer, time.perf_counter()

    def __call__(self, text: str) -> None:
        elapsed = time.perf_counter() - self.started
        self.trainer.progress(ProgressEvent(SEARCH_TASK, message=f"Item-item search (+{elapsed:.0f} s): {text}"))


def choose_item_item_blend(trainer: Trainer, cfg: ModelSettings, train: pd.DataFrame, users: IdEncoding,
                           item_ids: list[str], notes: list[str], store: ItemItemStore | None = None,
                           refit: bool = False) -> tuple[ItemItemSpec, Scorer] | None:
    """Fit the item-item model on `train`, validate every (half-life, blend weight), then the
    content-similarity weight and modality on top of the best blends of the CONTENT_BASES leading
    half-lives (`_choose_content`), keeping the best of all by the validation monitor; returns the
    choice and the scorer it describes.

    The trainer's model must hold the weights to blend with (the best epoch's). Returns None when
    the item-item model is off or the catalogue exceeds model.item_item_max_items (with a note).
    Fixed model.item_item_blend / item_item_halflife shrink the grid to that value. The fit goes into
    `store` (mmrec.models.item_item_store), where evaluating on the same train split finds it.

    refit: the served item-item model will be refitted on more rows than `train` (validation was carved
    out of train.csv) while the two-tower model stays as trained, so the refit can only strengthen the
    item-item side: after every other choice, the item-item weight becomes the largest within
    model.item_item_refit_within_se paired standard errors of the chosen blend (`_toward_refit`).
    """
    n_items = trainer.catalogue.n
    if not cfg.item_item:
        return None
    if n_items > cfg.item_item_max_items:
        notes.append(f"Item-item model skipped: {n_items:,} items exceed model.item_item_max_items "
                     f"({cfg.item_item_max_items:,}); scores are the two-tower model's alone.")
        return None
    validated = trainer.data.val_relevant.nnz > 0
    if not validated and cfg.item_item_blend is None:  # nothing could choose a weight: none is fitted
        why = ("keep validation rows (training.holdout_ratio > 0 carves them out of train)"
               if trainer.cfg.holdout_ratio <= 0 else
               f"training.holdout_ratio {trainer.cfg.holdout_ratio:g} held out nothing (each user keeps a "
               "training interaction: users with a single one give none): split data with more interactions "
               "per user")
        notes.append(f"No validation data: the item-item blend weight cannot be chosen, so the two-tower model "
                     f"serves alone; {why}, or fix model.item_item_blend.")
        return None
    start = time.perf_counter()
    stage = _Stages(trainer)
    n_val = int((np.diff(trainer.data.val_relevant.indptr) > 0).sum())
    rows = catalogue_index(item_ids)
    halflives = HALFLIFE_GRID if cfg.item_item_halflife is None else (cfg.item_item_halflife,)
    # Profile rows = user index, as the trainer's histories and validation users.
    l2_grid: list[dict[str, float]] = []
    neighbours = item_item_neighbours(cfg, n_items)
    if neighbours is not None and cfg.item_item_solver == "auto":
        notes.append(f"Item-item model: {n_items:,} items exceed model.item_item_dense_max_items "
                     f"({cfg.item_item_dense_max_items:,}), so each item keeps its {neighbours} nearest items "
                     "(the neighbourhood solver, memory items x neighbours). Raise "
                     "model.item_item_dense_max_items for the exact solver where memory allows: it would need about "
                     f"{DENSE_BYTES_PER_CELL * n_items ** 2 / 2 ** 30:,.0f} GiB for these items (and time growing "
                     "as items^3).")
    solver = f"the neighbourhood solver, {neighbours} neighbours" if neighbours is not None else "the dense solver"
    stage(f"fitting the item-item model of {len(train):,} interactions x {n_items:,} items ({solver})"
          + (", lambda chosen on validation" if validated and cfg.item_item_l2_search else ""))
    # The lambdas the teacher's fit solved with it before training (the neighbourhood solver): its time counts here.
    teacher_path = trainer.teacher is not None and bool(trainer.teacher_l2_fits)
    if validated and cfg.item_item_l2_search:
        cfg, model, l2_grid = _choose_l2(trainer, cfg, train, users, rows, halflives[0], store, stage, notes)
    else:
        model = _fit(trainer, cfg, train, users, rows, halflives[0], store)
    fit_s = time.perf_counter() - start
    if trainer.teacher is not None and (model.weights is trainer.teacher.weights or teacher_path):
        fit_s += trainer.teacher_seconds  # fitted before training, reused
    blends = BLEND_GRID if cfg.item_item_blend is None else (cfg.item_item_blend,)
    base = trainer.scorer()
    monitor = trainer.monitor
    candidates = {halflife: model if halflife == halflives[0] else
                  model.with_profiles(item_item_profiles(train, users, rows, halflife)) for halflife in halflives}
    # Weight 0 is the two-tower model alone, the same for every half-life: validated once.
    pairs = [(h, b) for h in halflives for b in blends if b > 0 or h == halflives[0]]
    stage(f"validating {len(pairs)} blends (recency half-life x weight, lambda {cfg.item_item_l2:g}) on "
          f"{n_val:,} users")
    results = dict(zip(pairs, trainer.validate_many([base.with_item_item(candidates[h], b) for h, b in pairs])))
    grid: list[dict[str, float]] = []
    per_halflife: dict[float, tuple[float, dict[str, float]]] = {}  # each half-life's best weight
    for halflife in halflives:
        for beta in blends:
            metrics = results[(halflife, beta)] if beta > 0 else results[(halflives[0], beta)]
            value = metrics.get(monitor, float("nan"))
            grid.append({"halflife": halflife, "blend": beta, monitor: value})
            if halflife not in per_halflife or value > per_halflife[halflife][1].get(monitor, float("-inf")):
                per_halflife[halflife] = (beta, metrics)
    if not validated:  # the blend weight is fixed (else no fit above); nothing chooses the rest
        notes.append(f"No validation data: the item-item half-life stays at its first value ({halflives[0]:g}) and "
                     "no content or transition blend is added; set model.item_item_halflife to fix the half-life.")
    elif "timestamp" not in train.columns and len(halflives) > 1:
        halflives = _file_order_gate(trainer, base, candidates, halflives, per_halflife, cfg.sequence_min_se, notes)
    # The content blend goes on top of the CONTENT_BASES half-lives whose best blends lead, and the best of
    # all is kept: the half-life that wins alone may leave content less to add (recency and a whole-profile
    # taste overlap; on per-user temporal validation half-life 2 led 5 alone, and 5 led with content).
    # Best first, so a tie keeps the best blend alone.
    bases, seen = [], set()
    for halflife in sorted(halflives, key=lambda h: -_value(per_halflife[h][1], monitor)):
        beta, metrics = per_halflife[halflife]
        key = halflife if beta > 0 else None  # weight 0 is the two-tower model alone whatever the half-life
        if key not in seen and len(bases) < CONTENT_BASES:
            seen.add(key)
            bases.append((halflife, beta, base.with_item_item(candidates[halflife], beta), metrics))
    binary_profiles = candidates[0.0].interactions if 0.0 in candidates else \
        item_item_profiles(train, users, rows, 0.0)
    if cfg.content_blend:
        stage(f"content similarity on top of the {len(bases)} best blend(s)")
    halflife, beta, modality, weight, chosen, scorer, content_grid = _choose_content(
        trainer, cfg, bases, binary_profiles)
    sequence: dict[str, Any] = {}
    sequence_grid: list[dict[str, Any]] = []
    sequence_gain_se = None
    if cfg.sequence_blend and validated:
        if "timestamp" in train.columns:
            stage("item transitions on top (next items, and items done close together)")
            sequence, chosen, scorer, sequence_grid, sequence_gain_se = _choose_sequence(
                trainer, cfg, scorer, chosen, train, users, rows, notes)
        else:
            notes.append("model.sequence_blend: the training interactions have no timestamp column, so there is no "
                         "order to learn item transitions from; none is blended.")
    trend: dict[str, Any] = {}
    trend_grid: list[dict[str, Any]] = []
    trend_gain_se = None
    if cfg.trend_blend and validated:
        stage("popularity (recent, and of all time) on top")
        trend, chosen, scorer, trend_grid, trend_gain_se = _choose_trend(trainer, cfg, scorer, chosen, train, rows,
                                                                         notes)
    if refit and cfg.item_item_blend is None and validated and cfg.item_item_refit_within_se > 0:
        beta, chosen, scorer = _toward_refit(trainer, scorer, candidates[halflife], beta, chosen, blends,
                                             cfg.item_item_refit_within_se, notes)
    cold: dict[str, Any] = {}
    cold_grid: list[dict[str, Any]] = []
    cold_gain_se = None
    if cfg.cold_blend and validated:
        cold, chosen, scorer, cold_grid, cold_gain_se = _choose_cold(trainer, cfg, scorer, chosen, binary_profiles,
                                                                     stage, notes)
    shift: dict[str, Any] = {}
    shift_grid: list[dict[str, Any]] = []
    shift_gain_se = None
    if cfg.cold_shift and validated:
        shift, chosen, scorer, shift_grid, shift_gain_se = _choose_shift(trainer, cfg, scorer, chosen,
                                                                         binary_profiles, stage, notes)
    fallback: dict[str, Any] = {}
    fallback_grid: list[dict[str, Any]] = []
    fallback_gain_se = None
    if cfg.fallback_halflife and validated:
        fallback, chosen, scorer, fallback_grid, fallback_gain_se = _choose_fallback(trainer, cfg, scorer, chosen,
                                                                                     train, rows, stage, notes)
    stage("done")
    spec = ItemItemSpec(blend=beta, halflife=halflife, l2=cfg.item_item_l2, l2_grid=l2_grid,
                        content_weight=cfg.item_item_content_weight,
                        neighbours=neighbours, monitored=chosen.get(monitor, float("nan")),
                        val=chosen, val_grid=grid, fit_seconds=round(fit_s, 3),
                        search_seconds=round(time.perf_counter() - start, 3), content_blend=weight,
                        content_modality=modality, content_grid=content_grid, **sequence,
                        sequence_window=cfg.sequence_window if sequence_grid else 0, sequence_grid=sequence_grid,
                        sequence_gain_se=sequence_gain_se, **trend, trend_grid=trend_grid,
                        trend_gain_se=trend_gain_se, **cold, cold_grid=cold_grid, cold_gain_se=cold_gain_se,
                        **shift, cold_shift_grid=shift_grid, cold_shift_gain_se=shift_gain_se,
                        **fallback, fallback_grid=fallback_grid, fallback_gain_se=fallback_gain_se)
    return spec, scorer


def _file_order_gate(trainer: Trainer, base: Scorer, candidates: dict[float, ItemItemModel],
                     halflives: tuple[float, ...], per_halflife: dict[float, tuple[float, dict[str, float]]],
                     min_se: float, notes: list[str]) -> tuple[float, ...]:
    """The half-lives still in the running when train has no timestamp column: a user's items are then in the
    order the file lists them, which may mean nothing (a file in random order), so a recency half-life whose
    best blend leads that of the first half-life (every item alike) stays only when it leads by at least
    `min_se` paired standard errors of the validation monitor and not through one user alone (`below_noise`,
    model.sequence_min_se, as transitions, popularity and the cold items' order); one that does not lead is
    dropped too. `per_halflife` holds each half-life's best (weight, metrics)."""
    if min_se <= 0:
        return halflives
    first = halflives[0]
    monitor = trainer.monitor

    def blended(halflife: float) -> Scorer:
        beta = per_halflife[halflife][0]
        return base.with_item_item(candidates[halflife], beta) if beta > 0 else base

    leading = [h for h in halflives[1:]
               if _value(per_halflife[h][1], monitor) > _value(per_halflife[first][1], monitor)]
    if not leading:  # the order adds nothing on validation: it is not used
        notes.append(f"The training interactions have no timestamp column, so each user's items are in the order the "
                     f"file lists them: no recency half-life led validation {monitor} over every item counting alike "
                     "(half-life 0), so that order is not used.")
        return (first,)
    (_, first_users), *results = trainer.validate_paired([blended(first), *(blended(h) for h in leading)])
    why = {h: "no paired values" if per_user is None or first_users is None
           else below_noise(per_user, first_users, min_se) for h, (_, per_user) in zip(leading, results)}
    kept = {h: paired_gain_se(per_user, first_users) for h, (_, per_user) in zip(leading, results) if why[h] is None}
    dropped = {h: reason for h, reason in why.items() if reason is not None}
    over = "over every item counting alike (half-life 0), recency half-life(s)"
    if dropped:
        listed = ", ".join(f"{h:g} ({reason})" for h, reason in dropped.items())
        notes.append(f"The training interactions have no timestamp column, so each user's items are in the order the "
                     f"file lists them, which may mean nothing: {over} {listed} led validation {monitor}, not enough "
                     "to trust that order, so it is not used.")
    if kept:
        listed = ", ".join(f"{h:g} (by {g:.2f})" for h, g in kept.items())
        notes.append(f"The training interactions have no timestamp column: {over} {listed} led validation "
                     f"{monitor} by at least model.sequence_min_se ({min_se:g}) paired standard errors, so the file's "
                     "order is taken as time.")
    return (first, *kept)


def _toward_refit(trainer: Trainer, scorer: Scorer, model: ItemItemModel, beta: float, metrics: dict[str, float],
                  blends: tuple[float, ...], within_se: float, notes: list[str]
                  ) -> tuple[float, dict[str, float], Scorer]:
    """(weight, metrics, scorer): the chosen blend (`scorer`, item-item weight `beta`, validation `metrics`;
    its content and transition components kept) with the largest item-item weight of `blends` whose
    per-user validation values trail the chosen one's by at most `within_se` paired standard errors.

    Used when the served item-item model is refitted on more rows than validation saw (a holdout carved
    out of train.csv) while the two-tower model is not: the refit moves the best weight toward the
    item-item model, so a tie goes that way. On `bench/cli_nested_blend.py`'s pseudo-tests (MovieLens,
    all ratings, per user 75/25) the holdout chose 0.25 on both seeds and the served pair was best at
    0.75 and 0.5."""
    larger = sorted((b for b in blends if b > beta), reverse=True)
    if not larger:
        return beta, metrics, scorer
    tried = [scorer.with_item_item(model, b) for b in larger]
    (_, chosen_users), *results = trainer.validate_paired([scorer, *tried])
    if chosen_users is None:
        return beta, metrics, scorer
    for weight, blended, (result, per_user) in zip(larger, tried, results):
        if per_user is not None and paired_gain_se(chosen_users, per_user) <= within_se:
            value, best = result.get(trainer.monitor, float("nan")), metrics.get(trainer.monitor, float("nan"))
            notes.append(f"Item-item blend weight {weight:g} instead of validation's best {beta:g} ({trainer.monitor} "
                         f"{value:.4f} vs {best:.4f}, within {within_se:g} paired standard error(s)): the item-item "
                         "model is refitted on all of train.csv for serving and the two-tower model is not "
                         "(model.item_item_refit_within_se).")
            return weight, result, blended
    return beta, metrics, scorer


def _choose_l2(trainer: Trainer, cfg: ModelSettings, train: pd.DataFrame, users: IdEncoding, rows: pd.Series,
               halflife: float, store: ItemItemStore | None, stage: _Stages | None = None,
               notes: list[str] | None = None) -> tuple[ModelSettings, ItemItemModel, list[dict[str, float]]]:
    """(settings with the chosen lambda, its fit, the grid) of model.item_item_l2 x L2_GRID, extended past an
    edge the best sits at, each fit validated alone (blend weight 1) by the monitor; only the chosen fit goes
    into `store`. The candidates share one Gram matrix, or with the neighbourhood solver one neighbour search
    (`ItemItemModel.fit_l2_path`); the configured lambda's is the trainer's distillation teacher when that is the
    same fit."""
    profiles = item_item_profiles(train, users, rows, halflife)
    content = item_item_content(cfg, trainer.catalogue)
    lambdas = [cfg.item_item_l2 * factor for factor in L2_GRID]
    teacher = _teacher_fit(trainer, cfg, profiles)
    stored = trainer.teacher_l2_fits if teacher is not None else {}  # solved with the teacher (same fit key)
    # The path solves these in turn; the list grows below when the best lambda sits at an edge of the grid.
    to_solve = [l2 for l2 in lambdas if l2 not in stored and (teacher is None or l2 != cfg.item_item_l2)]
    n_items = trainer.catalogue.n
    solved = ItemItemModel.fit_l2_path(profiles, content, to_solve, cfg.item_item_content_weight, trainer.device,
                                       item_item_neighbours(cfg, n_items), item_item_search(cfg, n_items))
    best: tuple[float, ModelSettings, ItemItemModel] | None = None
    grid: list[dict[str, float]] = []
    base = trainer.scorer()

    def validate(l2: float) -> bool:
        """Validate the fit at `l2` alone (blend weight 1); whether it is the new best."""
        nonlocal best
        if teacher is not None and l2 == cfg.item_item_l2:
            model = teacher
        else:
            model = ItemItemModel(stored[l2], profiles.tocsr()) if l2 in stored else next(solved)
        value = trainer.validate(base.with_item_item(model, 1.0)).get(trainer.monitor, float("nan"))
        grid.append({"l2": l2, trainer.monitor: value})
        if stage is not None:
            stage(f"lambda {l2:g}: val {trainer.monitor} {value:.4f} (the item-item model alone)")
        better = best is None or value > best[0]  # ties and NaN (no validation data) keep the first: factor 1
        if better:
            best = (value, cfg.model_copy(update={"item_item_l2": l2}), model)
        return better

    for l2 in lambdas:  # L2_GRID's factor 1 (the configured lambda, the teacher's) first
        validate(l2)
    # Validation's best at the grid's largest or smallest lambda: the optimum may lie beyond (it grows with
    # the interactions per item), so the path goes on by factors of 2 that way while validation improves.
    for step in range(L2_EDGE_STEPS):
        tried = sorted(row["l2"] for row in grid)
        chosen_l2 = best[1].item_item_l2
        if len(tried) < 2 or chosen_l2 not in (tried[0], tried[-1]):
            break
        to_solve.append(chosen_l2 * 2 if chosen_l2 == tried[-1] else chosen_l2 / 2)
        if not validate(to_solve[-1]):
            break
        if step == L2_EDGE_STEPS - 1 and notes is not None:
            notes.append(f"Item-item lambda: validation still improved at {to_solve[-1]:g}, the search's last step "
                         f"({L2_EDGE_STEPS} past the grid of model.item_item_l2 x 0.5-4); the best may lie further: "
                         f"set model.item_item_l2 near {to_solve[-1]:g} and train again to search around it.")
    solved.close()  # frees the shared Gram matrix
    if teacher is not None:
        trainer.teacher_l2_fits = {}  # the unchosen ones: freed (the chosen one is `best`'s)
    assert best is not None
    _, chosen, model = best
    if store is not None:
        store.save(item_item_fit_key(model.interactions, content, chosen), model.weights)
    return chosen, model, grid


def _fit(trainer: Trainer, cfg: ModelSettings, train: pd.DataFrame, users: IdEncoding, rows: pd.Series,
         halflife: float, store: ItemItemStore | None = None) -> ItemItemModel:
    """The item-item model of `train` at `halflife` (fit_profiles, through `store`), or the trainer's
    distillation teacher when it is the same fit. The profiles are built once for both."""
    profiles = item_item_profiles(train, users, rows, halflife)
    teacher = _teacher_fit(trainer, cfg, profiles, store)
    return teacher if teacher is not None else fit_profiles(profiles, trainer.catalogue, cfg, trainer.device, store)


def _teacher_fit(trainer: Trainer, cfg: ModelSettings, profiles: sp.csr_matrix,
                 store: ItemItemStore | None = None) -> ItemItemModel | None:
    """The trainer's distillation teacher scoring from `profiles` when it is the fit `cfg` asks of them
    (same 0/1 pattern, content and settings: B depends on nothing else), saving a refit; else None.
    With a `store`, the reused fit goes into it as a refit would."""
    if trainer.teacher is None or cfg.item_item_l2 != trainer.model_cfg.item_item_l2:  # else no need to hash
        return None
    key = item_item_fit_key(profiles, item_item_content(cfg, trainer.catalogue), cfg)
    if key != trainer.teacher_key:
        return None
    if store is not None:
        store.save(key, trainer.teacher.weights)
    return ItemItemModel(trainer.teacher.weights, profiles.tocsr())


def _value(metrics: dict[str, float], monitor: str) -> float:
    """The monitored value, NaN (no validation data) ranked last."""
    value = metrics.get(monitor, float("nan"))
    return value if value == value else float("-inf")


def _choose_content(trainer: Trainer, cfg: ModelSettings,
                    bases: list[tuple[float, float, Scorer, dict[str, float]]], profiles: sp.csr_matrix
                    ) -> tuple[float, float, str | None, float, dict[str, float], Scorer, list[dict[str, Any]]]:
    """(half-life, blend weight, modality, content weight, metrics, scorer, grid) of the best content-profile
    blend on top of any of `bases` = (half-life, blend weight, scorer, its metrics), best first (content
    weight 0 = none: the first base itself).

    Weight 1 is content similarity alone, so the choice is never worse on validation than it. Every
    (base, modality, weight) is validated in one pass: components shared by the scorers are scored once.
    """
    modalities = content_modalities(cfg, trainer.catalogue) if cfg.content_blend else []
    weights = CONTENT_GRID if cfg.content_blend_weight is None else (cfg.content_blend_weight,)
    halflife, beta, scorer, without = bases[0]  # the best base alone
    best: tuple[float, float, str | None, float, dict[str, float], Scorer] = (halflife, beta, None, 0.0, without, scorer)
    grid: list[dict[str, Any]] = []
    # One content model per modality, shared by its weights and bases: scored (and held) once per validation chunk.
    models = {modality: ContentProfileModel.build(trainer.catalogue, modality, profiles) for modality in modalities}
    tried = [(halflife, beta, modality, scorer.with_content(models[modality], weight), weight)
             for halflife, beta, scorer, _ in bases for modality in modalities for weight in weights if weight > 0]
    results = trainer.validate_many([blended for _, _, _, blended, _ in tried])
    for (halflife, beta, modality, blended, weight), metrics in zip(tried, results):
        value = metrics.get(trainer.monitor, float("nan"))
        grid.append({"halflife": halflife, "blend": beta, "modality": modality, "content_blend": weight,
                     trainer.monitor: value})
        if _value(metrics, trainer.monitor) > _value(best[4], trainer.monitor):
            best = (halflife, beta, modality, weight, metrics, blended)
    return (*best, grid)


def below_noise(after: np.ndarray, before: np.ndarray, min_se: float) -> str | None:
    """Why the per-user gain of `after` over `before` is no evidence ("by only ... paired standard errors", "through
    one user alone"), or None: it is at least `min_se` paired standard errors and still a gain without the one user
    who gained most (one user's gain alone is always exactly 1 standard error, however few the users)."""
    gain_se = paired_gain_se(after, before)
    if gain_se < min_se:
        return f"by only {gain_se:.2f} paired standard errors (model.sequence_min_se {min_se:g})"
    gains = np.sort(np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64))
    return "through one user alone" if gains[:-1].sum() <= 0 else None


def _choose_cold(trainer: Trainer, cfg: ModelSettings, scorer: Scorer, metrics: dict[str, float],
                 profiles: sp.csr_matrix, stage: _Stages, notes: list[str]
                 ) -> tuple[dict[str, Any], dict[str, float], Scorer, list[dict[str, Any]], float | None]:
    """(chosen {cold_modality, cold_blend}, or {} for none; metrics, scorer, grid, gain in paired standard errors)
    of the weight and modality of content similarity in the cold items' order among themselves
    (mmrec.models.scoring.reorder_cold) on top of `scorer` (validation `metrics`).

    The items without a training interaction are ranked among themselves for the validation users with one
    of them (evaluate's cold-item table). The modality is the one whose content similarity alone ranks them
    best (the content baseline's choice), then the weight the best of COLD_WEIGHTS with it: one choice among a
    few, so the gate below means what it says. That weight is kept when it leads none there by at least
    model.sequence_min_se paired standard errors, still leads without the one user who gained most (a gain one
    user makes is one hit, whatever its standard error), and, over the items training.validate_on ranks (where
    the cold items' new order also moves them among the others), trails none by less than min_se. With no
    cold item in validation nothing is tried: the blend chosen over every item orders them."""
    modalities = content_modalities(cfg, trainer.catalogue)
    if not modalities:
        return {}, metrics, scorer, [], None
    models = {modality: ContentProfileModel.build(trainer.catalogue, modality, profiles) for modality in modalities}
    cold = models[modalities[0]].cold_columns.cpu().numpy()
    users = int((np.diff(relevant_among(trainer.data.val_relevant, cold).indptr) > 0).sum()) if len(cold) > 1 else 0
    if not users:
        return {}, metrics, scorer, [], None
    monitor, min_se = trainer.monitor, cfg.sequence_min_se
    stage(f"the order of the {len(cold):,} cold items among themselves, on the {users:,} validation users with one")
    tried = [({"cold_modality": modality, "cold_blend": weight}, scorer.with_cold(models[modality], weight))
             for modality in modalities for weight in COLD_WEIGHTS]
    (base, base_users), *results = trainer.validate_paired([scorer, *(blended for _, blended in tried)], cold)
    grid = [{**params, f"cold {monitor}": result.get(monitor, float("nan"))}
            for (params, _), (result, _) in zip(tried, results)]
    alone = {params["cold_modality"]: _value(result, monitor)  # weight 1: content similarity alone
             for (params, _), (result, _) in zip(tried, results) if params["cold_blend"] == 1.0}
    modality = max(modalities, key=lambda m: alone[m])  # the first of a tie
    best = max((j for j, (params, _) in enumerate(tried) if params["cold_modality"] == modality),
               key=lambda j: _value(results[j][0], monitor))
    (params, blended), (result, best_users) = tried[best], results[best]
    if base_users is None or best_users is None or not _value(result, monitor) > _value(base, monitor):
        return {}, metrics, scorer, grid, None  # none wins ties
    gain_se = paired_gain_se(best_users, base_users)
    described = (f"content similarity ({modality}, the best alone) weight {params['cold_blend']:g} in their order "
                 f"among themselves raised validation {monitor} on the {users:,} users with one")
    if why := below_noise(best_users, base_users, min_se):
        notes.append(f"Cold items: {described} {why}; the blend orders them.")
        return {}, metrics, scorer, grid, gain_se
    (_, main_base), (main, main_best) = trainer.validate_paired([scorer, blended])
    main_gain = paired_gain_se(main_best, main_base) if main_base is not None and main_best is not None else 0.0
    if main_gain < -min_se:
        notes.append(f"Cold items: {described} by {gain_se:.2f} paired standard errors, but lowered it over the items "
                     f"validation ranks by {-main_gain:.2f} (model.sequence_min_se {min_se:g}); the blend orders them.")
        return {}, metrics, scorer, grid, gain_se
    return params, main, blended, grid, gain_se


def _choose_shift(trainer: Trainer, cfg: ModelSettings, scorer: Scorer, metrics: dict[str, float],
                  profiles: sp.csr_matrix, stage: _Stages, notes: list[str]
                  ) -> tuple[dict[str, Any], dict[str, float], Scorer, list[dict[str, Any]], float | None]:
    """(chosen {cold_shift}, or {} for none; metrics, scorer, grid, gain in paired standard errors) of the shift of
    the cold items' scores against the warm ones (mmrec.models.scoring.shift_cold), last, by `_choose_on_top`.
    Every cold item shares the two-tower model's "no id" row, so their offset to the warm items moves as one from
    epoch to epoch; where validation's items are new (an `item` split, a fresh catalogue split by time) they
    belong higher, and where they are a few rare ones perhaps lower. Nothing is tried without a validation user
    who has a cold item."""
    columns = unheld_columns(profiles, trainer.device)
    if not len(columns) or not (np.diff(relevant_among(trainer.data.val_relevant, columns.cpu().numpy()).indptr)
                                > 0).any():
        return {}, metrics, scorer, [], None
    stage(f"the offset of the {len(columns):,} cold items to the others")
    tried = [({"cold_shift": shift}, scorer.with_cold_shift(columns, shift)) for shift in COLD_SHIFTS]
    return _choose_on_top(trainer, scorer, metrics, tried, "cold_shift", cfg.sequence_min_se, "Cold items' offset",
                          lambda p: f"{p['cold_shift']:g} standard deviations of a user's scores", notes, "shift")


def _choose_fallback(trainer: Trainer, cfg: ModelSettings, scorer: Scorer, metrics: dict[str, float],
                     train: pd.DataFrame, rows: pd.Series, stage: _Stages, notes: list[str]
                     ) -> tuple[dict[str, Any], dict[str, float], Scorer, list[dict[str, Any]], float | None]:
    """(chosen {fallback_halflife_days}, or {} for all time; metrics, scorer, grid, gain in paired standard errors) of
    the recency of the popularity list served to users the model cannot score (no training interaction), by
    `_choose_on_top` over the validation users unseen in training (the others score alike under every variant): on a
    fresh catalogue split by time new users take what is new, on a film catalogue perhaps the long-run favourites.
    Nothing is tried without timestamps or without such a validation user."""
    unseen = int((trainer.data.val_users == 0).sum())
    if "timestamp" not in train.columns and unseen:
        notes.append(f"model.fallback_halflife: the training interactions have no timestamp column, so the "
                     f"{unseen:,} validation users unseen in training cannot choose a recency: the popularity list "
                     "new users get is of all time.")
    if "timestamp" not in train.columns or not unseen:
        return {}, metrics, scorer, [], None
    stage(f"the popularity list of the {unseen:,} validation users unseen in training")
    models = [model for h in FALLBACK_HALFLIVES_DAYS if (model := TrendModel.build(train, rows, h, trainer.device))]
    tried = [({"fallback_halflife_days": model.halflife_days}, scorer.with_fallback(model.values)) for model in models]
    chosen, after, scorer, grid, gain_se = _choose_on_top(
        trainer, scorer, metrics, tried, "fallback_halflife_days", cfg.sequence_min_se,
        "Popularity list of users without training interactions", lambda p: "in days, against all time", notes,
        "half-life")
    # The value each was compared with: all time (half-life 0, as trend_halflife_days writes it).
    grid = [{"fallback_halflife_days": 0.0, trainer.monitor: metrics.get(trainer.monitor, float("nan"))}, *grid]
    return chosen, after, scorer, grid, gain_se


def _choose_sequence(trainer: Trainer, cfg: ModelSettings, scorer: Scorer, metrics: dict[str, float],
                     train: pd.DataFrame, users: IdEncoding, rows: pd.Series, notes: list[str]
                     ) -> tuple[dict[str, Any], dict[str, float], Scorer, list[dict[str, Any]], float | None]:
    """(chosen {sequence_directions, sequence_halflife, sequence_blend}, or {} for none; metrics, scorer,
    grid, gain in paired standard errors) of the best transition blend on top of `scorer` (whose validation
    metrics are `metrics`), over SEQUENCE_VARIANTS x SEQUENCE_WEIGHTS, by `_choose_on_top`."""
    # One transition matrix per direction and one profile matrix per half-life, shared by the variants.
    matrices = {d: transition_model(train, users, rows, cfg.sequence_window, 0.0, trainer.device, d)
                for d in dict.fromkeys(d for d, _ in SEQUENCE_VARIANTS)}
    profiles = {h: item_item_profiles(train, users, rows, h) for h in dict.fromkeys(h for _, h in SEQUENCE_VARIANTS)}
    models = {(d, h): matrices[d].with_profiles(profiles[h]) for d, h in SEQUENCE_VARIANTS}  # scored once each
    tried = [({"sequence_directions": d, "sequence_halflife": h, "sequence_blend": w},
              scorer.with_sequence(models[(d, h)], w)) for d, h in SEQUENCE_VARIANTS for w in SEQUENCE_WEIGHTS]
    return _choose_on_top(trainer, scorer, metrics, tried, "sequence_blend", cfg.sequence_min_se, "Transitions",
                          lambda p: describe_variant(p["sequence_directions"], p["sequence_halflife"]), notes)


def _choose_trend(trainer: Trainer, cfg: ModelSettings, scorer: Scorer, metrics: dict[str, float],
                  train: pd.DataFrame, rows: pd.Series, notes: list[str]
                  ) -> tuple[dict[str, Any], dict[str, float], Scorer, list[dict[str, Any]], float | None]:
    """(chosen {trend_halflife_days, trend_blend}, or {} for none; metrics, scorer, grid, gain in paired
    standard errors) of the best recent-popularity blend (mmrec.models.trend) on top of `scorer`, by
    `_choose_on_top`."""
    models = [TrendModel.build(train, rows, h, trainer.device) for h in TREND_HALFLIVES_DAYS]
    tried = [({"trend_halflife_days": m.halflife_days, "trend_blend": w}, scorer.with_trend(m, w))
             for m in models if m is not None for w in TREND_WEIGHTS]
    return _choose_on_top(trainer, scorer, metrics, tried, "trend_blend", cfg.sequence_min_se, "Popularity",
                          lambda p: describe_halflife(p["trend_halflife_days"]), notes)


def _choose_on_top(trainer: Trainer, scorer: Scorer, metrics: dict[str, float],
                   tried: list[tuple[dict[str, Any], Scorer]], weight_key: str, min_se: float, label: str,
                   describe: Callable[[dict[str, Any]], str], notes: list[str], kind: str = "weight"
                   ) -> tuple[dict[str, Any], dict[str, float], Scorer, list[dict[str, Any]], float | None]:
    """(chosen, metrics, scorer, grid, gain in paired standard errors): the best of `tried` = (its settings,
    weight under `weight_key`; scorer with a component on top of `scorer`) against `scorer` itself (chosen
    {}: none; its validation metrics are `metrics`). None wins ties, and the best is kept only when its
    per-user gain over none is at least `min_se` paired standard errors (model.sequence_min_se) and is not one
    user's alone (`below_noise`), so validation never goes down and a gain within its noise adds nothing.
    Everything is ranked in one pass; each grid row is a tried setting with its metric; `label` and
    `describe(settings)` name it in the note."""
    (_, base_users), *results = trainer.validate_paired([scorer, *(b for _, b in tried)])
    none: tuple[dict[str, Any], dict[str, float], Scorer] = ({}, metrics, scorer)
    best, best_users = none, base_users
    grid: list[dict[str, Any]] = []
    for (params, blended), (result, per_user) in zip(tried, results):
        grid.append({**params, trainer.monitor: result.get(trainer.monitor, float("nan"))})
        if _value(result, trainer.monitor) > _value(best[1], trainer.monitor):
            best, best_users = (params, result, blended), per_user
    gain_se = (paired_gain_se(best_users, base_users)
               if best is not none and best_users is not None and base_users is not None else None)
    if gain_se is not None and (why := below_noise(best_users, base_users, min_se)):
        notes.append(f"{label}: the best {kind} ({best[0][weight_key]:g}, {describe(best[0])}) raised validation "
                     f"{trainer.monitor} {why}; " + ("none is blended." if kind == "weight" else f"no {kind} is kept."))
        best = none
    return (*best, grid, gain_se)
