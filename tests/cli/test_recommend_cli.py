"""`mmrec recommend` through the Typer app with baseline recommenders on a tiny project."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mmrec.cli.app import app
from mmrec.errors import ConfigError

runner = CliRunner()


def test_users_with_diversity_and_unknown_user(config, tmp_path):
    out = tmp_path / "recs.json"
    result = runner.invoke(app, [
        "recommend", "-c", str(config), "--users", "u001", "stranger", "--recommender_type", "item_knn",
        "--top_k", "4", "--use_diversity", "--diversity-lambda", "0.3", "--output", str(out),
    ])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    users = {u["user_id"]: u for u in saved["users"]}
    assert users["stranger"]["fallback"] == "popularity" and users["u001"]["fallback"] is None
    assert len(users["u001"]["items"]) == 4 and users["u001"]["items"][0]["title"].startswith("Item")
    assert users["u001"]["diversity_after"] >= users["u001"]["diversity_before"] - 1e-9
    seen = set(pd.read_parquet(tmp_path / "processed" / "interactions.parquet").query("user_id == 'u001'")["item_id"])
    assert not seen & {i["item_id"] for i in users["u001"]["items"]}
    assert "fallback" in result.output and "diversity" in result.output
    assert "1 user(s) unknown to the model got popularity recommendations (flagged `fallback`)" in _flat(result.output)
    raised = sum(u["diversity_after"] > u["diversity_before"] + 1e-6 for u in saved["users"]
                 if u["diversity_before"] is not None)
    assert f"{raised} of 2 list(s) more diverse" in _flat(result.output)  # how many MMR changed, not just a mean
    changes = {u["mmr_change"] for u in saved["users"] if u["diversity_before"] is not None}
    assert changes <= {"other items", "reordered", "unchanged"} and len(changes) >= 1
    # A reordered list was called "kept as ranked": the summary now says what MMR did to each list.
    assert ("kept as ranked" in result.output) == ("unchanged" in changes)
    assert ("in MMR's order" in _flat(result.output)) == ("reordered" in changes)
    reasons = [i["reason"] for i in users["u001"]["items"]]
    assert all(r["source"] == "item_knn" for r in reasons) and any("similar_to" in r for r in reasons)
    assert users["stranger"]["items"][0]["reason"]["source"] == "popularity"


def test_user_file_sample_users_and_include_seen(config, tmp_path):
    file = tmp_path / "users.txt"
    file.write_bytes("# users to mail\nu002\n\nu003\n u002\nu002\n".encode("utf-8-sig"))  # a BOM, as Notepad writes
    out = tmp_path / "r.json"
    result = runner.invoke(app, [
        "recommend", "--config", str(config), "--user-file", str(file), "--sample-users", "2",
        "--recommender-type", "popularity", "--include-seen", "--top-k", "30", "--output", str(out),
    ])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert [u["user_id"] for u in saved["users"]][:2] == ["u002", "u003"] and len(saved["users"]) == 4
    assert len(saved["users"][0]["items"]) == 30  # seen items allowed: the whole catalogue
    parts = pd.concat([pd.read_csv(config.parent / "splits" / f"{p}.csv", dtype=str) for p in ("train", "val", "test")])
    had = set(parts.loc[parts["user_id"] == "u002", "item_id"])  # served from every interaction the user has
    seen = {item["item_id"] for item in saved["users"][0]["items"] if item["reason"].get("seen")}
    assert had and seen == had  # said to be the user's own, not "because you liked" the item itself
    assert saved["notes"][:2] == [
        f"User file {file}: 1 comment line(s) starting with # and 1 blank line(s) skipped (an id that starts with # "
        "can be passed with --users).", "1 user id(s) were named more than once (2 repeats); each user gets one list."]


def test_a_user_file_exported_from_a_table_has_its_header_skipped_and_counted(tmp_path):
    from mmrec.pipeline.recommend import requested_users

    file = tmp_path / "users.csv"
    file.write_text("userId\nu002\nu003\n")
    named, notes = requested_users(None, file)
    assert named == ["u002", "u003"]
    assert notes == [f"User file {file}: 1 column header 'userId' skipped (a user with that id can be passed "
                     "with --users)."]
    file.write_text("customer\nu002\n")  # the configured data.user_id_column
    assert requested_users(["user_id"], file, "Customer")[0] == ["user_id", "u002"]  # --users is taken as typed
    file.write_text("u002\nuser_id\n")  # only a first line is a header
    assert requested_users(None, file) == (["u002", "user_id"], [])
    file.write_text("segment;User_ID\ngold;u002\nsilver;u003\nbronze\n")  # a table: its user id column
    named, notes = requested_users(None, file)
    assert named == ["u002", "u003"]
    assert notes == [f"User file {file}: it is a table (';'-separated, header 'segment;User_ID'): its 'user_id' "
                     "column was read; 1 row(s) without a value there skipped."]
    file.write_text("user_id\tx\nu002\t1\n\t2\n")  # an empty first cell is no user, not the next column's value
    assert requested_users(None, file)[0] == ["u002"]
    # A file that names nobody is a mistake, whatever else names users: said as such, with what it held.
    file.write_text("user_id\n# only comments\n")
    with pytest.raises(ConfigError, match=r"holds no user id \(1 comment line\(s\), the column header 'user_id'\)"):
        requested_users(["u002"], file)
    file.write_text("")
    with pytest.raises(ConfigError, match=r"holds no user id \(it is empty\)"):
        requested_users(None, file)
    file.write_text("u\u2028line\r\nu002\rold-mac\n", encoding="utf-8")  # U+2028 is inside an id, not a line end
    assert requested_users(None, file)[0] == ["u\u2028line", "u002", "old-mac"]
    file.write_text("segment,user_id\ngold,\n")
    with pytest.raises(ConfigError, match=r"the column header 'segment,user_id', 1 row\(s\) without a user id"):
        requested_users(None, file)


def test_table_rows_without_a_user_id_column_are_refused_and_pointed_out_in_users(config, tmp_path):
    file = tmp_path / "users.csv"
    file.write_text("u001,gold\nu002,silver\n")
    result = _recommend(config, "--user-file", str(file))
    assert result.exit_code == 2 and "has a ',' in every line, like a table" in _flat(result.output)
    result = _recommend(config, "--users", "u001,gold")  # no user asked is known: refused, saying why
    assert result.exit_code == 2 and "1 requested id(s) are no user but start with one" in _flat(result.output)


def test_comma_joined_known_ids_are_pointed_out(config):
    result = _recommend(config, "--users", "u001,u002")  # no user asked is known: refused, saying why
    assert result.exit_code == 2 and "ids are separated by spaces (--users u1 u2)" in _flat(result.output)
    result = _recommend(config, "--users", "u001,u002", "--unknown-users", "fallback")
    assert result.exit_code == 0 and "ids are separated by spaces (--users u1 u2)" in _flat(result.output)


def test_requested_users_in_another_unicode_form_or_mangled_are_matched_or_pointed_out():
    from mmrec.pipeline.recommend import select_users

    known = ["Mar\u00eda", "00042", "u1"]
    chosen, notes = select_users(known, ["Mari\u0301a", "42", "U1"], None, 0)
    assert chosen == ["Mar\u00eda", "42", "U1"]  # the decomposed name is the known user; the others stay unknown
    unicode, numbers, cases = notes
    assert unicode.startswith("1 id(s) of the requested users are known users' ids written in another Unicode form")
    assert "'42' -> '00042'" in numbers and "known user ids" in numbers and "catalogue" not in numbers
    assert "'U1' vs 'u1'" in cases


def test_output_dash_writes_the_json_to_stdout_and_the_tables_to_stderr(config):
    result = _recommend(config, "--users", "u001", "stranger", "-o", "-")
    assert result.exit_code == 0, result.output
    saved = json.loads(result.stdout)  # nothing else on stdout: a pipe into jq works
    assert [u["user_id"] for u in saved["users"]] == ["u001", "stranger"] and "fallback" in result.stderr
    assert not (config.parent / "-").exists() and not Path("-").exists()  # no file named "-"


def test_no_users_is_a_clear_error(config):
    result = runner.invoke(app, ["recommend", "-c", str(config), "--recommender-type", "random"])
    assert result.exit_code == 2 and "No users" in result.output


def _recommend(config, *args):
    return runner.invoke(app, ["recommend", "-c", str(config), "--recommender-type", "popularity", *args])


def _flat(output: str) -> str:
    return " ".join(output.replace("│", " ").split())


def test_user_file_that_is_not_utf8_is_a_clear_error(config, tmp_path):
    file = tmp_path / "users.txt"
    file.write_bytes("u001\nj\xfcrgen\n".encode("latin-1"))
    result = _recommend(config, "--user-file", str(file))
    assert result.exit_code == 2 and "DataError" in result.output and "not UTF-8" in _flat(result.output)


def test_user_file_that_is_a_directory_says_so(config, tmp_path):
    result = _recommend(config, "--user-file", str(tmp_path))
    assert result.exit_code == 2 and "is a folder, not a file" in _flat(result.output)
    assert "does not exist" not in _flat(result.output)
    result = _recommend(config, "--user-file", "/dev/zero")  # read whole, it took all of a machine's memory
    assert result.exit_code == 2 and "is a device or socket, not a file" in _flat(result.output)


def test_output_that_is_a_directory_is_refused_before_any_work(config, tmp_path):
    result = _recommend(config, "--users", "u001", "--output", str(tmp_path))
    assert result.exit_code == 2 and "ConfigError" in result.output
    assert "is a directory" in _flat(result.output)


def test_an_output_over_the_config_the_data_or_an_input_is_refused_and_nothing_is_touched(config, tmp_path):
    """`--output` over the config, a split file or the processed items replaced them (exit 0): the next command
    blamed a split "killed half-way" or an unknown key. Each is refused before any work, the file as it was."""
    users = tmp_path / "users.txt"
    users.write_text("u001\n")
    for target, named, extra in ((config, "is the config file", ()),
                                 (tmp_path / "splits" / "test.csv", "lies inside paths.splits_dir", ()),
                                 (tmp_path / "processed" / "items.parquet", "lies inside paths.processed_dir",
                                  ("--all-users",)),
                                 (users, "is the --user-file", ("--user-file", str(users)))):
        before = target.read_bytes()
        args = ("--users", "u001") if not extra else extra
        result = _recommend(config, *args, "--output", str(target))
        assert result.exit_code == 2 and f"it {named}" in _flat(result.output), result.output
        assert target.read_bytes() == before
    assert _recommend(config, "--users", "u001", "--output", str(tmp_path / "results" / "recs.json")).exit_code == 0


def test_all_users_parquet_rows_equal_recommend_for_one_user(config, tmp_path):
    out = tmp_path / "recs.parquet"
    result = runner.invoke(app, ["recommend", "-c", str(config), "--all-users", "--output", str(out),
                                 "--recommender-type", "item_knn", "--top-k", "4"])
    assert result.exit_code == 0, result.output
    assert "recommendations for 41 users" in _flat(result.output)
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["user_id", "rank", "item_id", "score", "fallback"]
    assert frame["user_id"].nunique() == 41 and frame["fallback"].isna().all()  # every user known to the model
    import pyarrow.parquet as pq

    made_by = json.loads(pq.read_schema(out).metadata[b"mmrec"])  # a baseline: no checkpoint
    assert made_by == {"recommender": "item_knn", "checkpoint": None}
    single = tmp_path / "u007.json"
    assert runner.invoke(app, ["recommend", "-c", str(config), "--users", "u007", "--output", str(single),
                               "--recommender-type", "item_knn", "--top-k", "4"]).exit_code == 0
    items = json.loads(single.read_text())["users"][0]["items"]
    rows = frame[frame["user_id"] == "u007"]
    assert rows["item_id"].tolist() == [i["item_id"] for i in items] and rows["rank"].tolist() == [1, 2, 3, 4]
    assert rows["score"].tolist() == pytest.approx([i["score"] for i in items], abs=1e-5)


def test_parquet_output_for_chosen_users_counts_unknown_users(config, tmp_path):
    out = tmp_path / "recs.parquet"
    result = _recommend(config, "--users", "u001", "stranger", "--output", str(out))
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert set(frame["user_id"]) == {"u001", "stranger"}
    assert set(frame.loc[frame["user_id"] == "stranger", "fallback"]) == {"popularity"}
    assert frame.loc[frame["user_id"] == "u001", "fallback"].isna().all()
    assert "1 user(s) unknown to the model got the popularity list everyone gets" in _flat(result.output)


@pytest.mark.parametrize(("args", "message"), [
    (["--all-users", "--output", "recs.csv"], "does not end in .parquet"),
    (["--all-users", "--output", "recs.jsonl"], "does not end in .parquet"),
    (["--all-users"], "needs --output"),
    (["--all-users", "--output", "r.parquet", "--use-diversity"], "diversity is not computed"),
    (["--users", "u001", "--ann-check", "5"], "batch mode only"),
    (["--users", "u001", "--diversity-lambda", "0.3"], "--diversity-lambda 0.3 has no effect"),
    (["--all-users", "--output", "r.parquet", "--ann", "faiss_hnsw"], "has none"),
    (["--all-users", "--output", "r.parquet", "--ann", "annoy"], "inference.ann: Input should be 'none'"),
    (["--users", "u001", "--output", "recs.csv"], "per-user recommendations are written as JSON"),
])
def test_batch_mode_refusals_exit_2(config, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = _recommend(config, *args)
    assert result.exit_code == 2 and message in _flat(result.output), result.output
    assert not list(tmp_path.glob("*.parquet")) and not list(tmp_path.glob("recs.*"))


def test_ann_without_faiss_is_a_clear_error(config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    result = _recommend(config, "--all-users", "--output", str(tmp_path / "r.parquet"), "--ann", "faiss_ivf")
    text = _flat(result.output)
    assert result.exit_code == 2 and "needs faiss-cpu" in text and "mmrec[ann]" in text, text


def test_help_says_batch_mode_omits_reasons():
    result = runner.invoke(app, ["recommend", "--help"])
    assert "Reasons and diversity are not computed in batch mode" in _flat(result.output)


def test_users_are_stripped_as_in_a_user_file(config, tmp_path):
    out = tmp_path / "r.json"
    result = _recommend(config, "--users", " u001", "u002 ", "--recommender-type", "item_knn", "--output", str(out))
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert [(u["user_id"], u["fallback"]) for u in saved["users"]] == [("u001", None), ("u002", None)]


def test_short_lists_and_a_sample_larger_than_the_users_are_noted(config, tmp_path):
    out = tmp_path / "r.json"
    result = _recommend(config, "--users", "u001", "--top-k", "1000", "--output", str(out))
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert len(saved["users"][0]["items"]) < 30
    assert any("1 user(s) got fewer than 1,000 items: the catalogue has only 30 items" in n for n in saved["notes"])
    seen = pd.read_parquet(tmp_path / "processed" / "interactions.parquet").query("user_id == 'u001'")
    k = 30 - seen["item_id"].nunique() + 1  # one more than u001's unseen items
    result = _recommend(config, "--users", "u001", "--top-k", str(k), "--output", str(out))
    note = f"1 user(s) got fewer than {k} items: they have seen more than {30 - k} of the 30 items"
    assert any(n.startswith(note) for n in json.loads(out.read_text())["notes"]), result.output
    # --top-k the catalogue's size: "seen more than 0 of the 30 items" read oddly (--k: evaluate's name for it)
    result = _recommend(config, "--users", "u001", "--k", "30", "--output", str(out))
    note = "1 user(s) got fewer than 30 items: the catalogue has only 30 items, less the ones each user has seen."
    assert note in json.loads(out.read_text())["notes"], result.output
    result = _recommend(config, "--sample-users", "1000", "--output", str(out))
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    n_users = pd.read_parquet(tmp_path / "processed" / "interactions.parquet")["user_id"].nunique()
    assert len(saved["users"]) == n_users
    assert saved["notes"] == [f"--sample-users 1,000: there are only {n_users} known users, so all of them are "
                              "included."]
    assert f"only {n_users} known users" in _flat(result.output)


def test_items_rated_below_the_threshold_are_not_recommended_back(config, tmp_path):
    from mmrec.data.tables import save_rated_below

    args = ["recommend", "-c", str(config), "--users", "u001", "--recommender-type", "popularity", "--top-k", "3"]
    before = runner.invoke(app, [*args, "-o", str(tmp_path / "a.json")])
    first = json.loads((tmp_path / "a.json").read_text())["users"][0]["items"][0]["item_id"]
    save_rated_below(pd.DataFrame({"user_id": ["u001"], "item_id": [first]}), config.parent / "processed")
    after = runner.invoke(app, [*args, "-o", str(tmp_path / "b.json")])
    assert before.exit_code == 0 and after.exit_code == 0, after.output
    assert first not in [i["item_id"] for i in json.loads((tmp_path / "b.json").read_text())["users"][0]["items"]]
    assert "1 (user, item) pair(s) rated below data.positive_rating_threshold are not recommended back" in _flat(
        after.output)


def _add_new_items(config):
    """Three catalogue items no interaction names (one title with rich-markup-like brackets)."""
    from mmrec.data.tables import load_items, save_items

    processed = config.parent / "processed"
    items = load_items(processed)
    new = items.iloc[:3].assign(item_id=["n1", "n2", "n3"], title=["Fresh [/] cut", "Fresh [b]two", "Fresh 3"])
    save_items(pd.concat([items, new], ignore_index=True), processed)
    return {"n1", "n2", "n3"}


@pytest.mark.parametrize("diversity", [False, True])
def test_new_items_get_the_reserved_last_places(config, tmp_path, diversity):
    new = _add_new_items(config)
    args = ["--users", "u001", "stranger", "--recommender-type", "random", "--top-k", "4"]
    args += ["--use-diversity"] if diversity else []
    plain = runner.invoke(app, ["recommend", "-c", str(config), *args, "-o", str(tmp_path / "plain.json")])
    result = runner.invoke(app, ["recommend", "-c", str(config), *args, "--new-items", "2",
                                 "-o", str(tmp_path / "new.json")])
    assert plain.exit_code == 0 and result.exit_code == 0, result.output
    before, after = ({u["user_id"]: u["items"] for u in json.loads((tmp_path / f"{n}.json").read_text())["users"]}
                     for n in ("plain", "new"))
    flags = [i["new"] for i in after["u001"]]
    assert len(flags) == 4 and sum(flags) >= 2 and flags == [i["item_id"] in new for i in after["u001"]]
    kept = [i["item_id"] for i in after["u001"] if not i["new"]]  # the usual items keep their order, first
    assert kept == [i["item_id"] for i in before["u001"] if i["item_id"] not in new][:len(kept)]
    assert {i["item_id"] for i in before["u001"]} & new <= {i["item_id"] for i in after["u001"]}
    assert not any(i["new"] for i in after["stranger"])  # the popularity fallback ranks no new item
    flat = _flat(result.output)
    assert "(new)" in flat and "3 of 33 catalogue items have no interaction yet" in flat
    assert "1 of 2 lists hold new items" in flat
    assert "Fresh [/] cut" in flat or "Fresh [b]two" in flat or "Fresh 3" in flat  # printed as written
    if diversity:  # the diversity said is the served lists' (it was taken before the new items went in)
        from mmrec.data.tables import load_interactions, load_items
        from mmrec.inference.diversity import intra_list_diversity
        from mmrec.pipeline.recommend import _similarity_fn
        from mmrec.recommenders.random import RandomRecommender

        item_ids = load_items(config.parent / "processed")["item_id"].tolist()
        index = {item: j for j, item in enumerate(item_ids)}
        similarity = _similarity_fn(RandomRecommender(), load_interactions(config.parent / "processed"), index)
        undiversified = tmp_path / "undiversified.json"
        assert runner.invoke(app, ["recommend", "-c", str(config), *args[:-1], "--new-items", "2", "-o",
                                   str(undiversified)]).exit_code == 0
        served = json.loads(undiversified.read_text())["users"][0]["items"]
        (said,) = [u for u in json.loads((tmp_path / "new.json").read_text())["users"] if u["user_id"] == "u001"]
        for key, items in (("diversity_before", served), ("diversity_after", after["u001"])):
            rows = np.array([index[i["item_id"]] for i in items])
            assert said[key] == pytest.approx(intra_list_diversity(similarity(rows)), abs=1e-6), key


def test_new_items_in_batch_mode_and_too_many_places(config, tmp_path):
    new = _add_new_items(config)
    out = tmp_path / "recs.parquet"
    result = runner.invoke(app, ["recommend", "-c", str(config), "--all-users", "-o", str(out),
                                 "--recommender-type", "random", "--top-k", "4", "--new-items", "1"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["new"].tolist() == frame["item_id"].isin(new).tolist()  # the parquet marks them
    per_user = frame.groupby("user_id")["new"].sum()
    assert len(per_user) == 41 and (per_user >= 1).all()
    assert f"41 of 41 lists hold new items ({per_user.sum()} in all)" in _flat(result.output)
    result = runner.invoke(app, ["recommend", "-c", str(config), "--users", "u001", "--top-k", "4",
                                 "--new-items", "5", "--recommender-type", "random"])
    assert result.exit_code == 2 and "cannot exceed top_k" in _flat(result.output)


@pytest.mark.parametrize("recommender", ["popularity", "item_knn", "user_knn"])
def test_new_items_need_a_recommender_that_scores_them(config, recommender):
    _add_new_items(config)
    result = runner.invoke(app, ["recommend", "-c", str(config), "--users", "u001", "--new-items", "1",
                                 "--recommender-type", recommender])
    flat = _flat(result.output)
    assert result.exit_code == 2 and "every new item gets the same score" in flat and "multimodal" in flat


def test_requested_ids_with_control_characters_are_skipped_not_printed(config, tmp_path):
    file = tmp_path / "users.txt"
    file.write_text("u001\n\x1b[31mRED\x1b[0m\n", encoding="utf-8")
    out = tmp_path / "r.json"
    result = _recommend(config, "--user-file", str(file), "--output", str(out))
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert [u["user_id"] for u in saved["users"]] == ["u001"] and "\x1b" not in result.output
    assert "1 requested user id(s) hold control characters (e.g. '\\x1b[31mRED\\x1b[0m') and were skipped" in \
        " ".join(saved["notes"])
    result = _recommend(config, "--users", "\x07bell")  # the error says why none is left (it said only "No users")
    assert result.exit_code == 2 and "No users to recommend for. 1 requested user id(s) hold control characters" in \
        _flat(result.output)
    result = _recommend(config, "--users", " ", "--output", str(out))  # an empty id is said to be skipped
    assert result.exit_code == 2 and "1 empty --users value(s) skipped" in _flat(result.output)
    assert _recommend(config, "--users", "", "u001", "--output", str(out)).exit_code == 0
    assert "1 empty --users value(s) skipped." in json.loads(out.read_text())["notes"]
    result = _recommend(config, "--users", ",,", "--output", str(out))  # unknown: refused; no "its parts are"
    assert result.exit_code == 2 and "comma-separated parts" not in _flat(result.output)


def test_the_diversity_summary_tells_reordered_lists_from_lists_kept_as_ranked():
    import io

    from rich.console import Console

    from mmrec.cli.recommend import print_result
    from mmrec.pipeline.recommend import RecommendResult, UserRecommendations

    users = [UserRecommendations("a", [], None, 0.2, 0.5, "other items"),
             UserRecommendations("b", [], None, 0.3, 0.3, "reordered"),
             UserRecommendations("c", [], None, 0.4, 0.4, "unchanged"),
             UserRecommendations("d", [], None, 0.4, 0.4, "unchanged")]
    out = io.StringIO()
    print_result(RecommendResult("multimodal", 5, users, 0.5), to=Console(file=out, width=400))
    assert ("1 of 4 list(s) more diverse; 1 with the same items in MMR's order (no more diverse set found); "
            "2 kept as ranked") in out.getvalue()


def test_every_baselines_reason_says_why(config, tmp_path):
    """docs/evaluation.md: `reason` holds `source` and `why` always (user_knn and random had no why, nor item_knn's
    items similar to nothing the user liked)."""
    for name in ("user_knn", "random", "item_knn", "popularity"):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["recommend", "-c", str(config), "--users", "u001", "u002", "--recommender-type",
                                     name, "--top-k", "30", "--output", str(out)])
        assert result.exit_code == 0, result.output
        reasons = [item["reason"] for user in json.loads(out.read_text())["users"] for item in user["items"]]
        assert reasons and all(reason["source"] == name and reason["why"] for reason in reasons), (name, reasons)
        if name == "user_knn":  # liked by similar users while their score lasts, then filling the list
            scored = [r for r in reasons if "neighbour_score" in r]
            assert scored and all(r["neighbour_score"] > 0 and r["why"] == "liked by the users most like you"
                                  for r in scored)
        if name in ("user_knn", "item_knn"):
            assert any(": it fills the list, by popularity" in r["why"] for r in reasons), name


def test_unknown_users_are_served_or_refused_as_inference_unknown_users_says(config, tmp_path):
    """The project's standard: an unknown user is an error (exit 2). Where no requested user is known (a typo, the
    wrong config), `auto` refuses; among known ones the unknown get the flagged fallback; a service opts in."""
    only = runner.invoke(app, ["recommend", "-c", str(config), "--users", "stranger", "0001",
                               "--recommender-type", "popularity"], terminal_width=200)
    assert only.exit_code == 2, only.output
    flat = _flat(only.output)
    assert "None of the 2 requested user(s) is known ('stranger', '0001')" in flat
    assert "--unknown-users fallback" in flat
    served = runner.invoke(app, ["recommend", "-c", str(config), "--users", "stranger", "--recommender-type",
                                 "popularity", "--unknown-users", "fallback", "-o", str(tmp_path / "r.json")])
    assert served.exit_code == 0, served.output
    assert json.loads((tmp_path / "r.json").read_text())["users"][0]["fallback"] == "popularity"
    mixed = ["recommend", "-c", str(config), "--users", "u001", "stranger", "--recommender-type", "popularity"]
    assert runner.invoke(app, mixed).exit_code == 0  # auto: served, flagged, counted
    strict = runner.invoke(app, [*mixed, "--unknown-users", "error"], terminal_width=200)
    assert strict.exit_code == 2 and "1 requested user(s) are unknown ('stranger')" in _flat(strict.output)
    batch = runner.invoke(app, ["recommend", "-c", str(config), "--users", "stranger", "--recommender-type",
                                "popularity", "-o", str(tmp_path / "r.parquet")], terminal_width=200)
    assert batch.exit_code == 2 and "None of the 1 requested user(s) is known" in _flat(batch.output)
    sampled = runner.invoke(app, ["recommend", "-c", str(config), "--users", "stranger", "--sample-users", "2",
                                  "--recommender-type", "popularity"])
    assert sampled.exit_code == 0, sampled.output  # known users asked too (sampled): auto serves


def test_a_user_id_written_with_leading_zeros_is_hinted():
    from mmrec.pipeline.recommend import select_users

    _, notes = select_users(["1", "u2"], ["0001", "u2"], None, 0)
    assert any("'0001' -> '1'" in note for note in notes)


def test_a_checkpoint_name_beside_a_baseline_is_refused(config):
    result = _recommend(config, "--users", "u001", "--checkpoint-name", "last_model.pth")  # popularity
    assert result.exit_code == 2 and "--checkpoint-name last_model.pth has no effect" in _flat(result.output)
