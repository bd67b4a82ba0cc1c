import numpy as np
import pandas as pd
import pytest
import torch
from tiny_project import write_tiny_project

from mmrec.data.splits import load_split
from mmrec.data.tables import load_items
from mmrec.errors import CheckpointError, DataError
from mmrec.pipeline.train import run_train
from mmrec.recommenders.base import RECOMMENDERS
from mmrec.recommenders.multimodal import MultimodalRecommender
from mmrec.settings import CacheSettings, load_settings


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("mm")
    config = write_tiny_project(root, epochs=3)
    settings = load_settings(config).settings
    result = run_train(settings)
    return root, settings, result


def load(root, settings, items=None):
    items = load_items(root / "processed") if items is None else items
    path = root / "checkpoints" / settings.features.combo / "best_model.pth"
    return MultimodalRecommender.from_checkpoint(path, items=items, cache_dir=root / "cache", cache=CacheSettings(),
                                                 device="cpu"), items


def test_registered():
    assert RECOMMENDERS.get("multimodal") is MultimodalRecommender


def test_rebuilt_model_reproduces_the_training_validation_metric(trained):
    root, settings, result = trained
    from mmrec.evaluation.full_ranking import full_ranking
    from mmrec.data.encoders import fit_encoders
    from mmrec.training.data import build_training_data

    recommender, items = load(root, settings)
    split = load_split(root / "splits")
    recommender.fit(split.train, items["item_id"].tolist())
    users, _ = fit_encoders(split.train)
    data = build_training_data(split.train, split.val, items["item_id"].tolist(), users, 0)
    val_users = list(pd.unique(split.val["user_id"]))
    metrics = full_ranking(lambda rows: recommender.score([val_users[i] for i in rows]), data.val_relevant,
                           data.val_exclude, [10]).metrics
    # Default: the two-tower scores blended with the components (item-item, content, transitions) at the
    # weights chosen on validation.
    assert result.item_item is not None and recommender.item_item_blend == result.item_item["blend"]
    assert metrics["ndcg@10"] == pytest.approx(result.item_item["monitored"], abs=1e-6)
    # Without the blends: exactly the two-tower model's best validation metric.
    recommender.item_item_blend = 0.0
    recommender.fit(split.train, items["item_id"].tolist())
    recommender.scorer = recommender.scorer.with_content(None, 0.0).with_sequence(None, 0.0)
    metrics = full_ranking(lambda rows: recommender.score([val_users[i] for i in rows]), data.val_relevant,
                           data.val_exclude, [10]).metrics
    assert metrics["ndcg@10"] == pytest.approx(result.best_metric, abs=1e-6)
    assert recommender.item_embeddings().shape == (len(items), 8)


def fitted(trained, blend):
    """The trained checkpoint as a recommender with item-item weight `blend`, fitted on the train split."""
    root, settings, _ = trained
    recommender, items = load(root, settings)
    recommender.item_item_blend = blend
    train = load_split(root / "splits").train
    item_ids = items["item_id"].tolist()
    return recommender.fit(train, item_ids), train, item_ids


def with_popularity(recommender, train, item_ids, weight):
    """The recommender's scorer with popularity of all time blended on top at `weight`."""
    from mmrec.models.histories import catalogue_index
    from mmrec.models.trend import TrendModel

    recommender.scorer = recommender.scorer.with_trend(TrendModel.build(train, catalogue_index(item_ids), 0.0), weight)
    return recommender


def test_the_parts_of_a_blended_score_add_up_to_it(trained):
    recommender, train, item_ids = fitted(trained, 0.5)
    scorer = with_popularity(recommender, train, item_ids, 0.3).scorer
    assert len(scorer.components()) >= 2 and scorer.item_item is not None
    users = [str(u) for u in pd.unique(train["user_id"])[:4]]
    idx, rows, _ = recommender._user_inputs(users, count=False)
    columns = torch.tensor([[0, 3, 7, 11, 39]] * len(users))
    shares = scorer.shares(idx, rows, columns)
    assert list(shares) == ["two_tower", *(name for name, _, _ in scorer.components())]
    torch.testing.assert_close(sum(shares.values()), scorer.scores(idx, rows).gather(1, columns), atol=1e-4, rtol=1e-4)
    alone = scorer.with_item_item(None, 0.0).with_content(None, 0.0).with_sequence(None, 0.0).with_trend(None, 0.0)
    torch.testing.assert_close(alone.shares(idx, rows, columns)["two_tower"],
                               alone.scores(idx, rows).gather(1, columns))


