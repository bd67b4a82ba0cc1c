"""Pipeline-test fixtures."""

import numpy as np
import pandas as pd
import pytest
import torch

from mmrec.data.encoders import fit_encoders
from mmrec.data.splits import load_split
from mmrec.data.tables import load_items
from mmrec.features.item_features import ItemFeatures
from mmrec.pipeline.evaluate import load_recommender
from mmrec.training.trainer import Trainer


@pytest.fixture
def validated(monkeypatch):
    """Every (scorer, validation metrics) the trainer's validation ranking produces while the test runs, in
    order (`validate`, `validate_many` and `validate_paired` all rank through it), over the items
    training.validate_on says (not the cold items' own ranking of the cold-item search)."""
    seen = []
    rank = Trainer._rank_validation

    def spy(trainer, scorers, per_user=False, candidates=None):
        results = rank(trainer, scorers, per_user, candidates)
        if candidates is None:
            seen.extend((scorer, result.metrics) for scorer, result in zip(scorers, results))
        return results

    monkeypatch.setattr(Trainer, "_rank_validation", spy)
    return seen


@pytest.fixture
def evaluate_on_validation():
    """root, settings -> (the multimodal recommender evaluate loads on the project's train split, the
    validation users' ids, their indices in the training run's user encoder)."""

    def load(root, settings):
        split = load_split(root / "splits")
        users = [str(u) for u in pd.unique(split.val["user_id"])]
        user_idx = torch.as_tensor(fit_encoders(split.train)[0].encode(users))
        recommender = load_recommender("multimodal", settings, load_items(root / "processed"), split.train,
                                       torch.device("cpu"))
        return recommender, users, user_idx

    return load


@pytest.fixture
def cluster_text(monkeypatch):
    """Text features that name each item's taste cluster (as tiny_project builds it: item j in cluster j % 4)."""

    def fake_load(items, *args, **kwargs):
        n = len(items)
        clusters = np.array([int(str(i)[1:]) % 4 for i in items["item_id"]])
        text = torch.nn.functional.one_hot(torch.as_tensor(clusters), 4).float()
        text += 0.05 * torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
        return ItemFeatures(vision=torch.zeros(n, 0), vision_mask=torch.zeros(n, dtype=torch.bool), text=text,
                            text_mask=torch.ones(n, dtype=torch.bool), combo="fake_text", vision_dim=0, text_dim=4,
                            computed=0)

    monkeypatch.setattr("mmrec.features.item_features.load_item_features", fake_load)
