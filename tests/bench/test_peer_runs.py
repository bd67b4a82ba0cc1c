"""Resumable benchmark: one stored result per (protocol, variant, seed, system), skipped on rerun, merged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from movielens_fixtures import write_ml100k, write_ml_latest

import bench.peers.features as features
import bench.peers.tuning as tuning
from bench.peers.features import ItemFeatures
from bench.peers.report import summarize
from bench.peers.runs import RunKey, StoredRun, load_runs
from bench.peers.tuning import SystemResult
from bench.run_peers import main
from mmrec.errors import DataError


@pytest.fixture
def fake_features(monkeypatch):
    """Random features instead of EfficientNet/MiniLM: the runner's bookkeeping is under test here."""
    rng = np.random.default_rng(0)
    monkeypatch.setattr(features, "image_features",
                        lambda posters, items, d: ItemFeatures(rng.random((len(items), 8), dtype=np.float32), 0))
    monkeypatch.setattr(features, "text_features",
                        lambda texts, d: ItemFeatures(rng.random((len(texts), 4), dtype=np.float32), 0))


def _args(tmp_path, data):
    return ["--data-dir", str(data), "--workdir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results"),
            "--protocols", "random", "--systems", "Random", "MostPop", "--seeds", "0", "1"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_rerun_skips_stored_results_and_merge_rebuilds_tables(tmp_path, monkeypatch, fake_features, capsys):
    pytest.importorskip("cornac")
    data = write_ml100k(tmp_path / "ml-100k", n_users=30, n_items=80, density=0.3)  # Cornac's check needs >= 20 candidates
    assert main(_args(tmp_path, data)) == 0
    runs_dir = tmp_path / "results" / "ml-100k" / "runs"
    stored = sorted(p.relative_to(runs_dir).as_posix() for p in runs_dir.rglob("*.json"))
    assert stored == ["no-tags/seed0/random/MostPop.json", "no-tags/seed0/random/Random.json",
                      "no-tags/seed1/random/MostPop.json", "no-tags/seed1/random/Random.json"]
    table = (tmp_path / "results" / "ml-100k" / "peers_random.md").read_text()
    assert "ml-100k (ml-100k layout)" in table and "ml-latest-small" not in table
    assert "| no-tags | MostPop | cornac | 0,1 |" in table and " ± " in table

    # Rerun: nothing is fitted again (a fit would raise), the tables are rebuilt from the files.
    def no_fit(*_args, **_kwargs):
        raise AssertionError("a stored result was recomputed")

    monkeypatch.setattr(tuning, "tune_and_test", no_fit)
    (tmp_path / "results" / "ml-100k" / "peers_random.md").unlink()
    assert main(_args(tmp_path, data)) == 0
    assert "stored, skipped: MostPop, Random" in capsys.readouterr().out
    assert (tmp_path / "results" / "ml-100k" / "peers_random.md").read_text() == table

    # --only-merge touches no data at all: the data folder may be gone.
    (tmp_path / "results" / "ml-100k" / "peers_random.md").unlink()
    assert main([*_args(tmp_path, data), "--only-merge"]) == 0
    assert (tmp_path / "results" / "ml-100k" / "peers_random.md").read_text() == table


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_system_that_reads_no_text_reuses_the_other_variants_result_on_the_same_split(tmp_path, fake_features,
                                                                                         capsys):
    pytest.importorskip("cornac")
    data = write_ml_latest(tmp_path / "ml-latest", n_users=30, n_items=120, tags=True)
    args = ["--data-dir", str(data), "--workdir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results"),
            "--protocols", "random", "--systems", "Random", "ContentKNN", "--seeds", "0"]
    assert main([*args, "--text-variants", "tags"]) == 0
    runs_dir = tmp_path / "results" / "ml-latest" / "runs"
    assert main([*args, "--text-variants", "no-tags"]) == 0
    out = capsys.readouterr().out
    assert "Random: the `tags` variant's result reused" in out and "ContentKNN: the `tags`" not in out
    tagged, reused = (json.loads((runs_dir / v / "seed0" / "random" / "Random.json").read_text())
                      for v in ("tags", "no-tags"))
    assert reused["result"] == tagged["result"] and reused["key"]["variant"] == "no-tags"
    assert reused["context"]["reused_from"] == "tags"
    assert reused["context"]["split_sha256"] == tagged["context"]["split_sha256"]
    assert "text variant `no-tags`" in reused["context"]["data"]
    content = json.loads((runs_dir / "no-tags" / "seed0" / "random" / "ContentKNN.json").read_text())
    assert "reused_from" not in content["context"]  # it reads item text: fitted on the no-tags import

    # Split files that differ (another seed's, say) are never taken for the same ones.
    tagged["context"]["split_sha256"] = "0" * 64
    (runs_dir / "tags" / "seed0" / "random" / "Random.json").write_text(json.dumps(tagged))
    assert main([*args, "--text-variants", "no-tags", "--systems", "Random", "--redo"]) == 0
    rerun = json.loads((runs_dir / "no-tags" / "seed0" / "random" / "Random.json").read_text())
    assert "reused_from" not in rerun["context"]
    (runs_dir / "no-tags" / "seed0" / "random" / "Random.json").unlink()
    assert main([*args, "--text-variants", "no-tags", "--systems", "Random"]) == 0
    assert "reused_from" not in json.loads((runs_dir / "no-tags" / "seed0" / "random" / "Random.json").read_text())[
        "context"]