def test_the_cold_items_reordering_has_its_part_and_its_reason(trained):
    from mmrec.inference.reasons import reasons_for
    from mmrec.models.content_profile import ContentProfileModel

    recommender, train, item_ids = fitted(trained, 0.5)
    scorer = recommender.scorer
    profiles = scorer.item_item.interactions.tolil()
    cold = [3, 7, 11, 20, 39]
    profiles[:, cold] = 0  # as if nobody had these items in training
    features = torch.nn.functional.normalize(torch.randn(len(item_ids), 6, generator=torch.Generator().manual_seed(0)))
    content = ContentProfileModel.build(scorer.catalogue, "text", profiles.tocsr())
    content.features = features  # the fixture's catalogue has no text: some content of its own
    recommender.scorer = scorer = scorer.with_cold(content, 1.0)
    users = [str(u) for u in pd.unique(train["user_id"])[:4]]
    idx, rows, _ = recommender._user_inputs(users, count=False)
    columns = torch.tensor([[0, 3, 7, 11, 39]] * len(users))
    shares = scorer.shares(idx, rows, columns)
    assert list(shares) == ["two_tower", *(name for name, _, _ in scorer.components()), "cold"]
    torch.testing.assert_close(sum(shares.values()), scorer.scores(idx, rows).gather(1, columns), atol=1e-4, rtol=1e-4)
    assert not shares["cold"][:, 0].any() and shares["cold"][:, 1:].any()  # a part of the cold items' scores only
    # A cold item the reordering put first among the cold ones, where content leads its score, says so.
    user = users[0]
    liked = train.loc[train["user_id"].astype(str) == user, "item_id"].astype(str)
    history = np.array(sorted(item_ids.index(i) for i in set(liked)))
    credited = scorer.shares(idx[:1], rows[:1], torch.as_tensor([cold]))
    names = list(credited)
    led = [j for k, j in enumerate(cold) if max(names, key=lambda n: float(credited[n][0, k])) == "cold"
           and j not in set(history)]
    assert led
    (reason,) = reasons_for(recommender, user, np.array(led[:1]), history, item_ids, [f"T{i}" for i in item_ids], None)
    assert reason["component"] == "cold"
    assert reason["why"].startswith("no interaction to learn from yet; similar in content to")


def test_reasons_name_the_blend_part_that_put_each_item_there(trained):
    from mmrec.inference.reasons import reasons_for

    recommender, train, item_ids = fitted(trained, 0.5)
    with_popularity(recommender, train, item_ids, 0.5)
    titles = [f"Title {i}" for i in item_ids]
    user = str(train["user_id"].iloc[0])
    liked = set(train.loc[train["user_id"].astype(str) == user, "item_id"].astype(str))
    history = np.array([item_ids.index(i) for i in sorted(liked)])
    scores = recommender.score([user])[0]
    scores[torch.from_numpy(history)] = float("-inf")  # as recommend lists them: the user's own items left out
    top = scores.topk(10).indices
    reasons = reasons_for(recommender, user, top.numpy(), history, item_ids, titles, None)
    idx, rows, _ = recommender._user_inputs([user], count=False)
    shares = recommender.scorer.shares(idx, rows, top.unsqueeze(0))
    names = list(shares)
    for k, reason in enumerate(reasons):  # the component with the largest part of the item's score is credited
        assert reason["component"] == max(names, key=lambda name: float(shares[name][0, k]))
    assert {r["component"] for r in reasons} >= {"trend", "item_item"}  # each leads some of the items
    for reason in reasons:
        if reason["component"] == "trend":
            assert reason["why"] == "popular with other users" and "similar_to" not in reason
        if "item_item_contribution" in reason:
            assert reason["component"] == "item_item" and reason["similar_to"] in liked
            assert reason["why"] == f"because you liked Title {reason['similar_to']}"
    # The item-item evidence is the training item with the largest x_uj * B_ji.
    item_item = recommender.scorer.item_item
    profile = item_item.interactions[recommender.user_index[user] + 1]
    column = int(top[0])
    found = recommender._largest_contribution(item_item, recommender.user_index[user] + 1, top[:1],
                                              "item_item_contribution")[0]
    contributions = profile.data * item_item.weights[profile.indices, column].numpy()
    assert found[1:] == ("item_item_contribution", pytest.approx(contributions.max(), rel=1e-5))
    assert found[0] == profile.indices[contributions.argmax()]
    assert recommender.liked_item_evidence("nobody", [0]) == [("trend", None)]  # served the popularity list


