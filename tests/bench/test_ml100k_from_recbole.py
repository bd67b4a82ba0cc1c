"""bench/ml100k_from_recbole.py: RecBole's ml-100k atomic files -> the ml-latest layout mmrec's importer reads, and
its posters matched by title from an ml-latest folder; bench/epoch_probe.py's early-stopping replay and split-half
selection check."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from bench.epoch_probe import selection_check, stop_at
from bench.ml100k_from_recbole import MEMBER, convert, link_posters, match_titles
from mmrec.data.movielens import import_movielens
from mmrec.settings import DataSettings

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
    f"{u}\t{i}\t{(u + i) % 5 + 1}\t{880000000 + 60 * (u * 10 + i)}\n" for u in (1, 2, 3) for i in (1, 2, 3))
ITEM = ("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "2\tGoldenEye\t1995\tAction Adventure Thriller\n"
        "3\tUnknown Film\t\tunknown\n")


def test_the_wheel_s_files_become_an_ml_latest_folder_the_importer_reads(tmp_path: Path):
    wheel = tmp_path / "recbole-1.2.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(MEMBER.format("inter"), INTER)
        archive.writestr(MEMBER.format("item"), ITEM)
    assert convert(wheel, tmp_path / "ml") == (9, 3)
    movies = (tmp_path / "ml" / "movies.csv").read_text().splitlines()
    assert movies[1] == "1,Toy Story (1995),Animation|Children's|Comedy"
    assert movies[3] == "3,Unknown Film,unknown"  # no year: the title stays as it is
    result = import_movielens(tmp_path / "ml", tmp_path / "out", None, DataSettings())
    assert (result.movies, result.ratings, result.users) == (3, 9, 3)
    info = (tmp_path / "out" / "item_info.csv").read_text()
    assert "Toy Story" in info and "Children's" in info and "1995" in info


def test_titles_match_one_movie_each_or_none():
    source = {"1": "Postman, The (Postino, Il) (1994)", "2": "Star Wars: Episode IV - A New Hope (1977)",
              "3": "Fear (1996)", "4": "Dolores Claiborne (1995)", "5": "U.S. Marshals (1998)", "6": "My Life (1993)",
              "7": "Twister (1996)", "8": "Heat (1995)", "9": "Heat (1995)"}
    titles = {"10": "Postino, Il (1994)", "11": "Star Wars (1977)", "12": "Fear, The (1995)",
              "13": "Dolores Claiborne (1994)", "14": "U.S. Marshalls (1998)",
              "15": "My Life and Times With Antonin Artaud (1993)", "16": "Twisted (1996)", "17": "Heat (1995)",
              "18": "No Year"}
    assert match_titles(titles, source) == {
        "10": ("1", "title"),  # an alternate title, its article moved and dropped
        "11": ("2", "main title"),
        "13": ("4", "title, year +-1"),
        "14": ("5", "close spelling"),
    }  # 12: "The Fear" is not "Fear"; 15, 16: other films; 17: two candidates; 18: no year


def test_posters_are_linked_not_copied(tmp_path: Path):
    source, out = tmp_path / "latest", tmp_path / "ml"
    (source / "posters").mkdir(parents=True)
    out.mkdir()
    (source / "movies.csv").write_text("movieId,title,genres\n7,Toy Story (1995),Animation\n8,Heat (1995),Action\n")
    (source / "posters" / "7.jpg").write_bytes(b"jpeg")
    (out / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Action\n"
                                    "3,Casino (1995),Drama\n")
    assert link_posters(out, source) == (2, 1)  # Heat matched, but its poster is missing
    link = out / "posters" / "1.jpg"
    assert link.is_symlink() and link.read_bytes() == b"jpeg"
    assert not (out / "posters" / "2.jpg").exists()
    rows = (out / "posters_match.csv").read_text().splitlines()
    assert rows[1:] == ["1,Toy Story (1995),7,Toy Story (1995),title,yes", "2,Heat (1995),8,Heat (1995),title,no"]


def test_early_stopping_replay_keeps_the_epoch_the_trainer_would():
    values = np.array([0.1, 0.3, 0.2, 0.25, 0.29, 0.5])
    assert stop_at(values, epochs=6, patience=3) == 1  # three epochs without a new best: stops before the 0.5
    assert stop_at(values, epochs=6, patience=4) == 5
    assert stop_at(values, epochs=2, patience=4) == 1


def test_split_half_check_prefers_the_monitor_that_tracks_the_served_blend():
    # [epoch, (alone, blend 0.25 / 0.5 / 0.75), user]: the model alone peaks at epoch 0, the blend keeps rising.
    users = 40
    alone = np.array([0.5, 0.4, 0.3, 0.2])
    blend = np.array([0.3, 0.4, 0.5, 0.6])
    per_user = np.stack([np.stack([np.full(users, a), *(np.full(users, b) for _ in range(3))])
                         for a, b in zip(alone, blend, strict=True)])
    result = selection_check({"per_user": per_user.tolist()}, epochs=4, patience=5, halves=5)
    assert result["alone"] == pytest.approx(0.3) and result["blend0.5"] == pytest.approx(0.6)
    assert (result["wins"], result["losses"]) == (5, 0)
