"""Pipeline-test fixtures."""

import pandas as pd
import pytest
import torch

from mmrec.data.encoders import fit_encoders
from mmrec.data.splits import load_split
from mmrec.data.tables import load_items
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
