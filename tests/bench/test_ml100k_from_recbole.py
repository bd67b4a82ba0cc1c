"""bench/ml100k_from_recbole.py: RecBole's ml-100k atomic files -> the ml-latest layout mmrec's importer reads;
bench/epoch_probe.py's early-stopping replay and split-half selection check."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from bench.epoch_probe import selection_check, stop_at
from bench.ml100k_from_recbole import MEMBER, convert
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
