"""Stronger Cornac 3.0.1 peers: the VAE family (RecVAE, Mult-VAE as VAECF, BiVAE) and SASRec.

Each is fitted on the split's training file, on the CPU, with at most 6 configs tuned on validation.
SASRec runs on the temporal protocol only: the user's training items in time order are its input
sequence, for validation and for test alike (every system is fitted on train only). LightGCN, NGCF
and SANSA need packages this environment lacks; `unavailable()` says which and why (bench/README.md).
"""

from __future__ import annotations

import numpy as np

from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context, Scorer
from bench.peers.systems.cornac_models import _generic_scorer, _index_maps, _train_set


def fit_recvae(split: Split, config: dict, ctx: Context) -> Scorer:
    import cornac.eval_methods
    from cornac.models import RecVAE

    train_set = _train_set(split, ctx.seed)
    model = RecVAE(hidden_dim=config["hidden_dim"], latent_dim=config["latent_dim"], gamma=config["gamma"],
                   lr=config["lr"], n_epochs=config["n_epochs"], batch_size=config["batch_size"],
                   seed=ctx.seed, use_gpu=False, verbose=False)
    # Cornac 3.0.1's RecVAE.fit ranks every training user after each epoch (NDCG@100 on the training set, shown
    # only in a progress bar; about 2.5 s of a 3.6 s epoch on ml-100k): skipped, it informs nothing.
    ranking_eval = cornac.eval_methods.ranking_eval
    cornac.eval_methods.ranking_eval = lambda **_: [[float("nan")]]
    try:
        model.fit(train_set)
    finally:
        cornac.eval_methods.ranking_eval = ranking_eval
    # Cornac 3.0.1's RecVAE.score runs the network as fit left it, in training mode: the encoder drops half of
    # the user's items (dropout 0.5) and z is sampled, at scoring time. The RecVAE paper's evaluation (and
    # its code) scores in eval mode: all items in, z = mu.
    model.recvae_model.eval()
    return _generic_scorer(model, split, train_set)


def fit_vaecf(split: Split, config: dict, ctx: Context) -> Scorer:
    from cornac.models import VAECF

    train_set = _train_set(split, ctx.seed)
    model = VAECF(k=config["k"], autoencoder_structure=config["hidden"], act_fn="tanh", likelihood="mult",
                  n_epochs=config["n_epochs"], batch_size=config["batch_size"], learning_rate=config["learning_rate"],
                  beta=config["beta"], seed=ctx.seed, use_gpu=False, verbose=False)
    return _generic_scorer(model.fit(train_set), split, train_set)


def fit_bivae(split: Split, config: dict, ctx: Context) -> Scorer:
    from cornac.models import BiVAECF

    train_set = _train_set(split, ctx.seed)
    model = BiVAECF(k=config["k"], encoder_structure=config["encoder"], act_fn="tanh",
                    likelihood=config["likelihood"], n_epochs=config["n_epochs"], batch_size=config["batch_size"],
                    learning_rate=config["learning_rate"], seed=ctx.seed, use_gpu=False, verbose=False)
    return _generic_scorer(model.fit(train_set), split, train_set)


def fit_sasrec(split: Split, config: dict, ctx: Context) -> Scorer:
    """SASRec over each user's training items in time order (one session per user)."""
    from cornac.data import SequentialDataset
    from cornac.models import SASRec

    train = split.frames["train"].sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    rows = list(zip(train["user_id"], train["user_id"], train["item_id"], train["timestamp"].astype(int)))
    train_set = SequentialDataset.from_usit(rows, seed=ctx.seed)
    model = SASRec(embedding_dim=config["embedding_dim"], n_epochs=config["n_epochs"], max_len=config["max_len"],
                   learning_rate=config["learning_rate"], dropout=config["dropout"], batch_size=config["batch_size"],
                   n_sample=config["n_sample"], num_blocks=config["num_blocks"], seed=ctx.seed, device="cpu",
                   verbose=False)
    model.fit(train_set)
    _users, cols = _index_maps(split, train_set)
    if model.total_items != len(cols):
        raise ValueError(f"SASRec scores {model.total_items} items, the training set has {len(cols)}")
    histories = {user: [train_set.iid_map[i] for i in items] for user, items in train.groupby("user_id")["item_id"]}

    def score(rows_: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows_), split.n_items), dtype=np.float32)
        for r, row in enumerate(rows_):
            user = split.users[row]
            known = np.asarray(model.score(train_set.uid_map.get(user, 0), histories.get(user, [])), dtype=np.float64)
            out[r] = known.min() - 1.0
            out[r, cols] = known
        return out

    return score


def unavailable() -> dict[str, str]:
    """Cornac peers that cannot run here: {name: the import error}."""
    reasons = {}
    for name, module in (("LightGCN", "dgl"), ("NGCF", "dgl"), ("SANSA", "sansa")):
        try:
            __import__(module)
        except ImportError as exc:
            reasons[name] = f"cornac.models.{name} needs `{module}`: {type(exc).__name__}: {exc}"
    return reasons


SYSTEMS = [
    BenchSystem(
        "RecVAE", "cornac",
        [{"hidden_dim": 600, "latent_dim": latent, "gamma": gamma, "lr": lr, "n_epochs": 50, "batch_size": 500}
         for latent, gamma, lr in ((200, 0.005, 5e-4), (200, 0.005, 1e-3), (200, 0.0035, 5e-4), (200, 0.01, 5e-4),
                                   (100, 0.005, 5e-4), (300, 0.005, 5e-4))],
        fit_recvae, notes="composite prior, alternating encoder/decoder updates; 50 epochs", reads_text=False,
    ),
    BenchSystem(
        "Mult-VAE", "cornac",
        [{"k": k, "hidden": [hidden], "beta": beta, "learning_rate": 1e-3, "n_epochs": 100, "batch_size": 100}
         for k, hidden in ((64, 256), (200, 600)) for beta in (0.2, 0.5, 1.0)],
        fit_vaecf, notes="cornac VAECF, multinomial likelihood, tanh; 100 epochs", reads_text=False,
    ),
    BenchSystem(
        "BiVAE", "cornac",
        [{"k": k, "encoder": [max(100, 2 * k)], "likelihood": likelihood, "learning_rate": 1e-3, "n_epochs": 300,
          "batch_size": 128} for k in (20, 50, 100) for likelihood in ("pois", "bern")],
        fit_bivae, notes="bilateral VAE, tanh; 300 epochs", reads_text=False,
    ),
    BenchSystem(
        "SASRec", "cornac",
        [{"embedding_dim": dim, "max_len": 50, "learning_rate": 1e-3, "dropout": dropout, "n_epochs": 30,
          "batch_size": 128, "n_sample": 512, "num_blocks": 2} for dim in (64, 128) for dropout in (0.2, 0.5)],
        fit_sasrec, protocols=("temporal",), reads_text=False,
        notes="self-attentive sequential model over the training items in time order; temporal protocol only",
    ),
]
