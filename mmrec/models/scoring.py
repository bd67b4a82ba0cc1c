"""The one scoring path: validation, `mmrec evaluate` and `mmrec recommend` all score users here.

A user's scores over the catalogue are the two-tower scores, blended with the closed-form
item-item model (mmrec.models.item_item), then with content similarity to the user's items
(mmrec.models.content_profile), then with item -> next-item transitions
(mmrec.models.transitions), then with popularity (mmrec.models.trend), at weights chosen on
validation (mmrec.training.blend); last, the cold items (no training interaction) are put in another
order among themselves, toward content similarity to the user's items (`reorder_cold`), keeping their
mean and spread in the row, so the other items keep their order. Numerics rule:
scoring always runs in float32 with autocast off (training may use bf16; scoring never does), so
the metric that chose a checkpoint and its blend is the metric evaluate reproduces.
"""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from collections.abc import Iterator, Sequence

import torch

from mmrec.models.content_profile import ContentProfileModel
from mmrec.models.inputs import ItemInputs
from mmrec.models.item_item import ItemItemModel, centred_std, standardize
from mmrec.models.trend import TrendModel
from mmrec.models.two_tower import TwoTowerModel


@contextlib.contextmanager
def _fp32_eval(model: TwoTowerModel, device: torch.device) -> Iterator[None]:
    """Eval mode (no dropout), no grad, autocast off; the model's previous mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
            yield
    finally:
        model.train(was_training)


class Scorer:
    """Scores of users over one catalogue from a two-tower model, blended with an optional item-item
    model (weight `blend`), then an optional content-profile model (weight `content_blend`), then an
    optional transition model (weight `sequence_blend`; an ItemItemModel over the transition matrix), then an
    optional trend model (weight `trend_blend`: popularity, recent or of all time, the same for every user).

    `histories` [n_rows, L] holds each profile row's recent catalogue rows (-1 = padding; row 0 =
    no history); every blend component's profiles use the same rows. Item vectors are
    computed once, here: build a new Scorer after the weights change.

    `fallback` [n_items]: the scores of a user with neither an id (0) nor a history (train popularity,
    log1p of the counts): validation, evaluate and recommend all serve such a user that list, here.

    `cold` (weight `cold_blend`): a content-profile model whose items without a profile interaction
    (`ContentProfileModel.cold_columns`) are reordered among themselves last (`reorder_cold`).

    `cold_shift` (with `shift_columns`, the items without a training interaction): last of all, those items'
    scores move by cold_shift x the user's score spread over the catalogue (`shift_cold`): every cold item shares
    the two-tower model's "no id" row, so where they stand against the warm items is one offset, chosen on
    validation (a split whose validation items are new wants them higher; mmrec.training.blend).
    """

    def __init__(self, model: TwoTowerModel, catalogue: ItemInputs, histories: torch.Tensor,
                 item_item: ItemItemModel | None = None, blend: float = 0.0,
                 content: ContentProfileModel | None = None, content_blend: float = 0.0,
                 sequence: ItemItemModel | None = None, sequence_blend: float = 0.0,
                 trend: TrendModel | None = None, trend_blend: float = 0.0,
                 fallback: torch.Tensor | None = None, cold: ContentProfileModel | None = None,
                 cold_blend: float = 0.0, shift_columns: torch.Tensor | None = None, cold_shift: float = 0.0) -> None:
        self.model, self.catalogue, self.histories = model, catalogue, histories
        self.fallback = fallback
        self.item_item, self.blend = item_item, float(blend)
        self.content, self.content_blend = content, float(content_blend)
        self.sequence, self.sequence_blend = sequence, float(sequence_blend)
        self.trend, self.trend_blend = trend, float(trend_blend)
        self.cold, self.cold_blend = cold, float(cold_blend)
        self.shift_columns, self.cold_shift = shift_columns, float(cold_shift)
        self.device = catalogue.ids.device
        with _fp32_eval(model, self.device):
            self.item_vectors = model.item_vectors(catalogue).float()  # [n_items, d]

    @property
    def n_items(self) -> int:
        return self.catalogue.n

    def with_item_item(self, item_item: ItemItemModel | None, blend: float) -> Scorer:
        """This scorer (same item vectors) blended with another item-item model / weight."""
        other = copy.copy(self)
        other.item_item, other.blend = item_item, float(blend)
        return other

    def with_content(self, content: ContentProfileModel | None, blend: float) -> Scorer:
        """This scorer (same item vectors and item-item blend) blended with a content-profile model."""
        other = copy.copy(self)
        other.content, other.content_blend = content, float(blend)
        return other

    def with_sequence(self, sequence: ItemItemModel | None, blend: float) -> Scorer:
        """This scorer (same item vectors, item-item and content blends) blended with a transition model."""
        other = copy.copy(self)
        other.sequence, other.sequence_blend = sequence, float(blend)
        return other

    def with_trend(self, trend: TrendModel | None, blend: float) -> Scorer:
        """This scorer (same item vectors and other blends) blended with a trend model."""
        other = copy.copy(self)
        other.trend, other.trend_blend = trend, float(blend)
        return other

    def with_cold(self, cold: ContentProfileModel | None, blend: float) -> Scorer:
        """This scorer (same item vectors and blends), its cold items reordered by another content model / weight."""
        other = copy.copy(self)
        other.cold, other.cold_blend = cold, float(blend)
        return other

    def with_fallback(self, fallback: torch.Tensor) -> Scorer:
        """This scorer, the users it cannot score (no id, no history) served `fallback` [n_items] instead."""
        other = copy.copy(self)
        other.fallback = fallback
        return other

    def with_cold_shift(self, columns: torch.Tensor | None, shift: float) -> Scorer:
        """This scorer (same item vectors, blends and cold order), the items at `columns` shifted by `shift`."""
        other = copy.copy(self)
        other.shift_columns, other.cold_shift = columns, float(shift)
        return other

    @property
    def shifts_cold(self) -> bool:
        """Whether the cold items' scores are shifted (a shift, and some cold item)."""
        return self.shift_columns is not None and self.cold_shift != 0 and len(self.shift_columns) > 0

    @property
    def lifted_columns(self) -> torch.Tensor | None:
        """The catalogue rows a positive cold shift lifts (an index over two-tower vectors ranks them where the
        two-tower model does, below where they are served), or None."""
        return self.shift_columns if self.shifts_cold and self.cold_shift > 0 else None

    @property
    def scores_full_rows(self) -> bool:
        """Whether a score at some columns needs the user's whole row: every blend component standardizes each row
        over the catalogue, the cold items' reordering reads every cold item, the shift a row's spread."""
        return self.blended or self.reorders_cold or self.shifts_cold

    @property
    def reorders_cold(self) -> bool:
        """Whether the cold items are reordered among themselves (a weight, and at least two of them)."""
        return self.cold is not None and self.cold_blend > 0 and len(self.cold.cold_columns) > 1

    def components(self) -> list[tuple[str, ItemItemModel | ContentProfileModel | TrendModel, float]]:
        """(name, model, weight) of the blend components that are on, in blending order."""
        named = (("item_item", self.item_item, self.blend), ("content", self.content, self.content_blend),
                 ("sequence", self.sequence, self.sequence_blend), ("trend", self.trend, self.trend_blend))
        return [(name, model, weight) for name, model, weight in named if model is not None and weight > 0]

    @property
    def blended(self) -> bool:
        """Whether any blend component is on (each standardizes rows over the whole catalogue)."""
        return bool(self.components())

    def user_vectors(self, user_idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """[b, d] float32 two-tower user vectors; user_idx [b] user-id indices (0 = unknown), rows [b] profile rows."""
        user_idx = torch.as_tensor(user_idx, device=self.device)
        rows = torch.as_tensor(rows, device=self.device)
        with _fp32_eval(self.model, self.device):
            return self.model.user_vectors(user_idx, self.histories[rows], self.item_vectors, self.catalogue).float()

    def scores(self, user_idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """[b, n_items] float32 scores; user_idx [b] user-id indices (0 = unknown), rows [b] profile rows."""
        return next(score_variants([self], user_idx, rows))

    def component_keys(self) -> list[tuple[str, ...]]:
        """Keys of the score components this scorer combines: two-tower, then each blend component that is on.

        Scorers derived from one another (`with_item_item`, `with_content`, `with_sequence`, `with_trend`) share the keys
        of the components they share, so `score_variants` computes each of those once.
        """
        return [("two_tower", str(id(self.model)), str(id(self.item_vectors))),
                *((name, str(id(model))) for name, model, _ in self.components())]

    def fallback_rows(self, user_idx: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """[b] bool: users with neither an id nor a history row, served `fallback` (none without one)."""
        user_idx = torch.as_tensor(user_idx, device=self.device)
        if self.fallback is None:
            return torch.zeros(len(user_idx), dtype=torch.bool, device=self.device)
        rows = torch.as_tensor(rows, device=self.device)
        return (user_idx == 0) & ~(self.histories[rows] >= 0).any(dim=1)

    def scores_at(self, user_idx: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """[b, c] = scores(user_idx, rows) at catalogue columns [b, c] (equal up to float rounding).

        Without a blend only the c columns are scored. Every blend component standardizes each row over
        the whole catalogue, and the cold items' reordering reads every cold item, so with either the full rows
        are scored and the columns picked from them.
        """
        columns = torch.as_tensor(columns, dtype=torch.long, device=self.device)
        if self.scores_full_rows:
            return self.scores(user_idx, rows).gather(1, columns)
        users = self.user_vectors(user_idx, rows)
        with _fp32_eval(self.model, self.device):
            scores = self.model.scores(users.unsqueeze(1), self.item_vectors[columns]).squeeze(1).float()
        fallback = self.fallback_rows(user_idx, rows)
        if fallback.any():
            scores[fallback] = self.fallback[columns[fallback]]
        return scores

    def shares(self, user_idx: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> dict[str, torch.Tensor]:
        """{component: [b, c]} each component's part of the scores at catalogue columns [b, c]: 'two_tower', then
        the names of `components()`. Every step of the blend is an affine map of a row (weights, then a
        re-standardization of rows already centred), so a column's score is the sum of its parts: the largest part
        says which component put the item where it is (explanations; users served `fallback` excluded). The
        cold items' reordering is affine on their columns too: there the parts are scaled and a 'cold' part (the
        content similarity, and the shift that keeps the cold items' mean) is added."""
        columns = torch.as_tensor(columns, dtype=torch.long, device=self.device)
        rows = torch.as_tensor(rows, device=self.device)
        with _fp32_eval(self.model, self.device):
            scores = self.model.scores(self.user_vectors(user_idx, rows), self.item_vectors).float()
        if not self.blended:
            return self._cold_shares({"two_tower": scores}, rows, columns)
        parts = {"two_tower": standardize(scores, inplace=True)}
        scale = {"two_tower": torch.ones(len(rows), 1, device=self.device)}
        steps = self.components()
        blended = parts["two_tower"]
        for step, (name, component, weight) in enumerate(steps):
            parts[name] = standardize(component.scores(rows).float(), inplace=True)
            scale = {key: value * (1.0 - weight) for key, value in scale.items()}
            scale[name] = torch.full((len(rows), 1), weight, device=self.device)
            blended = torch.mul(blended, 1.0 - weight).add_(parts[name], alpha=weight)
            if step < len(steps) - 1:  # re-standardized as score_variants does: the parts scale alike
                std = centred_std(blended)  # every part is centred, so their weighted sum is too
                blended = blended.div_(std)
                scale = {key: value / std for key, value in scale.items()}
        return self._cold_shares({key: scale[key] * part for key, part in parts.items()}, rows, columns)

    def _cold_shares(self, parts: dict[str, torch.Tensor], rows: torch.Tensor,
                     columns: torch.Tensor) -> dict[str, torch.Tensor]:
        """`parts` ({component: [b, n_items]}, summing to the blended scores) at `columns` [b, c], with the cold
        items' reordering and shift applied: on cold columns each part scaled by what the reordering keeps of the
        scores, and a 'cold' part holding what the two add."""
        if not (self.reorders_cold or self.shifts_cold):
            return {key: part.gather(1, columns) for key, part in parts.items()}
        total = torch.stack(list(parts.values())).sum(dim=0)
        factor = torch.ones_like(total)
        extra = torch.zeros_like(total)
        if self.reorders_cold:
            assert self.cold is not None
            cold = self.cold.cold_columns
            keep, added = reorder_cold(total[:, cold], cold_content(self.cold, rows), self.cold_blend)
            factor[:, cold] = keep.expand(-1, len(cold))
            extra[:, cold] = added
        if self.shifts_cold:
            assert self.shift_columns is not None
            extra[:, self.shift_columns] += shift_cold(total * factor + extra, self.cold_shift)
        return {**{key: (part * factor).gather(1, columns) for key, part in parts.items()},
                "cold": extra.gather(1, columns)}

    def search_item_vectors(self) -> torch.Tensor:
        """[n_items, d] item vectors in the space whose inner product ranks like the two-tower score."""
        return self.model.search_vectors(self.item_vectors)


def cold_content(model: ContentProfileModel, rows: torch.Tensor) -> torch.Tensor:
    """[b, c] the content similarity of profile `rows` to `model`'s cold columns, each row standardized over them
    (mean 0, population std 1; a row of equal values, e.g. no profile, all zeros)."""
    content = model.scores(rows, model.cold_columns).float()
    content = content - content.mean(dim=1, keepdim=True)
    spread = content.square().mean(dim=1, keepdim=True).sqrt()
    return torch.where(spread > 0, content / spread.clamp_min(1e-12), torch.zeros_like(content))


def reorder_cold(scores: torch.Tensor, content: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep [b, 1], added [b, c]): the cold items' new scores are keep * scores + added.

    scores [b, c]: the blended scores at the cold columns; content [b, c]: `cold_content` there. The new scores
    are mean + spread * mix / std(mix), mix = (1 - weight) * (scores - mean) / spread + weight * content, with
    the mean and (population) spread of each row's cold scores: the cold items keep where they stand in the
    list as a group (their mean and spread), and their order among themselves moves toward content similarity
    (weight 1: content alone). Rows without content signal (all zeros) keep their scores; cold items that tie
    everywhere are ordered by content within a spread of 1e-6 of the scale."""
    mean = scores.mean(dim=1, keepdim=True)
    centred = scores - mean
    spread = centred.square().mean(dim=1, keepdim=True).sqrt()
    spread = torch.where(spread > 0, spread, 1e-6 * (mean.abs() + 1.0))
    signal = content.abs().amax(dim=1, keepdim=True) > 0
    weights = torch.where(signal, torch.full_like(mean, float(weight)), torch.zeros_like(mean))
    mix = centred / spread * (1.0 - weights) + content * weights
    sigma = mix.square().mean(dim=1, keepdim=True).sqrt()
    sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    keep = (1.0 - weights) / sigma
    return keep, mean * (1.0 - keep) + content * (spread * weights / sigma)


def shift_cold(scores: torch.Tensor, shift: float) -> torch.Tensor:
    """[b, 1] what the cold items' scores move by: `shift` x each row's standard deviation over the catalogue."""
    return shift * scores.std(dim=1, keepdim=True).clamp_min(1e-8)  # a reduction: no copy of the rows


def matrices_per_chunk(scorers: Sequence[Scorer]) -> int:
    """[b, n_items] matrices `score_variants` holds at once for `scorers`: each distinct component's
    scores (the two-tower's raw and, when some scorer blends, standardized too), each shared blend
    prefix (`_shared_prefixes`), plus the one yielded."""
    keys = {key for scorer in scorers for key in scorer.component_keys()}
    return (len(keys) + int(any(scorer.blended for scorer in scorers)) + len(_shared_prefixes(scorers)) + 1
            + int(any(scorer.reorders_cold for scorer in scorers)))  # the cold items' content (a few columns)


def _prefix_keys(scorer: Scorer) -> list[tuple[object, ...]]:
    """Keys of the scorer's blends before its last component: key j = the two-tower scores blended with its
    first j + 1 components at their weights (what the next component is blended onto, standardized)."""
    tower_key, *blend_keys = scorer.component_keys()
    weights = [weight for _, _, weight in scorer.components()]
    steps = list(zip(blend_keys, weights))
    return [(tower_key, *steps[: j + 1]) for j in range(len(steps) - 1)]


def _shared_prefixes(scorers: Sequence[Scorer]) -> set[tuple[object, ...]]:
    """Blend prefixes (`_prefix_keys`) that more than one of `scorers` builds on: `score_variants` computes
    each once per chunk (a grid of weights for the last component on top of one chosen blend)."""
    counts = Counter(key for scorer in scorers for key in _prefix_keys(scorer))
    return {key for key, count in counts.items() if count > 1}


def score_variants(scorers: Sequence[Scorer], user_idx: torch.Tensor, rows: torch.Tensor) -> Iterator[torch.Tensor]:
    """[b, n_items] float32 scores of each scorer in turn, computing every shared component once.

    Scorers that share a two-tower model (and item vectors) or a blend component (e.g. the blend grid
    built with `with_item_item` / `with_content` / `with_sequence`) reuse that component's scores,
    standardized once per chunk: a grid of blend weights costs one pass over its components plus a
    weighted sum per weight. Each yielded matrix is the caller's to modify (never a cached component),
    with the numerics of `Scorer.scores` (this is its implementation).
    """
    raw: dict[tuple[str, ...], torch.Tensor] = {}  # the two-tower's scores
    fallback_rows: dict[tuple[int, int], torch.Tensor | None] = {}  # per (histories, fallback): its rows, or None
    z: dict[tuple[str, ...], torch.Tensor] = {}  # standardized components (rows: mean 0, std 1)
    shared = _shared_prefixes(scorers)
    blends: dict[tuple[object, ...], torch.Tensor] = {}  # standardized shared blend prefixes
    cold: dict[int, torch.Tensor] = {}  # per cold-items content model: `cold_content` of the chunk's rows
    rows_t = torch.as_tensor(rows)
    for scorer in scorers:
        device_rows = rows_t.to(scorer.device)
        tower_key, *blend_keys = scorer.component_keys()
        with _fp32_eval(scorer.model, scorer.device):
            if tower_key not in raw:
                users = scorer.user_vectors(user_idx, device_rows)
                raw[tower_key] = scorer.model.scores(users, scorer.item_vectors).float()
            if not blend_keys:
                # The cached component itself: a copy when later scorers may still read it.
                yield _finish(scorer, user_idx, device_rows,
                              raw[tower_key].clone() if len(scorers) > 1 else raw[tower_key], fallback_rows, cold)
                continue
            if tower_key not in z:  # in place when no other scorer will read the raw scores
                z[tower_key] = standardize(raw[tower_key], inplace=len(scorers) == 1)
            # Blend = (1 - w) z(base) + w z(component), base = the two-tower scores, then each blend so far
            # (re-standardized); a standardized prefix another scorer shares is computed once and kept.
            steps = list(zip(blend_keys, scorer.components()))
            prefixes = _prefix_keys(scorer)
            start = next((j + 1 for j in reversed(range(len(prefixes))) if prefixes[j] in blends), 0)
            base = blends[prefixes[start - 1]] if start else z[tower_key]
            for step in range(start, len(steps)):
                key, (_, component, weight) = steps[step]
                if key not in z:  # a component's fresh scores are ours: standardized in place
                    z[key] = standardize(component.scores(device_rows).float(), inplace=True)
                scores = torch.mul(base, 1.0 - weight).add_(z[key], alpha=weight)
                if step < len(steps) - 1:
                    base = standardize(scores, inplace=True)
                    if prefixes[step] in shared:
                        blends[prefixes[step]] = base
        yield _finish(scorer, user_idx, device_rows, scores, fallback_rows, cold)


def _finish(scorer: Scorer, user_idx: torch.Tensor, rows: torch.Tensor, scores: torch.Tensor,
            masks: dict[tuple[int, int], torch.Tensor | None], cold: dict[int, torch.Tensor]) -> torch.Tensor:
    """`scores` (the caller's own) with the cold items reordered (`reorder_cold`) and shifted (`shift_cold`), then
    the fallback list in the
    rows of users the model cannot score. The cold items' content and the fallback rows are worked out once per
    chunk for the scorers that share them (a grid of weights)."""
    if scorer.reorders_cold:
        assert scorer.cold is not None
        if id(scorer.cold) not in cold:
            cold[id(scorer.cold)] = cold_content(scorer.cold, rows)
        columns = scorer.cold.cold_columns
        at_cold = scores[:, columns]  # a copy (indexing by a tensor)
        keep, added = reorder_cold(at_cold, cold[id(scorer.cold)], scorer.cold_blend)
        scores[:, columns] = at_cold.mul_(keep).add_(added)
    if scorer.shifts_cold:
        scores[:, scorer.shift_columns] += shift_cold(scores, scorer.cold_shift)
    key = (id(scorer.histories), id(scorer.fallback))
    if key not in masks:
        rows_served = scorer.fallback_rows(user_idx, rows)
        masks[key] = rows_served if bool(rows_served.any()) else None
    if masks[key] is not None:
        scores[masks[key]] = scorer.fallback
    return scores
