"""Mult-VAE and Mult-DAE as Liang et al. (WWW 2018, "Variational Autoencoders for Collaborative Filtering")
describe and ship them, written here in PyTorch because Cornac 3.0.1's VAECF (the "Mult-VAE" peer) leaves out
a part of the recipe: the input dropout.

The paper's recipe, kept: a user is the multi-hot row of their training items, L2-normalised, then dropout
(p 0.5, training only); encoder [n_items -> 600 -> 200] with tanh (the VAE's last layer gives mean and log
variance, the DAE's a point), decoder [200 -> 600 -> n_items] (both as in the authors' notebook); the multinomial
log-likelihood of the row under softmax(logits); the VAE's KL term weighted by beta, annealed linearly from 0
to its cap; Adam at 1e-3. The DAE's L2 penalty lam enters as Adam weight decay 2 lam (the authors' code
doubles TensorFlow's halved penalty; theirs skips the biases, this one decays them too). Scored with all of the
user's items in and z = the mean. As the authors do, each fit keeps the epoch with the best validation ranking
(checked every 10 epochs, up to 600, stopping after 5 checks without a gain; mmrec's own fits early-stop on
validation the same way). Changed for data this small: batch 100 instead of 500 (ml-100k has ~940 users: 500 would
be two steps an epoch), and beta reaches its cap after 2,000 steps instead of 200,000 (a 100k-rating dataset gives
~10 steps an epoch: the paper's schedule would never leave zero).
"""

from __future__ import annotations

import numpy as np

from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context, Scorer


def _network(n_items: int, hidden: int, latent: int, variational: bool):
    import torch
    from torch import nn

    class MultVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(n_items, hidden), nn.Tanh(),
                                         nn.Linear(hidden, 2 * latent if variational else latent))
            self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, n_items))
            for layer in (*self.encoder, *self.decoder):  # the authors' init: Xavier weights, N(0, 0.001) biases
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.normal_(layer.bias, std=0.001)

        def forward(self, x: torch.Tensor, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
            """(logits [b, n_items], KL per user [b]; zeros for the DAE)."""
            x = nn.functional.normalize(x, dim=1)
            x = nn.functional.dropout(x, p=dropout, training=self.training)
            h = self.encoder(x)
            if not variational:
                return self.decoder(torch.tanh(h)), torch.zeros(len(x), device=x.device)  # the code, tanh too
            mu, logvar = h.chunk(2, dim=1)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
            kl = 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar).sum(1)
            return self.decoder(z), kl

    return MultVAE()


def fit_mult_vae(split: Split, config: dict, ctx: Context) -> Scorer:
    import torch

    from bench.peers.evaluation import evaluate

    torch.manual_seed(ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    train = split.matrices["train"].astype(np.float32).tocsr()
    variational = config["model"] == "vae"
    net = _network(split.n_items, config["hidden_dim"], config["latent_dim"], variational)
    optimizer = torch.optim.Adam(net.parameters(), lr=config["learning_rate"],
                                 weight_decay=2.0 * config.get("lam", 0.0))
    users = np.flatnonzero(train.getnnz(axis=1) > 0)
    batch = config["batch_size"]

    def score(rows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits, _ = net(torch.from_numpy(train[rows].toarray()), 0.0)
        return logits.numpy()

    step, best, best_state, checks_since_best = 0, -1.0, None, 0
    for epoch in range(1, config["epochs"] + 1):
        net.train()
        order = rng.permutation(users)
        for start in range(0, len(order), batch):
            x = torch.from_numpy(train[order[start : start + batch]].toarray())
            logits, kl = net(x, config["dropout"])
            nll = -(torch.log_softmax(logits, dim=1) * x).sum(1).mean()
            beta = config.get("beta", 0.0) * min(1.0, step / config["anneal_steps"])
            loss = nll + beta * kl.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        if epoch % config["eval_every"] and epoch != config["epochs"]:
            continue
        # The authors keep the epoch with the best validation ranking; so does this fit (NDCG@10, this split's
        # validation part, as every peer's grid is chosen on).
        net.eval()
        value = evaluate(split, score, "val")["ndcg@10"]
        if value > best:
            best, checks_since_best = value, 0
            best_state = {name: tensor.clone() for name, tensor in net.state_dict().items()}
        else:
            checks_since_best += 1
            if checks_since_best >= config["patience"]:
                break
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    return score


_COMMON = {"hidden_dim": 600, "latent_dim": 200, "dropout": 0.5, "learning_rate": 1e-3, "batch_size": 100,
           "epochs": 600, "eval_every": 10, "patience": 5, "anneal_steps": 2000}

SYSTEMS = [
    BenchSystem(
        "Mult-VAE-paper", "bench",
        [{**_COMMON, "model": "vae", "beta": beta} for beta in (0.2, 0.5, 1.0)]
        + [{**_COMMON, "model": "dae", "lam": lam} for lam in (0.003, 0.01, 0.03)],
        fit_mult_vae, reads_text=False,
        notes="Liang et al.'s Mult-VAE (beta cap 0.2/0.5/1) and Mult-DAE (lam 0.003/0.01/0.03): input dropout 0.5, "
              "600-200, tanh, multinomial likelihood, batch 100; the epoch (<= 600) chosen on validation",
    ),
]
