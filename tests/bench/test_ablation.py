"""bench/ablation.py's user errors: one message and exit 2, as bench/run_peers.py gives them."""

import pytest

pytest.importorskip("cornac")


def test_a_catalogue_of_ones_own_and_missing_split_files_are_refused_plainly(tmp_path, capsys):
    """It crashed with the MovieLens importer's traceback (exit 1) on a folder in mmrec's input format."""
    from bench.ablation import main

    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "item_info.csv").write_text("item_id,title\ni1,A\n")
    (shop / "interactions.csv").write_text("user_id,item_id\nu1,i1\n")
    with pytest.raises(SystemExit) as stop:
        main(["--data-dir", str(shop), "--text-variant", "catalogue", "--workdir", str(tmp_path / "work")])
    assert stop.value.code == 2 and "runs on MovieLens folders" in capsys.readouterr().err
    movielens = tmp_path / "ml"
    movielens.mkdir()
    (movielens / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n")
    (movielens / "movies.csv").write_text("movieId,title,genres\n1,A (1990),Drama\n")
    with pytest.raises(SystemExit) as stop:
        main(["--data-dir", str(movielens), "--text-variant", "no-tags", "--workdir", str(tmp_path / "work")])
    said = capsys.readouterr().err
    assert stop.value.code == 2 and "no split files in" in said and "run bench/run_peers.py" in said
