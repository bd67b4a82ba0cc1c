from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmrec.data.movielens import import_movielens, split_title_year
from mmrec.errors import DataError
from mmrec.settings import DataSettings, load_settings


def test_title_year_split():
    assert split_title_year("Toy Story (1995)") == ("Toy Story", 1995.0)
    title, year = split_title_year("Babylon 5")
    assert title == "Babylon 5" and year != year


def _ml100k(folder: Path) -> Path:
    folder.mkdir()
    flags = ["0"] * 19
    action = flags.copy()
    action[1] = "1"
    rows = [
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{'|'.join(flags[:3] + ['1'] + flags[4:])}",
        f"2|GoldenEye (1995)|01-Jan-1995||http://x|{'|'.join(action)}",
        f"3|Caf\xe9 Society|01-Jan-1997||http://x|{'|'.join(flags)}",
    ]
    (folder / "u.item").write_bytes("\n".join(rows).encode("latin-1"))
    (folder / "u.data").write_text("10\t1\t5\t881250949\n10\t2\t3\t881250950\n11\t3\t4\t881250951\n")
    return folder


def test_ml100k_import(tmp_path):
    src = _ml100k(tmp_path / "ml-100k")
    posters = tmp_path / "posters"
    posters.mkdir()
    (posters / "2.jpg").write_bytes(b"jpeg-bytes")
    result = import_movielens(src, tmp_path / "out", posters, DataSettings())
    assert (result.flavour, result.movies, result.ratings, result.posters_copied) == ("ml-100k", 3, 3, 1)
    items = pd.read_csv(tmp_path / "out" / "item_info.csv", dtype={"item_id": str})
    assert items["title"].tolist() == ["Toy Story", "GoldenEye", "Café Society"]
    assert items["year"].tolist() == [1995.0, 1995.0, 1997.0]
    assert items["description"].tolist()[:2] == ["Genres: Animation.", "Genres: Action."]
    assert items["genres"].tolist()[:2] == ["Animation", "Action"]
    assert (tmp_path / "out" / "images" / "2.jpg").read_bytes() == b"jpeg-bytes"
    config = yaml.safe_load((tmp_path / "out" / "mmrec.yaml").read_text())
    assert config["data"] == {"numerical_features_cols": ["year"], "positive_rating_threshold": 4.0}
    assert (
        load_settings(tmp_path / "out" / "mmrec.yaml").settings.paths.data_dir == (tmp_path / "out").resolve()
    )


def test_a_reimport_keeps_unchanged_posters_and_an_edited_config(tmp_path):
    src = _ml100k(tmp_path / "ml-100k")
    posters = tmp_path / "posters"
    posters.mkdir()
    (posters / "2.jpg").write_bytes(b"jpeg-bytes")
    out = tmp_path / "out"
    import_movielens(src, out, posters, DataSettings())
    stamp = (out / "images" / "2.jpg").stat().st_mtime_ns
    again = import_movielens(src, out, posters, DataSettings())  # unedited: the config is simply rewritten
    assert again.posters_unchanged == 1 and (out / "images" / "2.jpg").stat().st_mtime_ns == stamp
    assert not again.config_kept and again.config_path == out / "mmrec.yaml"
    edited = (out / "mmrec.yaml").read_text().replace("threshold: 4.0", "threshold: 3.0")
    (out / "mmrec.yaml").write_text(edited)
    (posters / "2.jpg").write_bytes(b"a new poster")
    third = import_movielens(src, out, posters, DataSettings())
    assert third.config_kept == "edited" and (out / "mmrec.yaml").read_text() == edited  # the user's edit survives
    assert third.config_path == out / "mmrec.imported.yaml" and "threshold: 4.0" in third.config_path.read_text()
    assert third.posters_unchanged == 0 and (out / "images" / "2.jpg").read_bytes() == b"a new poster"