def _result(name: str, library: str, per_user: list[float]) -> SystemResult:
    metrics = {m: float(np.mean(per_user)) for m in ("ndcg@10", "ndcg@20", "recall@10", "recall@20",
                                                     "precision@10", "hit_rate@10", "mrr")}
    return SystemResult(name, library, {}, metrics, metrics, 1.0, 0.1, 1.0, 1.0,
                        test_users=[f"u{i}" for i in range(len(per_user))], test_ndcg10_per_user=per_user)


def test_summary_compares_mmrec_with_the_best_peer_over_seeds():
    rng = np.random.default_rng(0)
    runs = []
    for seed in (0, 1, 2):
        base = rng.random(40)
        for name, library, values in (("EASE", "cornac", base), ("ItemKNN", "implicit", base * 0.5),
                                      ("mmrec-item_knn", "mmrec", base * 2.0),  # mmrec's baselines are no peers
                                      ("mmrec-multimodal", "mmrec", base + 0.1)):
            runs.append(StoredRun(RunKey("random", "tags", seed, name), {}, _result(name, library, list(values))))
    summary = summarize(runs)
    (comparison,) = summary["comparisons"]
    assert comparison["best_peer"] == "EASE"
    assert set(comparison["wilcoxon_per_seed"]) == {"0", "1", "2"}
    assert all(t["wins"] == 40 and t["p_value"] < 1e-6 for t in comparison["wilcoxon_per_seed"].values())
    pooled = comparison["wilcoxon_pooled"]
    assert (pooled["seeds"], pooled["n_users"], pooled["wins"]) == (3, 40, 40)
    assert pooled["mean_diff"] == pytest.approx(0.1)
    ease = next(r for r in summary["rows"] if r["system"] == "EASE")
    assert ease["seeds"] == [0, 1, 2] and ease["std"]["ndcg@10"] > 0
    # mmrec-tuned, where it ran, gets its own comparison on its own seeds.
    ease_1 = next(r for r in runs if r.key.system == "EASE" and r.key.seed == 1).result.test_ndcg10_per_user
    runs.append(StoredRun(RunKey("random", "tags", 1, "mmrec-tuned"), {},
                          _result("mmrec-tuned", "mmrec", [v * 0.9 for v in ease_1])))
    multimodal, tuned = summarize(runs)["comparisons"]
    assert (multimodal["system"], tuned["system"]) == ("mmrec-multimodal", "mmrec-tuned")
    assert tuned["seeds"] == [1] and set(tuned["wilcoxon_per_seed"]) == {"1"} and tuned["ratio_ndcg@10"] < 1
    assert tuned["wilcoxon_pooled"] is None  # one seed: the per-seed test is the test


