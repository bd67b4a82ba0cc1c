"""bench/ablation.py's user errors: one message and exit 2, as bench/run_peers.py gives them."""

import pytest

pytest.importorskip("cornac")


def _folder(root, files: dict[str, str]):
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_catalogue_of_ones_own_and_missing_split_files_are_refused_plainly(tmp_path, capsys):
    """It crashed with the MovieLens importer's traceback (exit 1) on a folder in mmrec's input format."""
    from bench.ablation import main

    shop = _folder(tmp_path / "shop", {"item_info.csv": "item_id,title\ni1,A\n",
                                      "interactions.csv": "user_id,item_id\nu1,i1\n"})
    movielens = _folder(tmp_path / "ml", {"ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,1\n",
                                          "movies.csv": "movieId,title,genres\n1,A (1990),Drama\n"})
    for folder, variant, said in ((shop, "catalogue", "runs on MovieLens folders"),
                                  (movielens, "no-tags", "no split files in")):
        with pytest.raises(SystemExit) as stop:
            main(["--data-dir", str(folder), "--text-variant", variant, "--workdir", str(tmp_path / "work")])
        error = capsys.readouterr().err
        assert stop.value.code == 2 and said in error and "hint:" in error
