"""The trained two-tower model behind the Recommender API, rebuilt from its checkpoint file alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mmrec.checkpoints.spec import CheckpointSpec, TrainedCheckpoint, load_trained
from mmrec.checkpoints.store import checkpoint_provenance
from mmrec.data.encoders import IdEncoder
from mmrec.data.ids import positions
from mmrec.errors import CheckpointError, DataError
from mmrec.data.categories import CategoryVocab
from mmrec.models.catalogue import informative_columns, scaled_catalogue
from mmrec.models.histories import catalogue_index, user_histories
from mmrec.models.content_profile import ContentProfileModel
from mmrec.models.item_item import ItemItemModel, fit_item_item, item_item_profiles
from mmrec.models.item_item_store import ItemItemStore
from mmrec.models.scoring import Scorer
from mmrec.models.towers import ModelDims
from mmrec.models.transitions import transition_model
from mmrec.models.trend import TrendModel
from mmrec.models.two_tower import TwoTowerModel
from mmrec.progress import ProgressCallback, null_progress
from mmrec.recommenders.base import RECOMMENDERS, Recommender
from mmrec.settings import CacheSettings, FeaturesSettings

# One piece of evidence for a recommendation: (catalogue row of a liked item, measure, value).
Evidence = tuple[int, str, float]


@RECOMMENDERS.register("multimodal")
class MultimodalRecommender(Recommender):
    """Scores from mmrec.models.scoring.Scorer: two-tower scores blended with the item-item model.

    When the checkpoint records an item-item blend weight (`mmrec train` chose it on validation), the
    closed-form item-item model is refitted here on the `train` passed to fit, with the same content
    (or loaded from the fits stored beside the checkpoint when one was fitted from the same data),
    and the scores are (1 - w) z(two-tower) + w z(item-item) (mmrec.models.item_item); a recorded
    content weight c then gives (1 - c) z(that) + c z(content similarity) (mmrec.models.content_profile),
    and a recorded transition weight s (1 - s) z(that) + s z(transitions) (mmrec.models.transitions).

    Items added after training get id 0 and are scored from content. Users unknown to the encoder
    are served from their `train` history (user tower with the unknown-user id); with no history
    either, they get train popularity, counted in `fallback_users`.
    """

    name = "multimodal"
    ranks_new_items = True

    def __init__(self, model: TwoTowerModel, spec: CheckpointSpec, users: IdEncoder, items_encoder: IdEncoder,
                 items: pd.DataFrame, features: Any | None, device: torch.device | str = "cpu",
                 item_item_store: ItemItemStore | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.spec = spec
        self.users = users
        self.items_encoder = items_encoder
        self.items = items.reset_index(drop=True)
        self.features = features
        self.device = torch.device(device)
        self.fallback_users = 0
        self.scorer: Scorer | None = None
        # Share of the closed-form item-item model in the scores, as chosen on validation by `mmrec train`.
        self.item_item_blend = spec.item_item.blend if spec.item_item else 0.0
        self.item_item_halflife = spec.item_item.halflife if spec.item_item else 0.0
        self.item_item_store = item_item_store  # earlier fits of the item-item model, reused when the data match
        self.items_without_id = 0  # catalogue items without an id embedding (no train interaction; by fit)
        self._categories: np.ndarray | None = None  # catalogue rows' category value indices (by fit)
        self.categories_note: str | None = None  # items whose category values it never learned (by fit)
        self.checkpoint: dict[str, Any] | None = None  # checkpoint_provenance of the file it was loaded from
        self.served_note: str | None = None  # why that file is served, when not the one asked for (load_served)

    @classmethod
    def from_checkpoint(cls, path: Path | TrainedCheckpoint, *, items: pd.DataFrame, cache_dir: Path,
                        cache: CacheSettings,
                        device: torch.device | str = "cpu",
                        features: FeaturesSettings | None = None,
                        progress: ProgressCallback = null_progress) -> MultimodalRecommender:
        """Rebuild model and encoders from the checkpoint, and load the item features of its combo.

        `features`: the settings of this run. What the vectors are (backbones, token limit) is the checkpoint's;
        where the weights are and how extraction runs (features.*_weights when set, device, batch size, workers,
        downloads) is this run's, so a model serves after its backbone folder moved. Weights that are not the
        ones it trained with are refused (check_feature_identities)."""
        trained = path if isinstance(path, TrainedCheckpoint) else load_trained(Path(path), device)
        path = trained.path
        spec = trained.spec
        model_cfg, features_cfg = spec.model_settings(), spec.features_settings()
        if features is not None:
            here = {key: getattr(features, key) for key in features.RUN_KEYS}
            # This run's weights paths, for the backbones it shares with the checkpoint (a config of another combo
            # names another backbone's weights: applied to this one's, they were refused as not its model).
            here |= {key: getattr(features, key) for key in features.LOCATION_KEYS
                     if getattr(features, key) is not None
                     and getattr(features, key.replace("_weights", "_backbone"))
                     == getattr(features_cfg, key.replace("_weights", "_backbone"))}
            features_cfg = features_cfg.model_copy(update=here)
        dims = ModelDims(**spec.model_args)
        features = None
        if model_cfg.modalities:
            from mmrec.features.item_features import load_item_features

            features = load_item_features(  # says what it copies or computes
                items, features_cfg, cache, Path(cache_dir), device, progress, modalities=model_cfg.modalities,
                check_identities=lambda identities: spec.check_feature_identities(identities, Path(path)))
            spec.check_feature_identities(features.identities, Path(path))
            for name, want in (("vision", dims.vision_dim), ("text", dims.text_dim)):
                have = getattr(features, f"{name}_dim")
                if want and have == 0:  # no item has this content now: all missing, as the mask says
                    features = features.widened(name, want)
                elif want and have != want:
                    raise CheckpointError(
                        f"The {name} features of {features.combo} have {have} dims; the checkpoint expects {want}.",
                        hint="Use the backbone weights the model was trained with (see `mmrec checkpoints info`).",
                    )
        model = TwoTowerModel(model_cfg, dims)
        try:
            model.load_state_dict(trained.weights)
        except RuntimeError as exc:
            raise CheckpointError(f"Weights in {path} do not fit the recorded model: {str(exc)[:300]}",
                                  hint="Retrain with `mmrec train`.") from None
        recommender = cls(model.to(device), spec, trained.users, trained.items, items, features, device,
                          ItemItemStore.beside(trained.path, cache.item_item_fits))
        recommender.checkpoint = checkpoint_provenance(trained.path, trained.meta)
        return recommender

    def content_of(self, item: int) -> list[str]:
        """What the model reads of catalogue row `item` besides interactions: image, text, metadata (each when
        the model uses it and the item has it)."""
        cfg, features, parts = self.model.cfg, self.features, []
        for name, used, modality in (("image", cfg.use_vision, "vision"), ("text", cfg.use_text, "text")):
            if used and features is not None and bool(getattr(features, f"{modality}_mask")[item]):
                parts.append(name)
        if cfg.use_numeric and self.spec.numeric.columns:
            parts.append("metadata")
        if cfg.use_categories and self._categories is not None and bool(self._categories[item].any()):
            parts.append("categories")
        return parts

    def fit(self, train: pd.DataFrame, item_ids: Sequence[str]) -> MultimodalRecommender:
        """Record train histories and popularity, fit the item-item model, cache the item vectors (no training)."""
        if [str(i) for i in item_ids] != self.items["item_id"].astype(str).tolist():
            raise DataError("item_ids passed to fit differ from the items the recommender was loaded with.",
                            hint="Pass items.item_id in the same order as the `items` table.")
        self._index_catalogue(train, item_ids)
        numeric = self.spec.numeric
        ids = self.items_encoder.encode(self.item_ids)
        # id 0, or an id row given row 0's values: no training interaction then (a validation holdout's own items)
        self.items_without_id = int(self.model.read_as_unseen("item", len(self.items_encoder))[ids].sum())
        scaler = numeric.build_scaler()
        columns = numeric.columns
        if scaler.mean is not None and len(columns) + 1 != len(scaler.mean):
            # A checkpoint written before the columns it trained on were recorded (it holds the configured ones,
            # some left out for want of values): those, as training chose them then.
            columns = informative_columns(self.items, columns)
        categories, self.categories_note = (CategoryVocab(self.spec.categories).read(
            self.items, self.model.cfg.category_min_items) if self.spec.categories else (None, None))
        self._categories = categories
        catalogue = scaled_catalogue(self.items, ids, self.features, columns, scaler, train, self.device, categories)
        # Profile rows = local train-user index + 1 (row 0 = no train history): users unknown to the
        # encoder but present in `train` are still served from their history.
        local = IdEncoder(list(self.user_index), "user")
        rows = catalogue_index(self.item_ids)
        histories = torch.as_tensor(user_histories(train, local, rows, self.model.history_length),
                                    device=self.device)
        found = positions(train["item_id"], rows.index)
        counts = np.bincount(rows.to_numpy()[found[found >= 0]], minlength=self.n_items)
        self._popularity = torch.as_tensor(np.log1p(counts), dtype=torch.float32, device=self.device)
        item_item = None
        blend = self.spec.item_item
        if blend is not None and blend.fallback_halflife_days and (  # recent popularity, as validation chose
                recent := TrendModel.build(train, rows, blend.fallback_halflife_days, self.device)) is not None:
            self._popularity = recent.values
        if self.item_item_blend > 0 and blend is not None:
            cfg = self.model.cfg.model_copy(update={"item_item_l2": blend.l2})  # lambda as chosen on validation
            if self.n_items > cfg.item_item_max_items:
                raise DataError(
                    f"The catalogue has {self.n_items:,} items, more than model.item_item_max_items "
                    f"({cfg.item_item_max_items:,}) the checkpoint's item-item model allows.",
                    hint="Retrain with a larger model.item_item_max_items, or with model.item_item=false.",
                )
            item_item = fit_item_item(train, local, rows, catalogue, cfg, self.item_item_halflife, self.device,
                                      self.item_item_store, self.announce)
        # The content blend's and the cold items' content models (one per modality, on one profile matrix).
        content_of = {"content": (blend.content_modality, blend.content_blend),
                      "cold": (blend.cold_modality, blend.cold_blend)} if blend is not None else {}
        wanted = {name: modality for name, (modality, weight) in content_of.items() if modality and weight > 0}
        built: dict[str, ContentProfileModel] = {}
        if wanted:
            profiles = item_item_profiles(train, local, rows, 0.0)
            built = {modality: ContentProfileModel.build(catalogue, modality, profiles)
                     for modality in set(wanted.values())}
        content, cold = (built[wanted[name]] if name in wanted else None for name in ("content", "cold"))
        sequence = None
        if blend is not None and blend.sequence_blend > 0:
            sequence = transition_model(train, local, rows, blend.sequence_window, blend.sequence_halflife,
                                        self.device, blend.sequence_directions)
        trend = None
        if blend is not None and blend.trend_blend > 0:
            trend = TrendModel.build(train, rows, blend.trend_halflife_days, self.device)
        self.scorer = Scorer(self.model, catalogue, histories, item_item, self.item_item_blend,
                             content, blend.content_blend if content is not None else 0.0,
                             sequence, blend.sequence_blend if sequence is not None else 0.0,
                             trend, blend.trend_blend if trend is not None else 0.0, fallback=self._popularity,
                             cold=cold, cold_blend=blend.cold_blend if cold is not None else 0.0,
                             shift_columns=torch.as_tensor(np.flatnonzero(counts == 0), device=self.device)
                             if blend is not None and blend.cold_shift else None,
                             cold_shift=blend.cold_shift if blend is not None else 0.0)
        return self

    def _require_fit(self) -> Scorer:
        if self.scorer is None:
            raise RuntimeError("call fit(train, item_ids) before scoring")
        return self.scorer

    def users_without_id(self, user_ids: Sequence[str]) -> list[str]:
        """The `user_ids` the model has no id embedding of: unknown to its encoder, or known only from a validation
        holdout (their id row is row 0's)."""
        unseen = self.model.read_as_unseen("user", len(self.users))
        return [user for user, index in zip(user_ids, self.users.encode(list(user_ids)), strict=True) if unseen[index]]

    def _profile_row(self, user_id: str) -> int:
        return self.user_index.get(str(user_id), -1) + 1

    def _user_inputs(self, user_ids: Sequence[str], count: bool = True) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  torch.Tensor]:
        """(user-id indices [b], profile rows [b], popularity-fallback mask [b]); counts the fallback users."""
        scorer = self._require_fit()
        user_ids = [str(u) for u in user_ids]
        idx = torch.as_tensor(self.users.encode(user_ids), device=self.device)
        rows = torch.as_tensor([self._profile_row(u) for u in user_ids], device=self.device)
        fallback = scorer.fallback_rows(idx, rows)  # neither an id nor recent train items
        if count:
            self.fallback_users += int(fallback.sum())
        return idx, rows, fallback

    def score(self, user_ids: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        """[len(user_ids), n_items] float32 scores on `device`."""
        idx, rows, _ = self._user_inputs(user_ids)  # the scorer serves the fallback users their list
        return self._require_fit().scores(idx, rows).to(device)

    def score_columns(self, user_ids: Sequence[str], columns: torch.Tensor,
                      device: torch.device | str = "cpu") -> torch.Tensor:
        """[b, c] = score(user_ids) at catalogue columns [b, c], scoring only those columns when it can."""
        idx, rows, _ = self._user_inputs(user_ids)
        columns = torch.as_tensor(columns, dtype=torch.long, device=self.device)
        return self._require_fit().scores_at(idx, rows, columns).to(device)

    def search_vectors(self, user_ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(user vectors [b, d] for an inner-product index over `search_item_vectors`, fallback mask [b]).

        Rows of the mask are users served by popularity: their vectors rank nothing, score them exactly.
        Only the two-tower part has vectors; the item-item blend is applied by `score_columns`.
        """
        idx, rows, fallback = self._user_inputs(user_ids, count=False)  # counted when the rows are scored
        return self.model.search_vectors(self._require_fit().user_vectors(idx, rows)), fallback

    def search_item_vectors(self) -> torch.Tensor:
        """[n_items, d] item vectors whose inner product with `search_vectors` ranks like the two-tower score."""
        return self._require_fit().search_item_vectors()

    @property
    def scores_full_rows(self) -> bool:
        """Whether `score_columns` scores whole rows anyway (Scorer.scores_full_rows)."""
        return self._require_fit().scores_full_rows

    @property
    def lifted_columns(self) -> torch.Tensor | None:
        """The catalogue rows a positive cold shift lifts, which a candidate pool from an index misses
        (Scorer.lifted_columns), or None."""
        return self._require_fit().lifted_columns

    def liked_item_evidence(self, user_id: str, item_idx: Sequence[int],
                            liked: Sequence[int] = ()) -> list[tuple[str, Evidence | None]]:
        """Per recommended row: (the blend component with the largest share of its score, `Scorer.shares`; the
        item the user liked that supports it through that component, or None).

        item_item / sequence: the training item j with the largest positive contribution x_uj * B_ji to that
        component's score ("item_item_contribution" / "transition_contribution"), only when i is among j's 5%
        largest ties (dense B). content: among `liked`
        (catalogue rows), the one whose content is most cosine-similar ("content_similarity"); cold (a cold item put
        there by its order among the cold items) the same with that model's content. two_tower: the
        liked item whose item vector is most cosine-similar ("similarity"), only when the recommended item is
        among that item's 5% nearest in the catalogue (else a weak likeness is no reason). trend: none
        (popularity). A user the model cannot score (served the popularity list) gets ("trend", None).
        """
        scorer = self._require_fit()
        columns = torch.as_tensor(list(item_idx), dtype=torch.long, device=self.device)
        if not len(columns):
            return []
        idx, rows, fallback = self._user_inputs([user_id], count=False)
        if bool(fallback[0]):
            return [("trend", None)] * len(columns)
        shares = scorer.shares(idx, rows, columns.unsqueeze(0))
        # A component with no part in the score (blend weight 0: its scale is 0) is never credited, even where
        # every other part is negative (an item far down a long list).
        names = [name for name, share in shares.items() if bool(share.any())] or list(shares)
        credited = [names[i] for i in torch.stack([shares[n][0] for n in names]).argmax(dim=0).tolist()]
        history = torch.as_tensor(list(liked), dtype=torch.long, device=self.device)
        evidence: dict[str, list[Evidence | None]] = {}
        if "two_tower" in credited:
            evidence["two_tower"] = self._nearest_liked(scorer.item_vectors, history, columns, "similarity", 0.05)
        for name, model in (("content", scorer.content), ("cold", scorer.cold)):
            if name in credited and model is not None:
                evidence[name] = self._nearest_liked(model.features, history, columns, "content_similarity")
        for name, model, measure in (("item_item", scorer.item_item, "item_item_contribution"),
                                     ("sequence", scorer.sequence, "transition_contribution")):
            if name in credited and model is not None:
                evidence[name] = self._largest_contribution(model, int(rows[0]), columns, measure)
        return [(name, evidence[name][k] if name in evidence else None) for k, name in enumerate(credited)]

    def _nearest_liked(self, vectors: torch.Tensor, history: torch.Tensor, columns: torch.Tensor, measure: str,
                       top_share: float | None = None) -> list[Evidence | None]:
        """Per column, the liked item (of `history`) whose row of `vectors` is most cosine-similar, when positive and,
        with `top_share`, when the column is among that item's `top_share` nearest catalogue items."""
        if not len(history):
            return [None] * len(columns)
        unit = F.normalize(vectors.float(), dim=1)
        best, where = (unit[history] @ unit[columns].T).max(dim=0)  # [k]
        out: list[Evidence | None] = []
        for column, w, value in zip(columns.tolist(), where.tolist(), best.tolist()):
            source = int(history[w])
            near = True
            if top_share is not None:
                catalogue = unit @ unit[source]  # [n_items]: how close the catalogue is to the liked item
                near = _among_strongest(catalogue, column, top_share)
            out.append((source, measure, float(value)) if value > 0 and near else None)
        return out

    def _largest_contribution(self, model: ItemItemModel, row: int, columns: torch.Tensor,
                              measure: str, top_share: float = 0.05) -> list[Evidence | None]:
        """Per column j, the profile item i with the largest positive x_ui * B_ij of `model` (item-item or
        transitions) for profile `row`; with a dense B, only when j is among i's `top_share` largest B_i. (a weak
        tie to an unrelated item down a long list is no reason; a sparse B keeps only each item's nearest)."""
        profile = model.interactions[row]
        if not profile.nnz:
            return [None] * len(columns)
        liked = torch.as_tensor(profile.indices, dtype=torch.long, device=self.device)
        weights = torch.as_tensor(profile.data, dtype=torch.float32, device=self.device)
        contribution = weights.unsqueeze(1) * model.pair_weights(liked, columns).float()  # [|liked|, k]
        best, where = contribution.max(dim=0)
        out: list[Evidence | None] = []
        for column, w, value in zip(columns.tolist(), where.tolist(), best.tolist()):
            source = int(liked[w])
            near = True
            if not model.is_sparse:
                ties = model.weights[source]  # [n_items]: B_i., what the liked item lends each item
                near = _among_strongest(ties, column, top_share)
            out.append((source, measure, float(value)) if value > 0 and near else None)
        return out

    def item_embeddings(self) -> torch.Tensor:
        """[n_items, d] item vectors of the fitted catalogue."""
        return self._require_fit().item_vectors


def _among_strongest(values: torch.Tensor, column: int, top_share: float) -> bool:
    """Whether `column` is among the `top_share` largest of `values` [n_items] (at least the largest one): a liked
    item names a recommended one as its reason only when their tie is one of its strongest."""
    return int((values > values[column]).sum()) < max(1, int(top_share * len(values)))