def test_pooled_test_averages_each_user_over_the_seeds_that_tested_them():
    from bench.peers.significance import pooled_over_seeds

    # Seed 0 tests u0..u2, seed 1 u1..u3: a's edge is noise per seed, but every user's mean favours a.
    pooled = pooled_over_seeds([(["u0", "u1", "u2"], [0.5, 0.2, 0.9], ["u2", "u1", "u0"], [0.8, 0.3, 0.4]),
                                (["u1", "u2", "u3"], [0.6, 0.8, 0.3], ["u1", "u2", "u3"], [0.4, 0.2, 0.1])])
    assert pooled["n_users"] == 4 and pooled["seeds"] == 2
    assert pooled["mean_a"] == pytest.approx(np.mean([0.5, 0.4, 0.85, 0.3]))
    assert pooled["mean_b"] == pytest.approx(np.mean([0.4, 0.35, 0.5, 0.1]))
    assert (pooled["wins"], pooled["losses"]) == (4, 0)
    with pytest.raises(ValueError, match="same users"):
        pooled_over_seeds([(["u0"], [0.1], ["u1"], [0.1])])


def test_unreadable_result_file_is_named(tmp_path):
    path = RunKey("random", "tags", 0, "EASE").path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(DataError, match="EASE.json"):
        load_runs(tmp_path)


def test_run_key_paths_stay_inside_the_runs_dir(tmp_path):
    path = RunKey("random", "../../x", 0, "a/b").path(tmp_path)
    assert tmp_path in path.parents and path.name == "a_b.json"
    assert json.dumps(str(path))