def test_without_a_blend_reasons_name_a_liked_item_only_when_the_item_is_among_its_nearest(trained):
    from mmrec.inference.reasons import reasons_for

    recommender, _, item_ids = fitted(trained, 0.0)
    recommender.scorer = recommender.scorer.with_content(None, 0.0).with_sequence(None, 0.0).with_trend(None, 0.0)
    history = np.array([0, 5, 9])
    vectors = torch.nn.functional.normalize(recommender.item_embeddings(), dim=1)
    candidates = np.setdiff1d(np.arange(len(item_ids)), history)  # the user's own items say "you have it already"
    reasons = reasons_for(recommender, "u0", candidates, history, item_ids, item_ids, None)
    nearest = max(1, int(0.05 * len(item_ids)))
    named = 0
    for reason, j in zip(reasons, candidates):
        assert reason["component"] == "two_tower"
        source = int(history[(vectors[history] @ vectors[j]).argmax()])
        rank = int(((vectors @ vectors[source]) > (vectors @ vectors[source])[j]).sum())
        if rank < nearest and float(vectors[source] @ vectors[j]) > 0:
            named += 1
            assert reason["similar_to"] == item_ids[source] and reason["why"] == f"because you liked {item_ids[source]}"
        else:  # a weak likeness is no reason: the user's history as a whole put it there
            assert reason["why"] == "fits your history as a whole" and "similar_to" not in reason
    assert 0 < named < len(candidates)


def test_item_item_names_a_liked_item_only_when_the_item_is_among_its_strongest_ties(trained):
    # Down a long list, "because you liked X" named an unrelated X whose tie was tiny (contribution 0.0006).
    recommender, train, item_ids = fitted(trained, 0.5)
    item_item = recommender.scorer.item_item
    user = str(train["user_id"].iloc[0])
    row = recommender.user_index[user] + 1
    profile = item_item.interactions[row]
    columns = torch.arange(len(item_ids))
    found = recommender._largest_contribution(item_item, row, columns, "item_item_contribution")
    ties = item_item.weights  # dense here: B[i, j], what liked item i lends item j
    strongest = max(1, int(0.05 * len(item_ids)))
    named = 0
    for j, evidence in enumerate(found):
        contributions = profile.data * ties[profile.indices, j].numpy()
        source = int(profile.indices[contributions.argmax()])
        rank = int((ties[source] > ties[source, j]).sum())
        if contributions.max() > 0 and rank < strongest:
            named += 1
            assert evidence == (source, "item_item_contribution", pytest.approx(contributions.max(), rel=1e-5))
        else:
            assert evidence is None
    assert 0 < named < len(item_ids)


def test_catalogue_beyond_the_item_item_limit_is_a_clear_error(trained):
    root, settings, _ = trained
    recommender, items = load(root, settings)
    recommender.item_item_blend = 0.5
    recommender.model.cfg = recommender.model.cfg.model_copy(update={"item_item_max_items": 5})
    with pytest.raises(DataError, match="more than model.item_item_max_items"):
        recommender.fit(load_split(root / "splits").train, items["item_id"].tolist())


def test_new_items_and_unknown_users(trained):
    root, settings, _ = trained
    items = load_items(root / "processed")
    new_item = items.iloc[[0]].assign(item_id="brand-new")
    recommender, items = load(root, settings, pd.concat([items, new_item], ignore_index=True))
    split = load_split(root / "splits")
    stranger = pd.DataFrame({"user_id": ["newcomer"] * 2, "item_id": ["i0", "i4"], "timestamp": [1, 2]})
    recommender.fit(pd.concat([split.train, stranger], ignore_index=True), items["item_id"].tolist())
    scores = recommender.score(["u0", "newcomer", "ghost"])
    assert scores.shape == (3, len(items)) and torch.isfinite(scores).all()
    assert recommender.fallback_users == 1  # only "ghost" has neither an id nor a history
    assert not torch.equal(scores[1], scores[2])


