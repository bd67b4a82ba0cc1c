"""bench/peers systems, tuning and report on tiny synthetic splits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from test_peer_protocols import synthetic_positives

from bench.peers.protocols import load_split, write_protocol
from bench.peers.systems import BenchSystem, Context
from bench.peers.systems.content import SYSTEMS as CONTENT_SYSTEMS


@pytest.fixture
def split(tmp_path):
    return load_split(write_protocol(synthetic_positives(n_users=30, n_items=50, per_user=12), "random", tmp_path))


@pytest.fixture
def ctx(split):
    rng = np.random.default_rng(0)
    return Context(seed=0, image=rng.random((split.n_items, 16), dtype=np.float32),
                   text=rng.standard_normal((split.n_items, 8)).astype(np.float32))


@pytest.mark.filterwarnings("ignore:Method expects CSR input")
def test_implicit_item_knn_scores_give_implicits_own_top10(split, ctx):
    pytest.importorskip("implicit")
    from implicit.nearest_neighbours import CosineRecommender

    from bench.peers.systems.implicit_models import fit_item_knn

    scores = fit_item_knn(split, {"K": 20}, ctx)(np.arange(split.n_users))
    train = split.matrices["train"].astype(np.float32).tocsr()
    model = CosineRecommender(K=20)
    model.fit(train, show_progress=False)
    for user in range(5):
        _ids, theirs = model.recommend(user, train[user], N=10, filter_already_liked_items=True)
        masked = np.where(train[user].toarray().ravel() > 0, -np.inf, scores[user])
        np.testing.assert_allclose(np.sort(masked)[::-1][:10], theirs, rtol=1e-5)


def test_tuning_selects_on_validation_and_reports(split, ctx, tmp_path):
    pytest.importorskip("psutil")
    from bench.peers.report import write_reports
    from bench.peers.runs import RunKey, load_runs, save_run
    from bench.peers.tuning import tune_and_test

    results = [tune_and_test(system, split, ctx) for system in CONTENT_SYSTEMS]
    content = results[0]
    assert len(content.val_per_config) == 3
    assert content.val["ndcg@10"] == max(content.val_per_config)
    assert content.fit_s >= 0 and content.score_s > 0
    assert len(content.test_users) == content.test["n_users"] == len(content.test_ndcg10_per_user)
    for result in results:
        save_run(tmp_path / "runs", RunKey("random", "tags", 0, result.name), result,
                 {"data": "synthetic", "split": "random, seed 0"})
    paths = write_reports(tmp_path, load_runs(tmp_path / "runs"))
    assert [p.exists() for p in paths] == [True, True, True]
    payload = json.loads(paths[0].read_text())
    assert {r["system"] for r in payload["rows"]} == {"ContentKNN", "Random"}
    assert "| tags | ContentKNN | bench | 0 |" in paths[1].read_text()


def test_grid_budget_is_enforced(split, ctx):
    from bench.peers.tuning import tune_and_test

    greedy = BenchSystem("Greedy", "bench", [{}] * 7, CONTENT_SYSTEMS[1].fit)
    with pytest.raises(ValueError, match="budget"):
        tune_and_test(greedy, split, ctx)


def test_a_searching_system_reports_its_choice_and_the_chosen_fit_time(split, ctx):
    pytest.importorskip("psutil")
    from bench.peers.tuning import tune_and_test

    def fit(split_, config, ctx_):  # like mmrec-tuned: one "config" that runs its own search
        scorer = CONTENT_SYSTEMS[1].fit(split_, {}, ctx_)

        def searched(rows):
            return scorer(rows)

        searched.chosen_config = {"trial": 3, "model.item_item_l2": 400.0}
        searched.fit_seconds = 1.25
        searched.trials = [{"number": 3, "value": 0.2, "seconds": 1.25, "selected": True},
                           {"number": 4, "value": 0.21, "seconds": 9.5, "selected": False}]
        return searched

    result = tune_and_test(BenchSystem("Searcher", "bench", [{"budget": 6}], fit), split, ctx)
    assert result.best_config == {"budget": 6, "trial": 3, "model.item_item_l2": 400.0}
    assert result.fit_s == 1.25 and result.tune_s >= 0
    assert [t["number"] for t in result.to_json()["trials"]] == [3, 4]  # the search's trials are kept


def test_one_off_preparation_is_not_in_any_config_s_fit_time(split, ctx):
    """mmrec's import, preprocess and feature store ran inside its first config's timed fit (95 s vs 33 s)."""
    pytest.importorskip("psutil")
    import time

    from bench.peers.tuning import tune_and_test

    prepared = []

    def prepare(split_, ctx_):
        prepared.append(1)
        time.sleep(0.5)

    system = BenchSystem("Prepared", "bench", [{}, {}], CONTENT_SYSTEMS[1].fit, prepare=prepare)
    result = tune_and_test(system, split, ctx)
    assert prepared == [1] and result.fit_s < 0.5


def test_a_search_killed_midway_resumes_with_the_configs_not_yet_validated(split, ctx, tmp_path):
    pytest.importorskip("psutil")
    from bench.peers.tuning import tune_and_test

    content = CONTENT_SYSTEMS[0]  # ContentKNN: text, image, text+image
    fitted: list[str] = []
    kill = [True]

    def fit(split_, config, ctx_):
        if config["modality"] == "text+image" and kill:
            kill.clear()
            raise KeyboardInterrupt  # the session ends during the third config, once
        fitted.append(config["modality"])
        return content.fit(split_, config, ctx_)

    system = BenchSystem("ContentKNN", "bench", content.grid, fit)
    partial = tmp_path / "ContentKNN.partial"
    with pytest.raises(KeyboardInterrupt):
        tune_and_test(system, split, ctx, partial=partial, split_sha256="abc")
    kept = json.loads(partial.read_text())["configs"]
    assert [r["config"]["modality"] for r in kept] == ["text", "image"]
    # Other split files since (the data changed): the values kept do not compare, and every config runs again.
    saved = partial.read_text()
    fitted.clear()
    tune_and_test(system, split, ctx, partial=partial, split_sha256="other", log=lambda line: fitted.append(line))
    assert any("were on other split files" in line for line in fitted) and fitted.count("text") == 1
    partial.write_text(saved)

    fitted.clear()
    resumed = tune_and_test(system, split, ctx, partial=partial, split_sha256="abc")
    whole = tune_and_test(content, split, ctx)  # the same grid in one go
    assert resumed.val_per_config == whole.val_per_config and resumed.best_config == whole.best_config
    assert resumed.test == whole.test
    winner = whole.best_config["modality"]
    # Only the config not yet validated is fitted, plus the winner again when an earlier process validated it.
    assert fitted == ["text+image"] + ([winner] if winner != "text+image" else [])
    assert ("fitted again for test" in resumed.notes) == (winner != "text+image")
    assert not partial.exists()  # the stored result supersedes it
    # A grid that changed since: the kept records of other configs are ignored.
    partial.write_text(json.dumps({"configs": [{**kept[0], "config": {"modality": "audio"}}]}))
    fitted.clear()
    tune_and_test(system, split, ctx, partial=partial)  # (no digest recorded nor given: the grid decides)
    assert fitted == ["text", "image", "text+image"]