def test_table_header_says_when_items_had_no_poster():
    from bench.peers.report import _header

    def run(variant, missing):
        context = {"data": f"MovieLens x, text variant `{variant}`", "split": "random",
                   "image_items_without_poster": missing}
        return StoredRun(RunKey("random", variant, 0, "EASE"), context, _result("EASE", "cornac", [0.1]))

    header = _header([run("no-tags", 1008), run("tags", 0)])
    assert header["data"] == ["MovieLens x, text variant `no-tags`; 1008 items without a poster (their image "
                              "features are zeros)", "MovieLens x, text variant `tags`"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_stored_results_of_other_data_under_the_same_name_are_run_again_not_reused(tmp_path, fake_features, capsys):
    """A researcher's own ml-100k in a folder named like the committed one: the committed results were skipped as
    done and merged into the tables (they were made on other split files)."""
    pytest.importorskip("cornac")
    theirs = write_ml100k(tmp_path / "theirs" / "ml-100k", n_users=30, n_items=80, density=0.3)
    args = ["--data-dir", str(theirs), "--workdir", str(tmp_path / "work_theirs"), "--results-dir",
            str(tmp_path / "results"), "--protocols", "random", "--systems", "MostPop", "--seeds", "0"]
    assert main(args) == 0
    stored = tmp_path / "results" / "ml-100k" / "runs" / "no-tags" / "seed0" / "random" / "MostPop.json"
    first = json.loads(stored.read_text())
    ours = write_ml100k(tmp_path / "ours" / "ml-100k", n_users=40, n_items=90, density=0.25, seed=5)
    capsys.readouterr()
    assert main(["--data-dir", str(ours), "--workdir", str(tmp_path / "work_ours"), *args[4:]]) == 0
    out = capsys.readouterr().out
    assert "stored results made on other split files" in out and "run again: MostPop" in out
    again = json.loads(stored.read_text())
    assert again["context"]["split_sha256"] != first["context"]["split_sha256"]
    # Merging in their work dir now leaves the result of our files out of their tables, and says so.
    assert main([*args, "--only-merge"]) == 0
    assert "left out of the tables: 1 stored result(s) made on other split files" in capsys.readouterr().out
    # The table says so too (its only result is left out: no stale table of it stays beside the others).
    table = (tmp_path / "results" / "ml-100k" / "peers_random.md").read_text()
    assert "No stored result of this protocol counts: 1 left out" in table and "- MostPop (no-tags, seed 0)" in table
    assert not (tmp_path / "results" / "ml-100k" / "peers_random.png").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_user_errors_are_one_message_and_an_interrupt_keeps_and_tables_what_finished(tmp_path, monkeypatch,
                                                                                     fake_features, capsys):
    pytest.importorskip("cornac")
    data = write_ml100k(tmp_path / "ml-100k", n_users=30, n_items=80, density=0.3)
    args = _args(tmp_path, data)
    assert main(["--data-dir", str(tmp_path / "nope"), *args[2:]]) == 2
    assert main([*args[:8], "--systems", "EASY"]) == 2
    assert main([*args, "--text-variants", "tags"]) == 2  # ml-100k has no tags
    err = capsys.readouterr().err
    assert "is not a folder" in err and "unknown --systems ['EASY']" in err and "has no tags file" in err
    assert "Traceback" not in err
    real = tuning.tune_and_test
    calls = []

    def stopped_on_the_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(tuning, "tune_and_test", stopped_on_the_second)
    assert main(args) == 130
    out = capsys.readouterr().out
    assert "interrupted: every result finished so far is stored" in out and "run the same command again" in out
    table = (tmp_path / "results" / "ml-100k" / "peers_random.md").read_text()  # rebuilt from what finished
    assert "| no-tags | MostPop | cornac | 0 |" in table and "Random" not in table
    rows = json.loads((tmp_path / "results" / "ml-100k" / "peers_random.json").read_text())["rows"]
    assert [row["std"]["ndcg@10"] for row in rows] == [None]  # one seed: no spread measured (was 0.0)
    assert "## Configs tried (validation only" in table  # each config's validation NDCG@10, not only the winner
    tried = next(line for line in table.splitlines() if line.startswith("| no-tags | MostPop | 1 |"))
    assert f"{rows[0]['val_per_config'][0]:.4f}" in tried


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_catalogue_in_mmrecs_input_format_runs_and_without_timestamps_skips_temporal(tmp_path, fake_features,
                                                                                       capsys):
    pytest.importorskip("cornac")
    import pandas as pd

    from mmrec.data.synth import generate_synthetic

    data = tmp_path / "shop"
    generate_synthetic(data, users=40, items=40, seed=2, mean_interactions=15, images=False)
    frame = pd.read_csv(data / "interactions.csv", dtype=str)
    frame.drop(columns="timestamp").to_csv(data / "interactions.csv", index=False)
    args = ["--data-dir", str(data), "--workdir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results"),
            "--protocols", "random", "temporal", "--systems", "Random", "MostPop"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[temporal/catalogue] not run: the interactions have no timestamp column" in out
    runs_dir = tmp_path / "results" / "shop" / "runs"
    assert sorted(p.relative_to(runs_dir).as_posix() for p in runs_dir.rglob("*.json")) == [
        "catalogue/seed0/random/MostPop.json", "catalogue/seed0/random/Random.json"]
    assert "catalogue shop (mmrec input folder)" in (tmp_path / "results" / "shop" / "peers_random.md").read_text()
    # Items edited (titles shuffled): a rerun must not reuse results made on the old content.
    items = pd.read_csv(data / "item_info.csv", dtype=str)
    items["title"] = items["title"].sample(frac=1.0, random_state=0).to_numpy()
    items.to_csv(data / "item_info.csv", index=False)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stored results made on other split files or item content" in out and "stored, skipped" not in out
    assert "left out of the tables" not in out  # the rerun's results are the content's own
