"""Random and popularity baselines, the factory and the registry."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from mmrec.errors import ConfigError
from mmrec.recommenders import create_recommender
from mmrec.recommenders.popularity import PopularityRecommender
from mmrec.recommenders.random import RandomRecommender
from mmrec.settings import EvaluationSettings

TRAIN = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3"], "item_id": ["a", "b", "b", "b"]})
ITEMS = ["a", "b", "c"]


def test_random_is_seeded_and_batch_independent():
    model = RandomRecommender(seed=3).fit(TRAIN, ITEMS)
    together = model.score(["u1", "u2", "new"])
    alone = model.score(["u2"])
    assert torch.equal(together[1], alone[0])
    assert not torch.equal(together[0], together[1])
    other_seed = RandomRecommender(seed=4).fit(TRAIN, ITEMS).score(["u1"])
    assert not torch.equal(other_seed[0], together[0])


def test_popularity_counts_training_interactions():
    model = PopularityRecommender().fit(TRAIN, ITEMS)
    assert model.score(["u1", "unknown"]).tolist() == [[1.0, 3.0, 0.0]] * 2


def test_train_items_outside_catalogue_are_ignored():
    train = pd.concat([TRAIN, pd.DataFrame({"user_id": ["u1"], "item_id": ["zzz"]})])
    assert PopularityRecommender().fit(train, ITEMS).score(["u1"]).tolist() == [[1.0, 3.0, 0.0]]


def test_popularity_with_a_half_life_counts_what_is_popular_lately():
    day = 86_400
    # a: three interactions 20 days before the newest; b: two on the last day; zzz is outside the catalogue.
    train = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4", "u5", "u6"], "item_id": ["a", "a", "a", "zzz", "b", "b"],
                          "timestamp": [0, 0, 0, 5 * day, 20 * day, 20 * day]})
    assert PopularityRecommender().fit(train, ITEMS).score(["u1"]).tolist() == [[3.0, 2.0, 0.0]]
    model = create_recommender("popularity", EvaluationSettings(popularity_halflife_days=10))
    assert model.fit(train, ITEMS).score(["u1"])[0].tolist() == pytest.approx([0.75, 2.0, 0.0])
    with pytest.raises(ConfigError, match="no timestamp column"):
        model.fit(TRAIN, ITEMS)


@pytest.mark.parametrize("name", ["random", "item_knn", "user_knn"])
def test_factory_passes_the_evaluation_knobs(name):
    """(The fit/score contract of every registered recommender is in test_contract.py.)"""
    model = create_recommender(name, EvaluationSettings(knn_neighbors=7, knn_shrinkage=2.5, seed=9))
    if name.endswith("knn"):
        assert model.neighbors == 7 and model.shrinkage == 2.5
    if name == "random":
        assert model.seed == 9


def test_factory_rejects_unknown_name():
    with pytest.raises(ConfigError, match="Unknown recommender"):
        create_recommender("svd", EvaluationSettings())
