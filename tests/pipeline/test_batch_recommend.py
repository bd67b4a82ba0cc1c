"""run_batch_recommend: every user in bounded chunks, the same lists as run_recommend, optional ANN."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from mmrec.data.splits import load_split
from mmrec.data.tables import load_items, save_interactions, save_items
from mmrec.errors import ConfigError
from mmrec.inference.ann import ItemIndex
from mmrec.pipeline.batch_recommend import run_batch_recommend
from mmrec.pipeline.recommend import run_recommend
from mmrec.checkpoints.store import served_weights
from mmrec.pipeline.serving import ANN_TWO_TOWER_SHARE_NOTE, load_serving
from mmrec.pipeline.train import run_train
from mmrec.recommenders import RECOMMENDERS
from mmrec.recommenders.factory import BASELINES
from mmrec.settings import load_settings


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TESTS = Path(__file__).parents[1]
eval_project = _load("eval_project_for_batch", TESTS / "evaluation" / "eval_project.py")
tiny_project = _load("tiny_project_for_batch", TESTS / "training" / "tiny_project.py")
CHUNK = 7


def _check_lists(frame: pd.DataFrame, interactions: pd.DataFrame, top_k: int) -> None:
    """Every user, top_k distinct unseen items each, ranks 1..k, scores non-increasing."""
    assert set(frame["user_id"]) == set(interactions["user_id"].astype(str))
    seen = interactions.groupby("user_id")["item_id"].agg(set)
    for user, rows in frame.groupby("user_id", sort=False):
        assert rows["rank"].tolist() == list(range(1, top_k + 1))
        assert rows["item_id"].is_unique and not set(rows["item_id"]) & seen[user]
        assert (np.diff(rows["score"].to_numpy()) <= 0).all()


def _same_as_recommend(frame: pd.DataFrame, settings, recommender: str, users: list[str]) -> None:
    single = run_recommend(settings, users=users, recommender_type=recommender)
    for entry in single.users:
        rows = frame[frame["user_id"] == entry.user_id]
        assert rows["item_id"].tolist() == [i["item_id"] for i in entry.items]
        assert rows["score"].tolist() == pytest.approx([i["score"] for i in entry.items], abs=1e-5)


@pytest.mark.parametrize("recommender", BASELINES)
def test_every_user_in_bounded_chunks_equals_recommend(tmp_path, monkeypatch, recommender):
    settings = load_settings(eval_project.make_tiny_project(tmp_path),
                             {"evaluation.batch_size": CHUNK, "inference.top_k": 5}).settings
    cls = RECOMMENDERS.get(recommender)
    calls = []
    score = cls.score

    def spy(self, user_ids, device="cpu"):
        calls.append(len(user_ids))
        return score(self, user_ids, device)

    monkeypatch.setattr(cls, "score", spy)
    out = tmp_path / "out" / "recs.parquet"
    result = run_batch_recommend(settings, out, all_users=True, recommender_type=recommender)
    interactions = pd.read_parquet(tmp_path / "processed" / "interactions.parquet")
    n_users = interactions["user_id"].nunique()
    assert calls and max(calls) <= CHUNK and sum(calls) == n_users  # never every user's scores at once
    assert pq.ParquetFile(out).num_row_groups == -(-n_users // CHUNK)  # one row group per chunk
    assert (result.n_users, result.n_rows, result.fallback_users, result.short_users) == (n_users, 5 * n_users, 0, 0)
    frame = pd.read_parquet(out)
    _check_lists(frame, interactions, 5)
    monkeypatch.setattr(cls, "score", score)
    _same_as_recommend(frame, settings, recommender, ["u000", "u013", "u039"])


def test_chosen_users_unknown_users_and_short_lists_are_counted(tmp_path):
    settings = load_settings(eval_project.make_tiny_project(tmp_path), {"inference.top_k": 28}).settings
    out = tmp_path / "recs.parquet"
    result = run_batch_recommend(settings, out, users=["u001", "stranger"], recommender_type="popularity")
    frame = pd.read_parquet(out)
    assert result.fallback_users == 1 and frame["user_id"].value_counts()["stranger"] == 28
    assert result.short_users == 1 and any("fewer than 28" in n for n in result.notes)  # u001 has seen items
    assert any("unknown to the model" in n for n in result.notes)


def test_refusals_come_before_any_work(tmp_path):
    settings = load_settings(eval_project.make_tiny_project(tmp_path)).settings
    for output, kwargs, message in (
        (tmp_path / "recs.csv", {"all_users": True}, "does not end in .parquet"),
        (tmp_path / "r.parquet", {"all_users": True, "users": ["u001"]}, "cannot be combined"),
        (tmp_path / "r.parquet", {"all_users": True, "ann_check": 5}, "none is on"),
    ):
        with pytest.raises(ConfigError, match=message):
            run_batch_recommend(settings, output, recommender_type="popularity", **kwargs)
    with pytest.raises(ConfigError, match="has none"):
        run_batch_recommend(settings.model_copy(update={"inference": settings.inference.model_copy(
            update={"ann": "faiss_hnsw"})}), tmp_path / "r.parquet", all_users=True, recommender_type="item_knn")
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob(".*.tmp"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained multimodal checkpoint with a fixed item-item blend (transitions off, so no weight is left
    to validation noise); processed = every interaction."""
    root = tmp_path_factory.mktemp("batch_mm")
    config = tiny_project.write_tiny_project(root, epochs=1, item_item_blend=0.5, item_item_halflife=5.0,
                                             sequence_blend=False)
    settings = load_settings(config, {"evaluation.batch_size": CHUNK, "inference.top_k": 5,
                                      "inference.device": "cpu"}).settings
    run_train(settings)
    split = load_split(root / "splits")
    save_interactions(pd.concat([split.train, split.val, split.test], ignore_index=True), root / "processed")
    return root, settings


