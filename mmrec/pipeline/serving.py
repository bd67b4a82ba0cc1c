"""What both recommend paths share: one fitted model, its fallback, seen items, and scores + top-K per chunk.

`mmrec recommend --users ...` (JSON, reasons, diversity) and `--all-users` (parquet) score every chunk
of users through `Serving.top_k`, so both give the same lists for the same user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmrec.checkpoints import CheckpointSpec
from mmrec.checkpoints.store import served_weights, unfinished_note
from mmrec.data.encoders import IdEncoder
from mmrec.data.tables import load_interactions, load_items, load_rated_below
from mmrec.device import resolve_device
from mmrec.errors import ConfigError
from mmrec.inference.ann import ItemIndex, candidate_score_matrix, require_faiss
from mmrec.inference.seen import SeenItems
from mmrec.inference.topk import finite_rows, reserve_new_items, top_k_unseen
from mmrec.pipeline.evaluate import chosen_fallback, load_recommender, trend_left_out_note
from mmrec.pipeline.preprocess import stale_processed_note
from mmrec.progress import ProgressCallback, null_progress
from mmrec.recommenders import RECOMMENDERS, create_recommender
from mmrec.recommenders.base import Recommender
from mmrec.settings import Settings

TopKLists = list[tuple[np.ndarray, np.ndarray]]  # per user: (catalogue rows, scores), best first


# With the two-tower network's share of the final score this low or lower (the blend's other parts carrying the
# rest), an index over its vectors is a weak candidate source: say so.
ANN_TWO_TOWER_SHARE_NOTE = 0.5


@dataclass
class Serving:
    """A recommender fitted on every processed interaction, ready to score chunks of users."""

    item_ids: list[str]
    titles: list[str]
    interactions: pd.DataFrame
    model: Recommender
    fallback: Recommender  # scores users the model does not know
    fallback_name: str
    seen: SeenItems
    exclude_seen: bool
    device: torch.device
    index: ItemIndex | None = None  # approximate candidates (inference.ann); None = exact scoring
    pool_factor: int = 10
    notes: list[str] = field(default_factory=list)  # what the user should know about this serving setup
    is_new: np.ndarray | None = None  # [n_items] items no processed interaction names (inference.new_items)
    new_slots: int = 0  # places of each list reserved for them (inference.new_items)
    # What exclude_seen masks when it is more than `seen`: also the items rated below the positive threshold
    masked: SeenItems | None = None
    fallback_recency: str = ""  # the fallback list's recency as `mmrec train` chose it ("" = as configured)

    def fallback_note(self, n_users: int, below_only: int = 0) -> str:
        """What the users the model does not know got (recommend and batch recommend say it alike)."""
        got = (f"got {self.fallback_name} recommendations" if self.model.name != self.fallback_name else
               f"got the {self.fallback_name} list everyone gets (no interaction of theirs to score from)")
        return (f"{n_users:,} user(s) unknown to the model {got}"
                + (f" ({below_only:,} of them only rated below data.positive_rating_threshold: no positive to score "
                   "from)" if below_only else "") + " (flagged `fallback`)"
                + (f". They got {self.fallback_recency}." if self.fallback_recency else "."))

    def joined_since_note(self, users: Sequence[str]) -> str | None:
        """A note on the `users` the processed data knows but the checkpoint's id encoder does not (they joined
        after it was trained), or None: served from their interactions now, without an id embedding."""
        without_id = getattr(self.model, "users_without_id", None)
        if without_id is None:
            return None
        known = set(self.seen.users)
        later = without_id([user for user in users if user in known])
        if not later:
            return None
        return (f"{len(later):,} user(s) (e.g. {later[0]!r}) had no training interaction when the checkpoint was "
                "trained (they joined after it, or all their rows are in validation or test, or in the holdout "
                "training validated on): they are scored from the interactions they have now (history and item-item "
                "model), without an id embedding of their own; `mmrec train` again on data that holds them to learn "
                "one.")

    def gone_since(self, users: Sequence[str]) -> list[str]:
        """The `users` the checkpoint was trained on who have no interaction in the processed data now (deleted,
        expired, or dropped by preprocess since: on items no longer in the catalogue)."""
        trained = getattr(self.model, "users", None)
        if not isinstance(trained, IdEncoder):
            return []
        known = set(self.users)
        return [user for user in users if user not in known and user in trained]

    def gone_since_note(self, users: Sequence[str]) -> str | None:
        """A note on the users of `gone_since`, or None: the fallback serves them, not the profile the checkpoint
        kept."""
        gone = self.gone_since(users)
        if not gone:
            return None
        return (f"{len(gone):,} of the users unknown to the model (e.g. {gone[0]!r}) are in the checkpoint but have "
                "no interaction in the processed data now (deleted or expired since training): they got the "
                f"{self.fallback_name} list, not the profile the checkpoint kept.")

    @property
    def not_again(self) -> SeenItems:
        """The items each user is not recommended again (exclude_seen): interacted with or rated low."""
        return self.masked if self.masked is not None else self.seen

    @property
    def users(self) -> list[str]:
        """Every user the processed data knows: those with a positive interaction first, then those who only rated
        below data.positive_rating_threshold (no positive to score from: the fallback serves them, their items
        excluded)."""
        if self.masked is None:
            return list(self.seen.users)
        return list(self.masked.users)  # built from the positives, then the rated-below pairs: positives first

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def scores(self, users: Sequence[str], k: int) -> tuple[torch.Tensor, list[bool]]:
        """([b, n_items] float32 scores, which users got the fallback); never more than one chunk in memory.

        With an index, rows it serves are -inf outside their candidate pool (k x pool_factor + the
        chunk's largest seen count, plus as many of the cold items a validation-chosen shift lifts, the best as served:
        the model's `lifted_columns`), and the pool carries the model's exact scores.
        """
        is_fallback = [not self.model.is_known_user(u) for u in users]
        if self.index is None:
            scores = self.model.score(users, device=self.device).to(torch.float32)
        else:
            scores = self._approximate_scores(users, is_fallback, k)
        cold = [i for i, flag in enumerate(is_fallback) if flag]
        if cold:
            scores[cold] = self.fallback.score([users[i] for i in cold], device=scores.device).to(torch.float32)
        return scores, is_fallback

    def _approximate_scores(self, users: Sequence[str], is_fallback: list[bool], k: int) -> torch.Tensor:
        vectors, model_fallback = self.model.search_vectors(users)
        exact = np.asarray(is_fallback, dtype=bool) | model_fallback.cpu().numpy()  # popularity-served rows
        scores = torch.full((len(users), self.n_items), float("-inf"), device=self.device)
        served = np.flatnonzero(~exact)
        if len(served):
            served_users = [users[i] for i in served]
            most_seen = max(len(s) for s in self.not_again.rows(served_users)) if self.exclude_seen else 0
            pool = k * self.pool_factor + most_seen
            candidates = self.index.search(vectors[torch.as_tensor(served, device=vectors.device)], pool)
            # A blend scores whole rows anyway (Scorer.scores_full_rows): once per chunk, not per candidate call.
            full = (self.model.score(served_users, device=self.device).to(torch.float32)
                    if self.model.scores_full_rows else None)
            if full is not None and (lifted := self.model.lifted_columns) is not None:
                # The items a cold shift lifts, the best as they are served: the index ranks them lower.
                lifted = lifted.to(full.device)
                best = full[:, lifted].topk(min(pool, len(lifted)), dim=1).indices
                candidates = np.concatenate([candidates, lifted[best].cpu().numpy()], axis=1)  # repeats agree
            scores[torch.as_tensor(served, device=self.device)] = candidate_score_matrix(
                candidates, (lambda cols: full.gather(1, cols)) if full is not None else
                (lambda cols: self.model.score_columns(served_users, cols, self.device)), self.n_items, self.device)
        by_model = [i for i in np.flatnonzero(exact) if not is_fallback[i]]  # the model's own fallback rows
        if by_model:
            scores[by_model] = self.model.score([users[i] for i in by_model], device=self.device).to(torch.float32)
        return scores

    def top_k(self, users: Sequence[str], k: int) -> tuple[TopKLists, list[bool]]:
        """Per user the k best (unseen, unless exclude_seen is off) catalogue rows and scores; fallback flags."""
        scores, is_fallback = self.scores(users, k)
        seen = self.not_again.rows(users) if self.exclude_seen else None
        lists = finite_rows(*top_k_unseen(scores, seen, k))
        if self.new_slots and self.is_new is not None and self.is_new.any():
            lists = self._reserve_new(scores, lists, is_fallback, min(self.new_slots, k))
        return lists, is_fallback

    def _reserve_new(self, scores: torch.Tensor, lists: TopKLists, is_fallback: list[bool], slots: int) -> TopKLists:
        """The lists with at least `slots` new items each (users the model scores; a fallback ranks no new item),
        the best-scored new items (within the candidate pool when an index serves)."""
        columns = torch.from_numpy(np.flatnonzero(self.is_new)).to(scores.device)
        values, positions = torch.topk(scores[:, columns].to(torch.float32), min(slots, len(columns)), dim=1)
        out = []
        for (idx, val), (new_idx, new_val), fallback in zip(lists, finite_rows(columns[positions], values),
                                                              is_fallback, strict=True):
            out.append((idx, val) if fallback else reserve_new_items(idx, val, new_idx, new_val, slots, self.is_new))
        return out


def load_serving(settings: Settings, recommender_type: str, progress: ProgressCallback = null_progress,
                 ann_checked: bool = False) -> Serving:
    """Fit `recommender_type` (and the cold-user fallback) on every processed interaction (`ann_checked`: this run
    measures the approximate index's recall, --ann-check)."""
    inference = settings.inference
    if inference.ann != "none":
        require_faiss()  # before any loading: a missing extra fails fast
    if inference.ann != "none" and not hasattr(RECOMMENDERS.get(recommender_type), "search_vectors"):
        raise ConfigError(
            f"--ann {inference.ann} needs item vectors to index; the {recommender_type} recommender has none.",
            hint="Use --recommender-type multimodal, or drop --ann (inference.ann: none) to score exactly.",
        )
    if inference.new_items and not RECOMMENDERS.get(recommender_type).ranks_new_items:
        raise ConfigError(
            f"--new-items {inference.new_items} keeps places for items no interaction names yet, but the "
            f"{recommender_type} recommender learns from interactions alone: every new item gets the same score, "
            "so it could only fill those places with the same arbitrary items for every user.",
            hint="Use --recommender-type multimodal (it scores new items from their content: image, text or "
            "metadata, whichever they have), "
            "or drop --new-items (inference.new_items: 0).",
        )
    device = resolve_device(inference.device)
    items = load_items(Path(settings.paths.processed_dir))
    interactions = load_interactions(Path(settings.paths.processed_dir))
    item_ids = items["item_id"].tolist()
    titles = items["title"].astype(str).tolist() if "title" in items.columns else [""] * len(item_ids)
    model = load_recommender(recommender_type, settings, items, interactions, device, inference.checkpoint_name,
                             progress)
    fallback_name = settings.evaluation.cold_user_fallback
    index, notes = None, [note] if (note := stale_processed_note(settings)) else []
    spec = getattr(model, "spec", None)  # the multimodal checkpoint's
    recorded = spec.to_meta().get("item_item") if isinstance(spec, CheckpointSpec) else None  # its blend choices
    chosen = chosen_fallback(settings.evaluation, recorded, interactions)  # new users' list's recency, if chosen
    fallback = create_recommender(fallback_name, chosen[0] if chosen and chosen[0] else settings.evaluation).fit(
        interactions, item_ids)
    made_from = getattr(model, "checkpoint", None)
    if note := getattr(model, "served_note", None):
        notes.append(note)  # the finished model served while a newer run has not finished
    if isinstance(spec, CheckpointSpec) and made_from and (note := unfinished_note(spec.to_meta(),
                                                                                   Path(made_from["path"]))):
        notes.append(note)
    if isinstance(spec, CheckpointSpec) and (note := spec.features_note(settings.features, settings.model)):
        notes.append(note)
    if isinstance(spec, CheckpointSpec) and (note := trend_left_out_note(spec, interactions)):
        notes.append(note)
    if note := getattr(model, "categories_note", None):
        notes.append(note)
    # Each part's share of the final score (a later blend step at weight 1 leaves the parts before it nothing).
    shares = served_weights(recorded)
    new_items = int(getattr(model, "items_without_id", 0))
    if new_items:
        by = [how for part, how in (("two-tower", "from their content features by the two-tower network"),
                                    ("item-item", "by the item-item model from any interactions since"),
                                    ("content similarity", "by content similarity")) if part in shares]
        notes.append(f"{new_items:,} of {len(item_ids):,} catalogue items had no training interaction when the "
                     "checkpoint was trained (added since, only in val/test or in the holdout training validated on, "
                     "or never interacted with), so they have no id embedding: they are scored "
                     + (" and ".join(by) if by else "by the blend's other parts alone") + ".")
    if inference.ann != "none":
        index = ItemIndex(model.search_item_vectors(), inference.ann, inference.ann_nprobe)
        two_tower = shares.get("two-tower", 0.0)
        if two_tower <= ANN_TWO_TOWER_SHARE_NOTE:
            others = " and ".join(part for part in shares if part != "two-tower")
            notes.append(
                f"The index holds two-tower vectors, which carry {two_tower:.3g} of the checkpoint's final score "
                f"(the rest: {others}), so its candidate pool "
                + ("is no guess of the served top-K at all: score exactly (no --ann)." if two_tower == 0 else
                   "may miss items the other parts rank high"
                   + ("; this run's --ann-check measures how many" if ann_checked else
                      ". Measure it with --ann-check N") + "; raise inference.ann_pool_factor or score exactly "
                   "(no --ann) if it misses too many."))
    item_index = {item: j for j, item in enumerate(item_ids)}
    seen = SeenItems(interactions, item_index)
    rated_below, masked = load_rated_below(Path(settings.paths.processed_dir)), None
    if len(rated_below):
        masked = SeenItems(pd.concat([interactions[["user_id", "item_id"]], rated_below], ignore_index=True),
                           item_index)
    if len(rated_below) and inference.exclude_seen:
        notes.append(f"{len(rated_below):,} (user, item) pair(s) rated below data.positive_rating_threshold are "
                     "not recommended back: they count as seen, though not as liked.")
    is_new = ~pd.Series(item_ids).isin(set(interactions["item_id"]) | set(rated_below["item_id"])).to_numpy()
    if inference.new_items:
        notes.append(new_items_note(inference.new_items, int(is_new.sum()), len(item_ids), fallback_name,
                                    inference.ann != "none", rated_below=bool(len(rated_below))))
    return Serving(item_ids, titles, interactions, model, fallback, fallback_name, seen, inference.exclude_seen,
                   device, index, inference.ann_pool_factor, notes, is_new, inference.new_items, masked,
                   chosen[1] if chosen else "")


def new_items_note(slots: int, n_new: int, n_items: int, fallback_name: str, ann: bool = False,
                   rated_below: bool = False) -> str:
    """What --new-items N does with this catalogue (with an ANN index: among the candidates it returns). An item
    only rated below data.positive_rating_threshold (`rated_below`: some are) is not new: someone has seen it."""
    below = (" (a rating below data.positive_rating_threshold counts: the item is not new to the users, though "
             "not liked, and the model may still score it from content only)") if rated_below else ""
    if not n_new:
        return (f"--new-items {slots}: every catalogue item has an interaction{below}, so there is no new item to "
                "reserve places for.")
    held = (f"holds up to {min(slots, n_new)} of those among the candidates the approximate index returns (a "
            "list whose candidates hold none gets none; drop --ann to give every list its share)" if ann else
            f"holds at least {min(slots, n_new)} of them")
    return (f"--new-items {slots}: {n_new:,} of {n_items:,} catalogue items have no interaction yet{below}; each list "
            f"{held} (the best-scored for that user, flagged `new`), in its last places when they do not rank "
            f"higher on their own. Users served by the {fallback_name} fallback get none: it cannot rank new items. "
            "An item without interactions is new or one nobody chose: where item_info keeps items no longer on offer "
            "(last month's articles), leave them out of it, or they take these places too.")