def test_an_import_into_a_folder_of_ones_own_data_is_refused_unless_forced(tmp_path):
    """Both importers replaced a user's own item_info.csv, interactions.csv and mmrec.yaml in --out without a word
    (data synth refuses that unless --force)."""
    from mmrec.errors import DataError

    src = _ml100k(tmp_path / "ml-100k")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "item_info.csv").write_text("item_id,title\nX,my precious\n")
    (out / "mmrec.yaml").write_text("training:\n  epochs: 3\n")
    with pytest.raises(DataError, match="already holds item_info.csv, which no import wrote") as info:
        import_movielens(src, out, None, DataSettings())
    assert "--force" in info.value.hint and "my precious" in (out / "item_info.csv").read_text()
    forced = import_movielens(src, out, None, DataSettings(), force=True)
    assert "my precious" not in (out / "item_info.csv").read_text()
    assert forced.config_kept == "own" and (out / "mmrec.yaml").read_text() == "training:\n  epochs: 3\n"  # kept
    from mmrec.data.import_config import kept_config_note

    assert "was not written by an import (your own config)" in kept_config_note(out, forced.config_path, "own")
    assert import_movielens(src, out, None, DataSettings()).config_kept == "own"  # again: still the user's own
    import_movielens(src, out, None, DataSettings())  # its own files: imported again without --force
    (out / "interactions.csv").write_text("user_id,item_id\nme,X\n")  # edited since
    with pytest.raises(DataError, match="already holds interactions.csv"):
        import_movielens(src, out, None, DataSettings())


def _ml1m(folder: Path, tags: bool = False) -> Path:
    """ml-1m's layout: `::`-separated, movies.dat in latin-1 with quotes and colons in titles; ml-10m adds tags.dat."""
    folder.mkdir()
    movies = ['1::Toy Story (1995)::Animation|Children\'s|Comedy', '2::"Great Day: The Movie" (1997)::Drama',
              '3::Caf\xe9 Society (2000)::Comedy|Romance']
    (folder / "movies.dat").write_bytes("\n".join(movies).encode("latin-1"))
    (folder / "ratings.dat").write_text("10::1::5::978300760\n10::2::3::978302109\n11::3::4::978301968\n")
    if tags:
        (folder / "tags.dat").write_text("10::1::pixar::1139045764\n11::1::Pixar::1139045765\n11::3::woody::1\n")
    return folder


@pytest.mark.parametrize("tags", [False, True])
def test_ml1m_and_ml10m_import(tmp_path, tags):
    src = _ml1m(tmp_path / "ml-1m", tags)
    result = import_movielens(src, tmp_path / "out", None, DataSettings())
    assert (result.flavour, result.movies, result.ratings, result.tagged_movies) == ("ml-1m", 3, 3, 2 if tags else 0)
    items = pd.read_csv(tmp_path / "out" / "item_info.csv", dtype={"item_id": str})
    assert items["title"].tolist() == ["Toy Story", '"Great Day: The Movie"', "Café Society"]
    assert items["year"].tolist() == [1995.0, 1997.0, 2000.0]
    assert items["description"][0] == "Genres: Animation, Children's, Comedy." + (" Tags: pixar." if tags else "")
    interactions = pd.read_csv(tmp_path / "out" / "interactions.csv", dtype={"user_id": str, "item_id": str})
    assert interactions.values.tolist() == [["10", "1", 978300760, 5.0], ["10", "2", 978302109, 3.0],
                                            ["11", "3", 978301968, 4.0]]
    # --max-users keeps user 10 (movies 1, 2): the tagged movies counted are those imported (1), not the file's (1, 3).
    fewer = import_movielens(src, tmp_path / "fewer", None, DataSettings(), max_users=1)
    assert (fewer.movies, fewer.tagged_movies) == (2, 1 if tags else 0)


def test_not_a_movielens_folder(tmp_path):
    with pytest.raises(DataError, match="not a MovieLens folder"):
        import_movielens(tmp_path, tmp_path / "out", None, DataSettings())
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n")
    with pytest.raises(DataError, match="movies.csv is a file, not a MovieLens folder"):
        import_movielens(tmp_path / "movies.csv", tmp_path / "out", None, DataSettings())
    with pytest.raises(DataError, match="nowhere does not exist"):
        import_movielens(tmp_path / "nowhere", tmp_path / "out", None, DataSettings())


def test_shared_ml_latest_small_subset(shared_movielens, tmp_path):
    src = Path(shared_movielens)
    result = import_movielens(src, tmp_path, src / "posters", DataSettings(), max_users=5)
    ratings = pd.read_csv(src / "ratings.csv", dtype=str)
    assert result.users == 5 and result.ratings == int(
        ratings["userId"].isin(["1", "2", "3", "4", "5"]).sum()
    )
    items = pd.read_csv(tmp_path / "item_info.csv", dtype={"item_id": str}).set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story" and items.loc["1", "year"] == 1995.0
    assert items.loc["1", "description"].startswith(
        "Genres: Adventure, Animation, Children, Comedy, Fantasy."
    )
    assert list(items.columns) == ["title", "description", "year", "genres"]  # no interaction statistics
    assert items.loc["1", "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert result.posters_copied + result.posters_missing == len(items) and result.posters_copied > 0
    assert sum(1 for _ in (tmp_path / "images").iterdir()) == result.posters_copied