def _with(settings, **inference):
    return settings.model_copy(update={"inference": settings.inference.model_copy(update=inference)})


def test_multimodal_batch_equals_recommend(trained):
    root, settings = trained
    out = root / "exact.parquet"
    run_batch_recommend(settings, out, all_users=True)
    frame = pd.read_parquet(out)
    _check_lists(frame, pd.read_parquet(root / "processed" / "interactions.parquet"), 5)
    _same_as_recommend(frame, settings, "multimodal", ["u0", "u7", "u29"])


def test_column_scores_equal_full_scores_with_and_without_the_blend(trained):
    _, settings = trained
    model = load_serving(settings, "multimodal").model
    assert model.scorer.blended
    users = ["u0", "u5", "u11"]
    columns = torch.tensor([[3, 0, 9], [1, 1, 39], [20, 7, 2]])
    for scorer in (model.scorer, model.scorer.with_item_item(None, 0.0)):
        model.scorer = scorer
        assert torch.allclose(model.score_columns(users, columns), model.score(users).gather(1, columns), atol=1e-5)


@pytest.mark.parametrize("kind", ["faiss_ivf", "faiss_hnsw"])
def test_ann_lists_get_exact_blended_scores_and_report_recall(trained, monkeypatch, kind):
    pytest.importorskip("faiss")
    root, settings = trained
    exact_out = root / "exact_for_ann.parquet"
    run_batch_recommend(settings, exact_out, all_users=True)
    exact = pd.read_parquet(exact_out).groupby("user_id", sort=False)["item_id"].agg(list)
    pools = []
    search = ItemIndex.search

    def spy(index, vectors, pool):
        pools.append((len(vectors), pool))
        return search(index, vectors, pool)

    monkeypatch.setattr(ItemIndex, "search", spy)
    recalls = {}
    for factor in (1, 4):
        out = root / f"{kind}_{factor}.parquet"
        result = run_batch_recommend(_with(settings, ann=kind, ann_pool_factor=factor), out, all_users=True,
                                     ann_check=30)
        frame = pd.read_parquet(out)
        _check_lists(frame, pd.read_parquet(root / "processed" / "interactions.parquet"), 5)
        approximate = frame.groupby("user_id", sort=False)["item_id"].agg(list)
        overlap = np.mean([len(set(approximate[u]) & set(exact[u])) / 5 for u in exact.index])
        assert result.ann == kind and result.ann_check_users == 30 and result.ann_recall == pytest.approx(overlap)
        recalls[factor] = result.ann_recall
        share = served_weights(load_serving(settings, "multimodal").model.spec.to_meta()["item_item"])["two-tower"]
        assert any("The index holds two-tower vectors" in note for note in result.notes) == \
            (share <= ANN_TWO_TOWER_SHARE_NOTE)
    assert max(n for n, _ in pools) <= CHUNK and all(pool < 40 for _, pool in pools)  # a pool, not the catalogue
    # Candidates come from the two-tower vectors alone while the lists rank by the blended score: a
    # pool of one top_k misses some blended top items, a larger pool finds nearly all of them.
    assert recalls[1] < 1.0 and recalls[4] >= 0.95
    full = load_serving(settings, "multimodal")
    users = ["u3", "u17"]
    scores = full.model.score(users)
    for row, user in enumerate(users):
        got = frame[frame["user_id"] == user]
        columns = [full.item_ids.index(i) for i in got["item_id"]]
        assert got["score"].tolist() == pytest.approx(scores[row, columns].tolist(), abs=1e-5)  # the blended score


