"""run_evaluate end to end on a tiny project with the four baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mmrec.data.tables import load_items
from mmrec.errors import ConfigError, DataError
from mmrec.pipeline.evaluate import run_evaluate
from mmrec.recommenders import BASELINES
from mmrec.settings import load_settings


def test_compare_baselines_writes_report_plots_and_predictions(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    predictions = tmp_path / "preds.csv"
    report = run_evaluate(settings, BASELINES, save_predictions=predictions)
    assert [m.name for m in report.models] == list(BASELINES)
    by_name = {m.name: m for m in report.models}
    # The tiny data has strong group structure: neighbourhood models must beat random.
    assert by_name["item_knn"].metrics["ndcg@10"] > by_name["random"].metrics["ndcg@10"]
    assert by_name["user_knn"].metrics["recall@10"] > by_name["random"].metrics["recall@10"]
    assert report.counts["test_cold_users"] == 1 and report.counts["test_cold_item_interactions"] >= 1
    assert by_name["item_knn"].fallback_users == 1 and by_name["random"].fallback_users == 0
    assert by_name["random"].cold_item_metrics  # cold-item report exists
    # Popularity shows everyone the same list: the fewest items; random the most.
    coverage = {name: model.metrics["coverage@10"] for name, model in by_name.items()}
    assert min(coverage, key=coverage.get) == "popularity" and max(coverage, key=coverage.get) == "random"
    assert "coverage@10" in report.metric_columns() and "coverage@10" not in by_name["random"].per_user
    saved = json.loads((tmp_path / "results" / "evaluation.json").read_text())
    assert set(saved["models"]) == set(BASELINES)
    assert "| item_knn |" in (tmp_path / "results" / "evaluation.md").read_text()
    for name in ("metrics_at_k.png", "bar_ndcg.png", "bar_mrr.png"):
        assert (tmp_path / "results" / name).read_bytes()[:4] == b"\x89PNG"
    rows = pd.read_csv(predictions)
    assert set(rows["model"]) == set(BASELINES) and rows["rank"].max() == 10
    assert list(rows.columns) == ["model", "user_id", "rank", "item_id", "score"]
    assert (rows.groupby(["model", "user_id"])["score"].diff().dropna() <= 1e-6).all()  # best first


def test_seen_items_never_recommended(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    predictions = tmp_path / "preds.json"
    run_evaluate(settings, ["item_knn"], save_predictions=predictions)
    top = json.loads(predictions.read_text())["item_knn"]
    split = tmp_path / "splits"
    seen = pd.concat([pd.read_csv(split / "train.csv"), pd.read_csv(split / "val.csv")])
    for user, items in top.items():
        assert items and all(set(item) == {"item_id", "score"} for item in items)
        assert not {item["item_id"] for item in items} & set(seen.loc[seen.user_id == user, "item_id"])


def test_ranking_task_reports_sampled_metrics(tiny_config):
    settings = load_settings(tiny_config).settings
    report = run_evaluate(settings, ["popularity", "item_knn"], eval_task="ranking", num_negatives=5,
                          sampling_strategy="popularity", write_files=False)
    metrics = report.models[1].metrics
    assert 0.0 <= metrics["sampled_auc"] <= 1.0 and "sampled_ndcg@5" in metrics
    assert "ndcg@5" not in metrics  # no full-ranking numbers mixed in
    assert any("not comparable" in note for note in report.notes)
    assert not any(m.cold_item_metrics for m in report.models)  # a cold-item table is full ranking only: it says so
    assert any("unseen in training (no cold-item report: it needs --eval-task retrieval)" in n for n in report.notes)
    assert not report.comparisons() and any("No user-by-user comparison of popularity" in n for n in report.notes)


def test_sampled_negatives_are_never_the_users_validation_items_whichever_train_file(tiny_config):
    """Naming the split's own train.csv as --train-data leaves val unmasked (the file is the user's), but val items
    are still the user's positives: never drawn as negatives, so the sampled numbers are the split's."""
    from mmrec.evaluation.dataset import build_evaluation_data

    settings = load_settings(tiny_config).settings
    splits = Path(settings.paths.splits_dir)
    kwargs = dict(eval_task="ranking", num_negatives=5, write_files=False)
    split = run_evaluate(settings, ["popularity", "item_knn"], **kwargs)
    named = run_evaluate(settings, ["popularity", "item_knn"], train_data=splits / "train.csv", **kwargs)
    assert [m.metrics for m in named.models] == [m.metrics for m in split.models]
    train, val, test = (pd.read_csv(splits / f"{name}.csv", dtype=str) for name in ("train", "val", "test"))
    items = pd.read_parquet(Path(settings.paths.processed_dir) / "items.parquet")["item_id"].tolist()
    data = build_evaluation_data(train, test, items, known=[val])
    assert data.known.nnz > 0 and (data.not_negatives - data.exclude).nnz == data.known.nnz  # val: not masked


def test_ranking_task_saves_the_same_top_k_lists_as_retrieval(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    lists = {}
    for task in ("ranking", "retrieval"):
        run_evaluate(settings, ["item_knn"], eval_task=task, num_negatives=5, save_predictions=tmp_path / f"{task}.json")
        lists[task] = json.loads((tmp_path / f"{task}.json").read_text())
    assert lists["ranking"]["item_knn"] and lists["ranking"] == lists["retrieval"]


def test_the_sampled_negatives_are_saved_beside_the_predictions_and_recompute_the_figures(tiny_config, tmp_path):
    """A researcher could reproduce the sampled figures only by calling mmrec's own sample_negatives: the pairs
    every model was ranked against are written beside --save-predictions."""
    import numpy as np

    settings = load_settings(tiny_config).settings
    report = run_evaluate(settings, ["popularity"], eval_task="ranking", num_negatives=5,
                          save_predictions=tmp_path / "p.json")
    saved = json.loads((tmp_path / "p.negatives.json").read_text())
    assert saved["protocol"] == report.protocol and report.files["negatives"] == tmp_path / "p.negatives.json"
    splits = Path(settings.paths.splits_dir)
    train, val, test = (pd.read_csv(splits / f"{name}.csv", dtype=str) for name in ("train", "val", "test"))
    owned = pd.concat([train, val, test]).groupby("user_id")["item_id"].apply(set)
    counts = train["item_id"].value_counts()
    aucs = []
    for pair in saved["pairs"]:
        assert len(set(pair["negatives"])) == 5 and not set(pair["negatives"]) & owned[pair["user_id"]]
        positive = counts.get(pair["item_id"], 0)
        negatives = np.array([counts.get(item, 0) for item in pair["negatives"]])
        aucs.append(((negatives < positive).sum() + 0.5 * (negatives == positive).sum()) / 5)
    assert len(aucs) == report.models[0].metrics["sampled_positives"]
    assert np.mean(aucs) == pytest.approx(report.models[0].metrics["sampled_auc"])  # popularity = training counts
    run_evaluate(settings, ["popularity"], eval_task="ranking", num_negatives=5, save_predictions=tmp_path / "p.csv")
    table = pd.read_csv(tmp_path / "p.negatives.csv", dtype=str, keep_default_na=False)
    # A row per negative: joined by spaces in one cell, ids holding a space ('box 7') read as several negatives.
    assert list(table.columns) == ["user_id", "item_id", "negative"] and len(table) == 5 * len(aucs)
    from_csv = table.groupby(["user_id", "item_id"], sort=False)["negative"].apply(list).to_dict()
    assert from_csv == {(pair["user_id"], pair["item_id"]): pair["negatives"] for pair in saved["pairs"]}


def test_results_do_not_depend_on_batch_size_or_parallelism(tiny_config):
    settings = load_settings(tiny_config).settings
    a = run_evaluate(settings, ["user_knn", "random"], write_files=False)
    small = load_settings(tiny_config, {"evaluation.batch_size": 3}).settings
    b = run_evaluate(small, ["user_knn", "random"], use_parallel=True, num_workers=2, write_files=False)
    assert [m.metrics for m in a.models] == [m.metrics for m in b.models]


def test_empty_test_file_and_missing_column_are_clear_errors(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    empty = tmp_path / "empty.csv"
    empty.write_text("user_id,item_id\n")
    with pytest.raises(DataError, match="has a header but no rows"):
        run_evaluate(settings, ["random"], test_data=empty)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item_id\nu1,i000\n")
    with pytest.raises(DataError, match="lacks column"):
        run_evaluate(settings, ["random"], test_data=bad)
    with pytest.raises(ConfigError):
        run_evaluate(settings, ["svd"])


def test_a_test_file_that_is_a_folder_is_named_as_such(tmp_path):
    from mmrec.evaluation.dataset import read_interactions_file

    with pytest.raises(DataError, match="is a folder, not a file"):
        read_interactions_file(tmp_path, "test")


def test_a_test_file_is_read_as_preprocess_reads_its_files(tmp_path):
    # A separator at the end of every line made pandas take the user ids as the index: user ids became the item
    # ids; a line longer than the header is now refused, naming it; compressed files are read.
    import gzip

    from mmrec.evaluation.dataset import read_interactions_file

    test = tmp_path / "test.csv"
    test.write_text("user_id,item_id\nu1,a,\nu2,NA,\n")
    assert read_interactions_file(test, "test")[["user_id", "item_id"]].values.tolist() == [["u1", "a"], ["u2", "NA"]]
    test.write_text("user_id,item_id\nu1,a\nu2,b,c\n")
    with pytest.raises(DataError, match="line 3 holds 3 fields, the header 2") as info:
        read_interactions_file(test, "test")
    assert "malformed_lines" not in info.value.hint  # a setting of preprocess, not of this file
    packed = tmp_path / "test.tsv.gz"
    packed.write_bytes(gzip.compress(b"user_id\titem_id\nu1\ta\n"))
    assert read_interactions_file(packed, "test")[["user_id", "item_id"]].values.tolist() == [["u1", "a"]]


def test_a_files_times_are_read_as_numbers_as_preprocess_reads_them(tmp_path):
    """Read as text, 999999999 (2001) sorted after 1000000000: with `--train-data`, histories, recency profiles and
    transitions followed another order than training's, and evaluate could not reproduce its validation metric."""
    from mmrec.evaluation.dataset import read_interactions_file
    from mmrec.settings import DataSettings

    train = tmp_path / "train.csv"
    train.write_text("user_id,item_id,timestamp\nu1,a,1000000000\nu1,b,999999999\nu2,c,2001-09-09T01:46:41Z\n"
                     "u2,d,1000000001500\nu2,e,later\n")
    notes: list[str] = []
    read = read_interactions_file(train, "train", DataSettings(), notes)
    assert read["timestamp"].dtype == "int64"
    assert read["timestamp"].tolist() == [1_000_000_000, 999_999_999, 1_000_000_001, 1_000_000_001]
    assert read.sort_values("timestamp", kind="stable")["item_id"].tolist() == ["b", "a", "c", "d"]
    assert notes == ["1 row(s) of the train file train.csv have a time that cannot be read (e.g. 'later'): left out, "
                     "as preprocess leaves them out."]
    train.write_text("user_id,item_id,timestamp\nu1,a,soon\n")
    with pytest.raises(DataError, match="No time in the timestamp column of the train file"):
        read_interactions_file(train, "train", DataSettings(), [])
    # A split mmrec wrote holds unix seconds, whatever format the raw interactions had (with a strftime format, the
    # split's own files were refused; with excel, its seconds would be read as days).
    train.write_text("user_id,item_id,timestamp\nu1,a,1000000000\nu1,b,999999999\n")
    for written_as in ("%d/%m/%Y", "excel"):
        read = read_interactions_file(train, "train", DataSettings(timestamp_format=written_as), [])
        assert read["timestamp"].tolist() == [1_000_000_000, 999_999_999], written_as
    train.write_text("user_id,item_id,timestamp\nu1,a,05/12/2026\n")  # a raw file in the configured format
    assert read_interactions_file(train, "train", DataSettings(timestamp_format="%d/%m/%Y"), [])["timestamp"].tolist() \
        == [1_796_428_800]
    # Times the format writes as digits are read with it (taken for seconds, 202108110634 was a moment of 1976), and
    # a split of data before 1973 (seconds under 1e8) is read as seconds too.
    train.write_text("user_id,item_id,timestamp\nu1,a,202108110634\n")
    assert read_interactions_file(train, "train", DataSettings(timestamp_format="%Y%m%d%H%M"),
                                  [])["timestamp"].tolist() == [1_628_663_640]
    train.write_text("user_id,item_id,timestamp\nu1,a,82362863\n")
    assert read_interactions_file(train, "train", DataSettings(timestamp_format="%Y-%m-%d %H:%M:%S"),
                                  [])["timestamp"].tolist() == [82_362_863]


