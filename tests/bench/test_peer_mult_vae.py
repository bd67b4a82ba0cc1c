"""The bench's own Mult-VAE / Mult-DAE (Liang et al.'s recipe, with input dropout): it learns and scores stably."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from bench.peers.evaluation import evaluate
from bench.peers.protocols import load_split, write_protocol
from bench.peers.systems import Context
from bench.peers.systems.mult_vae import SYSTEMS, fit_mult_vae

pytest.importorskip("torch")


def _two_taste_split(tmp_path):
    """Users of group g interact with 10 of group g's 20 items only: held-out items are in-group."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        group = u % 2
        for t, item in enumerate(rng.choice(20, size=10, replace=False) + 20 * group):
            rows.append((f"u{u}", f"i{item}", 1_000 + t))
    return load_split(write_protocol(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), "random",
                                     tmp_path))


def _config(model: str) -> dict:
    config = next(c for c in SYSTEMS[0].grid if c["model"] == model)
    return {**config, "hidden_dim": 32, "latent_dim": 8, "epochs": 60, "batch_size": 16}


@pytest.mark.parametrize("model", ["vae", "dae"])
def test_learns_which_items_a_user_group_takes(tmp_path, model):
    split = _two_taste_split(tmp_path)
    ctx = Context(seed=0, image=np.zeros((split.n_items, 1), np.float32), text=np.zeros((split.n_items, 1), np.float32))
    scorer = fit_mult_vae(split, _config(model), ctx)
    rows = np.arange(split.n_users)
    scores = scorer(rows)
    np.testing.assert_array_equal(scores, scorer(rows))  # eval mode: no dropout, z = the mean
    group = np.array([int(u[1:]) % 2 for u in split.users])
    item_group = np.array([int(i[1:]) // 20 for i in split.items])
    in_group = item_group[None, :] == group[:, None]
    top20 = np.argsort(-scores, axis=1)[:, :20]  # the group has 20 items
    assert np.take_along_axis(in_group, top20, axis=1).mean() > 0.9
    assert evaluate(split, scorer, "val")["ndcg@10"] > 0.3  # a random ranking of the 32 unseen items: about 0.13


def test_grid_stays_in_the_peer_budget():
    assert len(SYSTEMS[0].grid) <= 6 and {c["dropout"] for c in SYSTEMS[0].grid} == {0.5}