@pytest.mark.parametrize("reorder", [0.0, 1.0])
def test_ann_pool_holds_the_cold_items_a_shift_lifts(trained, monkeypatch, reorder):
    # The cold items' shift (model.cold_shift, chosen on validation) lifts items the two-tower vectors rank low: an
    # index over those vectors left them out of the pool, so approximate lists lacked what exact scoring serves.
    # With the cold items also reordered by content (model.cold_blend), the pool takes them in the served order.
    pytest.importorskip("faiss")
    import scipy.sparse as sp

    from mmrec.models.content_profile import ContentProfileModel

    _, settings = trained
    exact, approximate = load_serving(settings, "multimodal"), load_serving(_with(settings, ann="faiss_hnsw",
                                                                                  ann_pool_factor=1), "multimodal")
    users = [f"u{i}" for i in range(12)]
    vectors = exact.model.search_vectors(users)[0]
    item_vectors = exact.model.search_item_vectors()
    # As cold: the 12 items the two-tower model ranks lowest on average, which no pool of 5 from the index holds.
    cold = (vectors @ item_vectors.T).mean(dim=0).argsort()[:12]
    base = exact.model.scorer
    histories = base.histories.cpu().numpy()
    rows, slots = np.nonzero((histories >= 0) & ~np.isin(histories, cold.numpy()))  # profiles without them
    held = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, histories[rows, slots])),
                         shape=(len(histories), len(exact.item_ids)))
    content = ContentProfileModel.build(base.catalogue, "text", held)
    for serving in (exact, approximate):
        serving.model.scorer = serving.model.scorer.with_cold(content if reorder else None, reorder) \
            .with_cold_shift(cold, 10.0)
    assert exact.model.scorer.reorders_cold == bool(reorder)
    lifted = set(cold.tolist())

    def lifted_in(lists):
        return [set(idx.tolist()) & lifted for idx, _ in lists]

    want = lifted_in(exact.top_k(users, 5)[0])
    assert sum(map(len, want)) >= 3 * len(users)  # exact scoring serves them first (those a user has not seen)
    assert lifted_in(approximate.top_k(users, 5)[0]) == want
    with monkeypatch.context() as patched:  # the pool as it was, the index's alone: most are missing
        patched.setattr(type(approximate.model), "lifted_columns", property(lambda self: None))
        assert sum(map(len, lifted_in(approximate.top_k(users, 5)[0]))) < sum(map(len, want)) / 2
    for serving in (exact, approximate):  # a shift down lifts nothing
        serving.model.scorer = serving.model.scorer.with_cold_shift(cold, -1.0)
    assert approximate.model.lifted_columns is None


def test_ann_on_a_plain_json_recommend_matches_exact_lists(trained):
    pytest.importorskip("faiss")
    _, settings = trained
    users = ["u1", "u2"]
    approximate = run_recommend(_with(settings, ann="faiss_hnsw"), users=users)
    exact = run_recommend(settings, users=users)
    assert [[i["item_id"] for i in u.items] for u in approximate.users] == \
        [[i["item_id"] for i in u.items] for u in exact.users]
    assert any("approximate faiss_hnsw index" in note for note in approximate.notes)  # the lists say so
    assert not any("approximate" in note for note in exact.notes)


def test_a_missing_user_file_is_refused_before_any_model_loads(tmp_path):
    from mmrec.errors import DataError

    settings = load_settings(None, {"paths.checkpoint_dir": tmp_path / "no_checkpoints",
                                    "paths.processed_dir": tmp_path / "no_processed"}).settings
    for run in (lambda: run_recommend(settings, user_file=tmp_path / "missing.txt"),
                lambda: run_batch_recommend(settings, tmp_path / "r.parquet", user_file=tmp_path / "missing.txt")):
        with pytest.raises(DataError, match="User file .*missing.txt does not exist"):
            run()


