"""Smoke tests of the stronger Cornac peers: each fits on a tiny split (1 config, 1-2 epochs) and ranks.

What is checked: the scorer covers the whole catalogue in catalogue order, training-unknown items
rank below known ones (or, for cold-capable systems, get real scores), and the metric code runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # repo root: `bench` is not installed

from test_peer_protocols import synthetic_positives

from bench.peers.evaluation import evaluate
from bench.peers.protocols import load_split, write_protocol
from bench.peers.systems import Context

pytest.importorskip("cornac")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _split(tmp_path, protocol: str, n_items: int = 50):
    return load_split(write_protocol(synthetic_positives(n_users=25, n_items=n_items, per_user=12), protocol, tmp_path))


def _ctx(split) -> Context:
    rng = np.random.default_rng(0)
    return Context(seed=0, image=rng.random((split.n_items, 16), dtype=np.float32),
                   text=rng.standard_normal((split.n_items, 8)).astype(np.float32))


def _system(name: str):
    from bench.peers.systems import all_systems

    return next(s for s in all_systems() if s.name == name)


def _tiny(config: dict) -> dict:
    small = {"n_epochs": 1, "epochs": 1, "hidden_dim": 32, "latent_dim": 8, "k": 8, "hidden": [16],
             "encoder": [16], "embedding_dim": 16, "n_sample": 16, "max_len": 10, "batch_size": 32}
    return {key: small.get(key, value) for key, value in config.items()}


@pytest.mark.parametrize("name, protocol, n_items", [
    ("RecVAE", "random", 50), ("Mult-VAE", "random", 50), ("Mult-VAE-paper", "random", 50), ("BiVAE", "random", 50),
    ("SASRec", "temporal", 50),
    ("AMR", "random", 50), ("AMR", "coldstart", 50),
    pytest.param("DMRL", "random", 50, marks=pytest.mark.slow),  # imports sentence_transformers (~10-30 s)
])
def test_peer_fits_and_scores_the_catalogue(tmp_path, name, protocol, n_items):
    split = _split(tmp_path, protocol, n_items)
    system = _system(name)
    assert len(system.grid) <= 6
    scorer = system.fit(split, _tiny(system.grid[0]), _ctx(split))
    scores = scorer(np.arange(3))
    assert scores.shape == (3, split.n_items) and np.isfinite(scores).all()
    metrics = evaluate(split, scorer, "val")
    assert 0.0 <= metrics["ndcg@10"] <= 1.0 and metrics["n_users"] > 0
    if split.cold_items is not None:  # cold-capable: unseen items are not all tied at the floor
        assert np.unique(scores[:, split.cold_items]).size > 1


def test_recvae_scores_in_eval_mode(tmp_path):
    """Cornac's RecVAE.score runs the net as fit leaves it (training mode: input dropout, sampled z); the
    bench puts it in eval mode, so a user's scores are the same on every call and use all their items."""
    split = _split(tmp_path, "random")
    scorer = _system("RecVAE").fit(split, _tiny(_system("RecVAE").grid[0]), _ctx(split))
    np.testing.assert_array_equal(scorer(np.arange(5)), scorer(np.arange(5)))


def test_sasrec_runs_on_temporal_only():
    assert _system("SASRec").protocols == ("temporal",)


def test_unavailable_peers_name_their_missing_package():
    from bench.peers.systems.cornac_deep import unavailable

    for name, reason in unavailable().items():
        assert name in {"LightGCN", "NGCF", "SANSA"} and "needs `" in reason