def test_item_order_must_match(trained):
    root, settings, _ = trained
    recommender, items = load(root, settings)
    with pytest.raises(Exception, match="differ"):
        recommender.fit(load_split(root / "splits").train, list(reversed(items["item_id"].tolist())))


def test_checkpoint_carries_its_encoders_and_rejects_tampered_ones(trained, tmp_path):
    root, settings, _ = trained
    path = root / "checkpoints" / settings.features.combo / "best_model.pth"
    (root / "checkpoints" / "encoders").rename(tmp_path / "moved-away")  # the shared folder is not needed
    recommender, _ = load(root, settings)
    assert recommender.users.fingerprint == recommender.spec.encoders.user
    state = torch.load(path, weights_only=True)
    state["encoders"]["user"] = ["x"]
    torch.save(state, tmp_path / "tampered.pth")
    with pytest.raises(CheckpointError, match="user id encoder"):
        MultimodalRecommender.from_checkpoint(tmp_path / "tampered.pth", items=load_items(root / "processed"),
                                              cache_dir=root / "cache", cache=CacheSettings())


def test_older_checkpoints_without_id_lists_use_the_encoders_folder_beside_them(trained, tmp_path):
    from mmrec.data.encoders import fit_encoders, save_encoders

    root, settings, _ = trained
    state = torch.load(root / "checkpoints" / settings.features.combo / "best_model.pth", weights_only=True)
    del state["encoders"]
    (tmp_path / "combo").mkdir()
    torch.save(state, tmp_path / "combo" / "best_model.pth")
    kwargs = {"items": load_items(root / "processed"), "cache_dir": root / "cache", "cache": CacheSettings()}
    with pytest.raises(CheckpointError, match="holds no id encoders"):
        MultimodalRecommender.from_checkpoint(tmp_path / "combo" / "best_model.pth", **kwargs)
    save_encoders(tmp_path, *fit_encoders(load_split(root / "splits").train))
    recommender = MultimodalRecommender.from_checkpoint(tmp_path / "combo" / "best_model.pth", **kwargs)
    assert recommender.users.fingerprint == recommender.spec.encoders.user


def test_a_new_items_reason_names_the_content_the_model_read_of_it():
    from types import SimpleNamespace

    import torch

    from mmrec.pipeline.recommend import new_item_reason
    from mmrec.settings import ModelSettings

    features = SimpleNamespace(vision_mask=torch.tensor([True, False, False]),
                               text_mask=torch.tensor([True, True, False]))

    def model(categories=None, **cfg):
        numeric = SimpleNamespace(columns=["views"])
        recommender = SimpleNamespace(name="multimodal", model=SimpleNamespace(cfg=ModelSettings(**cfg)),
                                      features=features, spec=SimpleNamespace(numeric=numeric), _categories=categories)
        recommender.content_of = lambda item: MultimodalRecommender.content_of(recommender, item)
        return recommender

    assert new_item_reason(model(), 0)["why"].endswith("ranked from its image, text and metadata")
    held = np.array([[3, 0], [0, 0], [0, 0]])  # only row 0 holds a category value the model knows
    assert new_item_reason(model(held), 0)["why"].endswith("ranked from its image, text, metadata and categories")
    assert new_item_reason(model(held), 1)["why"].endswith("ranked from its text and metadata")
    assert new_item_reason(model(held, use_categories=False), 0)["why"].endswith("image, text and metadata")
    assert new_item_reason(model(), 1)["why"].endswith("ranked from its text and metadata")  # no image
    assert new_item_reason(model(use_text=False), 1)["why"].endswith("ranked from its metadata")
    assert "nothing the model reads of it" in new_item_reason(model(use_numeric=False), 2)["why"]
    assert new_item_reason(SimpleNamespace(name="random"), 2)["why"].endswith("placed at random")


def test_a_component_with_no_part_in_the_score_is_never_credited(trained):
    # Blend weight 1: the two-tower model carries nothing, yet it was credited ("because you liked X") wherever
    # every other part was negative, down a long list.
    recommender, train, item_ids = fitted(trained, 1.0)
    user = str(train["user_id"].iloc[0])
    every = list(range(len(item_ids)))
    credited = [component for component, _ in recommender.liked_item_evidence(user, every)]
    assert "two_tower" not in credited and set(credited) <= {"item_item", "content", "sequence", "trend"}