@pytest.mark.parametrize("threshold", [1.0, -0.01])
def test_ann_warns_when_the_two_tower_network_carries_little_of_the_score(trained, monkeypatch, threshold):
    pytest.importorskip("faiss")
    _, settings = trained
    monkeypatch.setattr("mmrec.pipeline.serving.ANN_TWO_TOWER_SHARE_NOTE", threshold)
    notes = load_serving(_with(settings, ann="faiss_hnsw"), "multimodal").notes
    assert bool(notes) == (threshold == 1.0)
    if notes:  # the fixture's item-item weight 0.5: the two-tower network carries the other half
        assert notes[0].startswith("The index holds two-tower vectors, which carry 0.5 of the checkpoint's final "
                                   "score (the rest: item-item), so its candidate pool may miss items the other "
                                   "parts rank high")
    assert not load_serving(settings, "multimodal").notes  # exact scoring: nothing to warn about


def test_ann_says_an_index_is_no_guess_when_a_later_step_takes_the_whole_score(trained, monkeypatch):
    # Walkthrough H: validation chose content similarity alone; the warning spoke of the item-item weight only.
    pytest.importorskip("faiss")
    from mmrec.checkpoints.spec import CheckpointSpec

    _, settings = trained
    to_meta = CheckpointSpec.to_meta

    def content_alone(spec):
        meta = to_meta(spec)
        return {**meta, "item_item": {**meta["item_item"], "content_blend": 1.0}}

    monkeypatch.setattr(CheckpointSpec, "to_meta", content_alone)
    notes = load_serving(_with(settings, ann="faiss_hnsw"), "multimodal").notes
    assert any(note.startswith("The index holds two-tower vectors, which carry 0 of the checkpoint's final score (the "
                               "rest: content similarity), so its candidate pool is no guess of the served top-K at "
                               "all: score exactly (no --ann).") for note in notes)


def test_serving_says_how_many_items_have_no_id_embedding(tmp_path, monkeypatch):
    config = tiny_project.write_tiny_project(tmp_path, epochs=1, sequence_blend=False)
    settings = load_settings(config, {"inference.device": "cpu"}).settings
    run_train(settings)
    split = load_split(tmp_path / "splits")
    save_interactions(pd.concat([split.train, split.val, split.test], ignore_index=True), tmp_path / "processed")
    assert not load_serving(settings, "multimodal").notes  # every item had training interactions
    items = load_items(tmp_path / "processed")
    new = items.iloc[[0]].assign(item_id="added_later")
    save_items(pd.concat([items, new], ignore_index=True), tmp_path / "processed")
    serving = load_serving(settings, "multimodal")
    assert len(serving.notes) == 1 and serving.notes[0].startswith("1 of 41 catalogue items had no training interaction")
    # The item-item model is named only where the served blend holds it (a 40k-item walkthrough's had weight 0).
    assert ("by the item-item model" in serving.notes[0]) == (serving.model.item_item_blend > 0)
    # The parts named are those with a share of the final score (rev2: where content similarity took the whole
    # score, the two-tower network, the content features' way in, carries none of it).
    from mmrec.checkpoints.spec import CheckpointSpec

    to_meta = CheckpointSpec.to_meta
    alone = {"blend": 0.0, "content_blend": 0.0, "sequence_blend": 0.0, "trend_blend": 0.0}
    for chosen, said in ((alone, "scored from their content features by the two-tower network."),
                         ({**alone, "content_blend": 1.0}, "scored by content similarity.")):
        with monkeypatch.context() as patched:
            patched.setattr(CheckpointSpec, "to_meta", lambda spec, chosen=chosen: {
                **to_meta(spec), "item_item": {**(to_meta(spec)["item_item"] or {}), **chosen}})
            assert load_serving(settings, "multimodal").notes[0].endswith(f"so they have no id embedding: they are "
                                                                          f"{said}")
    assert np.isfinite(serving.model.score(["u0"])[0, -1].item())  # still scored
    # A user who joined after training is served from their interactions, and the lists say so (both modes).
    interactions = pd.concat([split.train, split.val, split.test], ignore_index=True)
    joined = interactions[interactions["user_id"] == "u0"].assign(user_id="joined_later")
    save_interactions(pd.concat([interactions, joined], ignore_index=True), tmp_path / "processed")
    single = run_recommend(settings, users=["joined_later", "u1"])
    assert any(note.startswith("1 user(s) (e.g. 'joined_later') had no training interaction when the checkpoint")
               for note in single.notes)
    assert single.users[0].fallback is None
    batch = run_batch_recommend(settings, tmp_path / "all.parquet", all_users=True)
    assert any("had no training interaction when the checkpoint was trained" in note for note in batch.notes)
    # One the checkpoint knows whose interactions are gone (deleted since) was called "unknown to the model" only.
    save_interactions(interactions[interactions["user_id"] != "u1"], tmp_path / "processed")
    single = run_recommend(settings, users=["u1", "u2"])
    assert single.users[0].fallback == "popularity" and any(note.startswith(
        "1 of the users unknown to the model (e.g. 'u1') are in the checkpoint but have no interaction in the "
        "processed data now") for note in single.notes)
    # Asked for alone, the refusal says their ids are right (it had pointed at typos or the wrong config).
    with pytest.raises(ConfigError, match="None of the 1 requested user.* All of them .* are in the checkpoint, so "
                                          "their ids are right: their interactions left the processed data") as info:
        run_recommend(settings, users=["u1"])  # inference.unknown_users: auto, the default
    assert "Check the ids" not in info.value.hint and "--unknown-users fallback" in info.value.hint


