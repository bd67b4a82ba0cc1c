"""The Recommender contract, checked for every registered recommender (timm style: a new one is
tested by registering it). Built through the public factory, fitted and scored on a tiny project;
the multimodal one from a tiny checkpoint trained here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tiny_project import write_tiny_project

from mmrec.data.splits import load_split
from mmrec.data.tables import load_items
from mmrec.inference.topk import finite_rows, top_k_unseen
from mmrec.recommenders import RECOMMENDERS, Recommender, create_recommender
from mmrec.settings import load_settings

@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """(root, settings, items, train split) of a tiny project: 30 users, 40 items, no backbones."""
    root = tmp_path_factory.mktemp("contract")
    settings = load_settings(write_tiny_project(root, epochs=1)).settings
    return root, settings, load_items(root / "processed"), load_split(root / "splits").train


@pytest.fixture(scope="module")
def multimodal_kwargs(project):
    """What create_recommender("multimodal", ...) needs: a tiny checkpoint trained for one epoch."""
    from mmrec.checkpoints import find_checkpoint
    from mmrec.pipeline.train import run_train

    root, settings, items, _ = project
    run_train(settings)
    path = find_checkpoint(settings.paths.checkpoint_dir, settings.features.combo,
                           name=settings.inference.checkpoint_name or "best_model.pth")
    return {"checkpoint_path": path, "items": items, "cache_dir": settings.paths.cache_dir,
            "cache": settings.cache, "device": "cpu"}


@pytest.fixture(params=RECOMMENDERS.names())
def fitted(request, project) -> Recommender:
    name = request.param
    _, settings, items, train = project
    kwargs = request.getfixturevalue("multimodal_kwargs") if name == "multimodal" else {}
    model = create_recommender(name, settings.evaluation, **kwargs)
    assert isinstance(model, Recommender) and model.name == name
    returned = model.fit(train, items["item_id"].tolist())
    assert returned is model
    return model


def test_every_recommender_is_registered_under_its_own_name():
    assert RECOMMENDERS.names()  # the registry fills itself on first use
    for name in RECOMMENDERS:
        cls = RECOMMENDERS.get(name)
        assert issubclass(cls, Recommender) and cls.name == name


def test_scores_cover_the_catalogue_in_order(fitted, project):
    _, _, items, train = project
    users = list(pd.unique(train["user_id"]))[:5]
    scores = fitted.score(users, device="cpu")
    assert fitted.item_ids == items["item_id"].tolist() and fitted.n_items == len(items)
    assert scores.shape == (5, len(items)) and scores.dtype == torch.float32
    assert torch.isfinite(scores).all()
    assert all(fitted.is_known_user(u) for u in users)


def test_scores_do_not_depend_on_the_batch_or_the_call(fitted, project):
    users = list(pd.unique(project[3]["user_id"]))[:4]
    together = fitted.score(users)
    alone = torch.cat([fitted.score([u]) for u in users])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fitted.score(users), together, rtol=0, atol=0)


def test_unknown_users_get_a_fallback_not_an_error(fitted):
    assert not fitted.is_known_user("nobody-knows-me")
    scores = fitted.score(["nobody-knows-me"])
    assert scores.shape == (1, fitted.n_items) and torch.isfinite(scores).all()


def test_recommendations_are_distinct_unseen_catalogue_items(fitted, project):
    train = project[3]
    user = str(train["user_id"].iloc[0])
    seen = np.array([fitted.item_index[i] for i in train.loc[train["user_id"] == user, "item_id"]])
    (idx, values), = finite_rows(*top_k_unseen(fitted.score([user]), [seen], k=10))
    assert len(idx) == 10 and len(set(idx.tolist())) == 10
    assert not set(idx.tolist()) & set(seen.tolist()) and (np.diff(values) <= 0).all()