def test_unknown_test_items_are_counted(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    test = tmp_path / "test.csv"
    test.write_text("user_id,item_id\nu001,i003\nu001,nope\nu001,i003\n")  # u001 likes group 1: never had i003
    report = run_evaluate(settings, ["popularity"], test_data=test, write_files=False)
    assert report.counts["test_unknown_items_dropped"] == 1
    assert report.counts["test_duplicate_pairs"] == 1
    # Training rows on items that left the catalogue (a split older than the catalogue) are counted too.
    train = tmp_path / "train.csv"
    train.write_text("user_id,item_id\nu001,i001\nu001,gone\nu002,i002\n")
    report = run_evaluate(settings, ["popularity"], test_data=test, train_data=train, write_files=False)
    assert any(note.startswith("1 training interaction(s) are on items outside the catalogue (skipped")
               for note in report.notes)


def test_negatives_no_test_user_can_get_are_refused_not_a_table_of_nobody(tiny_config, tmp_path):
    # --num-negatives below the catalogue but above what any test user has outside their own: exit 0 with a table
    # of 0 scored users.
    from mmrec.data.tables import load_items

    settings = load_settings(tiny_config).settings
    n_items = len(load_items(Path(settings.paths.processed_dir)))
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("user_id,item_id\nu001,i001\nu001,i002\n")
    test.write_text("user_id,item_id\nu001,i003\n")  # u001 owns 3: at most n_items - 3 negatives
    with pytest.raises(ConfigError, match="no test user has that many items outside their own"):
        run_evaluate(settings, ["popularity"], test_data=test, train_data=train, eval_task="ranking",
                     num_negatives=n_items - 2, write_files=False)
    report = run_evaluate(settings, ["popularity"], test_data=test, train_data=train, eval_task="ranking",
                          num_negatives=n_items - 3, write_files=False)
    assert report.models[0].n_users == 1


def test_cut_offs_that_reach_every_item_a_test_user_can_be_shown_are_noted(tiny_config, tmp_path):
    from mmrec.data.tables import load_items

    settings = load_settings(tiny_config).settings
    n_items = len(load_items(Path(settings.paths.processed_dir)))
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("user_id,item_id\nu001,i001\nu001,i002\n")
    test.write_text("user_id,item_id\nu001,i003\n")
    settings = load_settings(tiny_config, {"evaluation.k_values": [1, n_items - 2]}).settings
    report = run_evaluate(settings, ["popularity"], test_data=test, train_data=train, write_files=False)
    assert any(note.startswith(f"Cut-off(s) {n_items - 2} reach the at most {n_items - 2} items a test user can be "
                               f"shown (the catalogue's {n_items} less the items each already has, which are masked)")
               for note in report.notes)


def test_a_test_file_reads_ids_as_preprocess_does(tiny_config, tmp_path):
    from mmrec.evaluation.dataset import read_interactions_file

    # NA / null / nan are ids, surrounding spaces are not part of one; a blank cell is an empty id.
    test = tmp_path / "test.csv"
    test.write_text("user_id,item_id\nNA,i004\n u001 , i005\nnull,nan\n")
    frame = read_interactions_file(test, "test")
    assert frame["user_id"].tolist() == ["NA", "u001", "null"] and frame["item_id"].tolist() == ["i004", "i005", "nan"]
    settings = load_settings(tiny_config).settings
    report = run_evaluate(settings, ["popularity"], test_data=test, write_files=False)
    assert report.counts["test_unknown_items_dropped"] == 1  # only 'nan', which the catalogue lacks
    test.write_text("user_id,item_id\nu001,i005\nu002,\n")
    with pytest.raises(DataError, match=r"1 row\(s\) with an empty user_id or item_id \(the first: row 2"):
        read_interactions_file(test, "test")  # no notes to count it in: an error
    notes: list[str] = []
    assert read_interactions_file(test, "test", settings.data, notes)["user_id"].tolist() == ["u001"]
    assert notes == ["The test file " + str(test) + " has 1 row(s) with an empty user_id or item_id (the first: row "
                     "2 of the data): left out, as preprocess leaves them out."]
    report = run_evaluate(settings, ["popularity"], test_data=test, write_files=False)
    assert notes[0] in report.notes
    # Separated as preprocess reads them (the header line tells), parquet whatever its name.
    test.write_text("user_id;item_id;rating\nu001;i004;4,5\n")
    assert read_interactions_file(test, "test")[["user_id", "item_id"]].values.tolist() == [["u001", "i004"]]
    pd.DataFrame({"user_id": ["u001"], "item_id": ["i005"]}).to_parquet(tmp_path / "test.data", index=False)
    assert read_interactions_file(tmp_path / "test.data", "test")["item_id"].tolist() == ["i005"]
    test.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    with pytest.raises(DataError, match="is not text: it is a zip archive"):
        read_interactions_file(test, "test")


def test_plots_of_an_earlier_evaluation_are_removed(tiny_config):
    settings = load_settings(tiny_config).settings
    results = Path(settings.paths.results_dir)
    first = run_evaluate(settings, ["popularity", "item_knn"])
    assert (results / "bar_ndcg.png").is_file() and (results / "metrics_at_k.png").is_file()
    second = run_evaluate(settings, ["item_knn"], eval_task="ranking", num_negatives=5)
    pngs = {path.name for path in results.glob("*.png")}
    assert pngs == {path.name for path in second.files.values() if path.suffix == ".png"}
    assert "bar_ndcg.png" not in pngs and "bar_sampled_auc.png" in pngs
    assert first.files.keys() != second.files.keys()


def test_an_evaluation_killed_while_writing_leaves_the_previous_set_whole(tiny_config, monkeypatch):
    """JSON, markdown and plots land together: a crash while the plots are drawn (a kill, a full disk) once left the
    new evaluation.json beside the previous evaluation's plots."""
    import mmrec.evaluation.plots as plots

    settings = load_settings(tiny_config).settings
    results = Path(settings.paths.results_dir)
    run_evaluate(settings, ["popularity", "item_knn"])
    before = {path.name: path.read_bytes() for path in results.iterdir()}

    def crash(report, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "write_plots", crash)
    with pytest.raises(OSError):
        run_evaluate(settings, ["item_knn"])
    assert {path.name: path.read_bytes() for path in results.iterdir()} == before  # no staging folder left either


def test_predictions_in_another_format_are_refused_before_any_work(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    with pytest.raises(ConfigError, match=r"\.json or \.csv"):
        run_evaluate(settings, ["item_knn"], save_predictions=tmp_path / "preds.txt")
    assert not (tmp_path / "preds.txt").exists() and not (Path(settings.paths.results_dir) / "evaluation.json").exists()


def test_test_pairs_the_user_already_has_in_train_are_not_positives(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    train = pd.read_csv(settings.paths.splits_dir / "train.csv", dtype=str)
    seen = train.iloc[0]
    only_seen = train[train["user_id"] == seen["user_id"]].head(2)  # this user's test rows are all in train
    fresh = train[(train["user_id"] != seen["user_id"])].iloc[:1]
    other = fresh.iloc[0]
    unseen = next(i for i in sorted(set(train["item_id"])) if
                  not ((train["user_id"] == other["user_id"]) & (train["item_id"] == i)).any())
    test = tmp_path / "test.csv"
    rows = [*map(tuple, only_seen[["user_id", "item_id"]].to_numpy()), (other["user_id"], other["item_id"]),
            (other["user_id"], unseen)]
    test.write_text("user_id,item_id\n" + "".join(f"{u},{i}\n" for u, i in rows))
    report = run_evaluate(settings, ["popularity"], test_data=test, write_files=False)
    assert report.counts["test_pairs_seen_in_training"] == 3 and report.counts["test_users_without_new_items"] == 1
    assert report.models[0].n_users == 1  # the other user, on the one item they do not have
    assert any("3 test interaction(s) repeat a user-item pair of the training data" in note
               and "1 test user(s) have no other and are not scored" in note for note in report.notes)


def test_a_test_file_in_the_users_own_columns_is_read_as_preprocess_reads_interactions(tiny_config, tmp_path):
    settings = load_settings(tiny_config, {"data.user_id_column": "viewer", "data.item_id_column": "video",
                                           "data.rating_column": "stars", "data.positive_rating_threshold": 4.0}
                             ).settings
    test = tmp_path / "test.csv"
    test.write_text("viewer,video,stars\nu001,i004,5\nu001,i005,2\nu002,i006,x\nu002,i007,4\n")
    notes: list[str] = []
    from mmrec.evaluation.dataset import read_interactions_file

    frame = read_interactions_file(test, "test", settings.data, notes)
    assert frame[["user_id", "item_id"]].values.tolist() == [["u001", "i004"], ["u002", "i007"]]
    assert notes == ["2 of the 4 rows of the test file test.csv rate below data.positive_rating_threshold (4) or "
                     "have no number: left out, as preprocess leaves them out of the interactions."]
    report = run_evaluate(settings, ["popularity"], test_data=test, write_files=False)
    assert report.counts["test_interactions"] == 2 and notes[0] in report.notes
    test.write_text("viewer,video,stars\nu001,i004,1\n")
    with pytest.raises(DataError, match="No row of the test file .* rates at or above"):
        run_evaluate(settings, ["popularity"], test_data=test, write_files=False)
    # data.unrated: positive keeps a row without a number, as preprocess keeps it (a re-check: it was left out).
    test.write_text("viewer,video,stars\nu001,i004,5\nu001,i005,2\nu002,i006,\n")
    notes.clear()
    unrated = settings.data.model_copy(update={"unrated": "positive"})
    frame = read_interactions_file(test, "test", unrated, notes)
    assert frame["item_id"].tolist() == ["i004", "i006"] and notes == [
        "1 of the 3 rows of the test file test.csv rate below data.positive_rating_threshold (4): left out, as "
        "preprocess leaves them out of the interactions."]


def test_a_test_file_of_training_pairs_only_is_refused(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    train = pd.read_csv(settings.paths.splits_dir / "train.csv", dtype=str).head(5)
    test = tmp_path / "test.csv"
    train[["user_id", "item_id"]].to_csv(test, index=False)
    with pytest.raises(DataError, match="Every one of the 5 test pairs is one the user already has"):
        run_evaluate(settings, ["popularity"], test_data=test, write_files=False)


def test_a_test_set_mostly_on_items_unseen_in_training_says_what_the_table_measures(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    train = pd.read_csv(Path(settings.paths.splits_dir) / "train.csv", dtype=str)
    catalogue = load_items(Path(settings.paths.processed_dir))["item_id"]
    cold = [item for item in catalogue if item not in set(train["item_id"])]
    warm = train["item_id"].iloc[0]
    user = train["user_id"].iloc[0]
    assert cold, "the tiny project keeps items out of training"
    test = tmp_path / "test.csv"
    rows = [(user, item) for item in cold] + [(train["user_id"].iloc[-1], warm)]
    pd.DataFrame(rows, columns=["user_id", "item_id"]).to_csv(test, index=False)
    notes = run_evaluate(settings, ["popularity"], test_data=test, write_files=False).notes
    share = [n for n in notes if "of the test interactions are on items unseen in training" in n]
    assert len(share) == 1 and share[0].startswith(f"{100 * len(cold) / len(rows):.0f}%")
    assert "--with-val" in share[0]  # the models scored from train.csv alone, validation only masked
    # Scored from train and validation together (--with-val, or a --train-data file of both): the advice to do
    # that is not given again.
    both = tmp_path / "train_val.csv"
    pd.concat([train, pd.read_csv(Path(settings.paths.splits_dir) / "val.csv", dtype=str)]).to_csv(both, index=False)
    for fit in ({"train_data": both}, {"with_val": True}):
        again = [n for n in run_evaluate(settings, ["popularity"], test_data=test, write_files=False, **fit).notes
                 if "of the test interactions are on items unseen" in n]
        assert len(again) == 1 and "--with-val" not in again[0]
    test.write_text(f"user_id,item_id\n{train['user_id'].iloc[-1]},{warm}\n")
    assert not any("of the test interactions are on items unseen" in n
                   for n in run_evaluate(settings, ["popularity"], test_data=test, write_files=False).notes)


def test_the_cold_item_share_note_gives_time_split_advice_only_when_asked():
    from types import SimpleNamespace

    from mmrec.pipeline.evaluate import _report_counts

    counts = {"test_unknown_items_dropped": 0, "test_duplicate_pairs": 0, "test_pairs_seen_in_training": 0,
              "test_users_without_new_items": 0, "test_cold_item_interactions": 8, "test_interactions": 10,
              "test_cold_users": 0}
    data = SimpleNamespace(counts=counts)
    item_split = " ".join(_report_counts(data, lambda event: None, val_apart=False))
    time_split = " ".join(_report_counts(data, lambda event: None, val_apart=True))
    assert "80% of the test interactions are on items unseen in training" in item_split
    assert "split by time" not in item_split and "On a split by time" in time_split


def test_a_test_of_only_new_users_says_the_table_cannot_tell_models_apart(tiny_config, tmp_path):
    settings = load_settings(tiny_config).settings
    test = tmp_path / "test.csv"
    test.write_text("user_id,item_id\nnew-a,i004\nnew-b,i005\n")
    report = run_evaluate(settings, ["popularity"], test_data=test, write_files=False)
    assert any("That is every test user (a split by user)" in note for note in report.notes)
    test.write_text("user_id,item_id\nnew-a,i004\nu001,i005\n")
    report = run_evaluate(settings, ["popularity"], test_data=test, write_files=False)
    assert not any("That is every test user" in note for note in report.notes)


def test_the_chance_level_beside_the_random_row_is_exact():
    from mmrec.evaluation.dataset import build_evaluation_data
    from mmrec.pipeline.evaluate import chance_note

    items = [f"i{j}" for j in range(12)]
    train = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["i0", "i1", "i0"]})
    test = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["i2", "i3", "i5"]})
    note = chance_note(build_evaluation_data(train, test, items), 3)
    # a: 10 rankable, 2 relevant; b: 11 rankable, 1 relevant. recall 3/10 and 3/11; hit 1 - C(8,3)/C(10,3), 1 - C(10,3)/C(11,3)
    recall, hit = (0.3 + 3 / 11) / 2, ((1 - 56 / 120) + (1 - 120 / 165)) / 2
    assert f"recall@3 is {recall:.4f} and hit_rate@3 {hit:.4f} in expectation" in note


def test_catalogue_coverage_is_the_share_of_items_in_any_top_k_list():
    import numpy as np

    from mmrec.evaluation.evaluator import catalogue_coverage

    topk = np.array([[0, 1, 2], [0, 1, 3], [0, 4, 5]])
    assert catalogue_coverage(topk, 10, [1, 2, 3]) == {"coverage@1": 0.1, "coverage@2": 0.3, "coverage@3": 0.6}
    assert catalogue_coverage(None, 10, [1]) == {} and catalogue_coverage(topk[:0], 10, [1]) == {}


def test_models_that_tie_every_cold_item_are_named_under_the_cold_table():
    from types import SimpleNamespace

    from mmrec.pipeline.evaluate import tied_cold_note

    def model(name, mrr, ndcg=0.0):
        return SimpleNamespace(name=name, cold_item_metrics={"ndcg@10": ndcg, "recall@10": ndcg, "mrr": mrr})

    results = [model("multimodal", 0.04, 0.08), model("random", 0.0045), model("popularity", 1 / 447),
               model("item_knn", 1 / 446)]
    assert tied_cold_note(results, 447) == (
        "On cold items item_knn, popularity score every item alike (they go by interactions, which cold items lack): "
        "ties rank the relevant ones last among the 447 cold items, so their cold MRR is about 1/447 and every top-K "
        "metric 0, not a signal.")
    assert tied_cold_note(results[:2], 447) is None


def test_models_are_compared_user_by_user_without_saving_predictions(tiny_config):
    report = run_evaluate(load_settings(tiny_config).settings, ("popularity", "item_knn"))
    compared = {(c["baseline"], c["metric"]) for c in report.comparisons()}
    assert compared == {("item_knn", "ndcg@10"), ("item_knn", "recall@10")}
    assert all(m.topk is None for m in report.models)  # the lists are kept only to be saved


def test_the_chance_level_of_sampled_metrics_is_noted_beside_the_random_row(tiny_config):
    import numpy as np

    from mmrec.pipeline.evaluate import sampled_chance_note

    note = sampled_chance_note(99, 10)  # rank uniform over 1..100
    ndcg = sum(1 / np.log2(r + 1) for r in range(1, 11)) / 100
    assert "sampled_auc is 0.5, sampled_hit_rate@10 0.1000" in note and f"sampled_ndcg@10 {ndcg:.4f}" in note
    ranks = np.random.default_rng(0).integers(1, 101, 200_000)  # the same by simulation
    assert abs(float(np.mean((ranks <= 10) / np.log2(ranks + 1))) - ndcg) < 1e-3
    assert "sampled_hit_rate@5 1.0000" in sampled_chance_note(3, 5)  # a cut-off past every sampled candidate
    settings = load_settings(tiny_config).settings
    both = run_evaluate(settings, ["random"], use_sampling=True, num_negatives=5, write_files=False).notes
    assert any(n.startswith("By chance (a uniformly random ranking) recall@") for n in both)
    assert any(n.startswith("By chance (a uniformly random ranking) sampled_auc is 0.5") for n in both)
    ranking = run_evaluate(settings, ["random"], eval_task="ranking", num_negatives=5, write_files=False).notes
    assert [n for n in ranking if n.startswith("By chance")] == [sampled_chance_note(5, 5)]


def test_p_values_read_with_two_significant_digits():
    from mmrec.evaluation.report import format_p

    assert [format_p(p) for p in (0.25, 0.031, 0.00126, 0.00098, 4.2e-05, 1e-13)] == [
        "0.25", "0.031", "1.3e-03", "9.8e-04", "4.2e-05", "< 1e-12"]


def test_with_val_scores_from_train_and_validation_as_a_train_file_of_both_would(tiny_config, tmp_path):
    """--with-val: the split's val rows join its train rows for every model (the advice for a split by time, which
    had users concatenate the files by hand); the same figures as that file, and no val row masked twice."""
    settings = load_settings(tiny_config).settings
    splits = Path(settings.paths.splits_dir)
    both = tmp_path / "train_and_val.csv"
    pd.concat([pd.read_csv(splits / name, dtype=str) for name in ("train.csv", "val.csv")]).to_csv(both, index=False)
    names = ["popularity", "item_knn", "user_knn"]
    with_val = run_evaluate(settings, names, with_val=True, write_files=False)
    by_file = run_evaluate(settings, names, train_data=both, write_files=False)
    plain = run_evaluate(settings, names, write_files=False)
    assert [m.metrics for m in with_val.models] == [m.metrics for m in by_file.models]
    assert [m.metrics for m in with_val.models] != [m.metrics for m in plain.models]
    assert with_val.sources["fit_also"] == str(splits / "val.csv") and "masked" not in with_val.sources
    assert any("(--with-val)" in note for note in with_val.notes)
    assert with_val.counts["test_cold_users"] <= plain.counts["test_cold_users"]
    with pytest.raises(ConfigError, match="--with-val adds the split's validation rows"):
        run_evaluate(settings, names, with_val=True, train_data=both, write_files=False)
    val = pd.read_csv(splits / "val.csv", dtype=str)
    val.head(0).to_csv(splits / "val.csv", index=False)
    (splits / "split_files.json").unlink()  # the files replaced by hand, as the refusal of a mixed split says
    with pytest.raises(ConfigError, match="--with-val has no effect: the split in .* has no validation rows"):
        run_evaluate(settings, names, with_val=True, write_files=False)