def test_new_items_keep_their_places_for_the_multimodal_model_in_both_modes(trained):
    """Items added after training (content only): every list holds the reserved ones, batch as recommend."""
    root, settings = trained
    processed = root / "processed"
    items = load_items(processed)
    new = items.iloc[:3].assign(item_id=["n1", "n2", "n3"])
    save_items(pd.concat([items, new], ignore_index=True), processed)
    try:
        settings = _with(settings, new_items=2)
        out = root / "new.parquet"
        result = run_batch_recommend(settings, out, all_users=True)
        frame = pd.read_parquet(out)
        assert frame["new"].tolist() == frame["item_id"].isin({"n1", "n2", "n3"}).tolist()
        per_user = frame.groupby("user_id")["new"].sum()
        assert (per_user >= 2).all() and frame.groupby("user_id").size().eq(5).all()
        assert f"{len(per_user)} of {len(per_user)} lists hold new items" in " ".join(result.notes)
        _same_as_recommend(frame, settings, "multimodal", ["u0", "u7", "u29"])
        single = run_recommend(settings, users=["u0"])
        assert [i["new"] for i in single.users[0].items] == [i["item_id"] in {"n1", "n2", "n3"}
                                                            for i in single.users[0].items]
        # Not "because you liked" an item it merely resembles; named by what the model read of it (the tiny
        # project's model reads neither images nor text: only the numeric columns).
        # "New" only as far as the data tell: an old item nobody chose has no interaction either (a news walkthrough
        # found month-old articles reasoned "new item").
        why = "no interactions yet (a new item, or one nobody has chosen): ranked from its metadata"
        assert all(i["reason"]["why"] == why for i in single.users[0].items if i["new"])
    finally:
        save_items(items, processed)


def test_the_new_items_note_promises_places_only_without_an_approximate_index():
    from mmrec.pipeline.serving import new_items_note

    exact = new_items_note(2, 5, 100, "popularity")
    assert "each list holds at least 2 of them" in exact
    approximate = new_items_note(2, 5, 100, "popularity", ann=True)
    assert "holds up to 2 of those among the candidates the approximate index returns" in approximate
    assert "at least" not in approximate
    none_new = new_items_note(2, 0, 100, "popularity", rated_below=True)  # items only rated low are not new
    assert "every catalogue item has an interaction (a rating below data.positive_rating_threshold counts" in none_new


def test_all_users_includes_users_who_only_rated_below_the_threshold(tmp_path):
    """A user with no positive (only views, only low ratings) is a user of the data: --all-users serves them the
    fallback with the items they rated left out, and says how many such users there were."""
    from mmrec.data.tables import save_rated_below

    settings = load_settings(eval_project.make_tiny_project(tmp_path), {"inference.top_k": 5}).settings
    interactions = pd.read_parquet(tmp_path / "processed" / "interactions.parquet")
    some_item = str(interactions["item_id"].iloc[0])
    save_rated_below(pd.DataFrame({"user_id": ["viewer", "u001"], "item_id": [some_item, some_item]}),
                     tmp_path / "processed")
    out = tmp_path / "recs.parquet"
    result = run_batch_recommend(settings, out, all_users=True, recommender_type="item_knn")
    frame = pd.read_parquet(out)
    n_users = interactions["user_id"].nunique()
    assert result.n_users == n_users + 1 and frame["user_id"].nunique() == n_users + 1
    viewer = frame[frame["user_id"] == "viewer"]
    assert len(viewer) == 5 and some_item not in set(viewer["item_id"])
    assert result.fallback_users == 1
    assert any("1 of them only rated below data.positive_rating_threshold" in note for note in result.notes)
