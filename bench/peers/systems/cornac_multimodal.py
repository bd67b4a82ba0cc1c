"""Cornac 3.0.1 multimodal peers on our features: AMR (posters) and DMRL (text + posters).

AMR is VBPR with adversarial perturbations of the image features; like VBPR it scores items it never
saw in training from the poster alone (their id factors are zero), so it runs on coldstart too. DMRL
(disentangled multimodal representation learning) takes the MiniLM text and EfficientNet-Lite0 image
features pre-encoded; it keeps an id embedding per item and cannot score unseen items. CausalRec
(the other choice the issue allows) is not added: AMR already covers the VBPR family's image path.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context, Scorer
from bench.peers.systems.cornac_models import _index_maps, _train_set, image_train_set


def fit_amr(split: Split, config: dict, ctx: Context) -> Scorer:
    """AMR; unseen items are scored by the image part only (zero id factors)."""
    import torch
    from cornac.models import AMR

    torch.manual_seed(ctx.seed)
    train_set, features = image_train_set(split, ctx, config["features"])
    users, cols = _index_maps(split, train_set)
    model = AMR(k=config["k"], k2=config["k"], n_epochs=config["n_epochs"], batch_size=config["batch_size"],
                learning_rate=config["learning_rate"], lambda_w=config["lambda_w"], lambda_b=config["lambda_w"],
                lambda_adv=config["lambda_adv"], seed=ctx.seed, use_gpu=False, verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):  # AMR prints "Optimization finished!" even when not verbose
        model.fit(train_set)
    gamma_item = np.zeros((split.n_items, model.k), dtype=np.float32)
    gamma_item[cols] = model.gamma_item
    item_side = gamma_item + features @ model.emb_matrix  # [n_items, k]: the score is gamma_u . (gamma_i + f_i E)

    def score(rows: np.ndarray) -> np.ndarray:
        u = users[rows]
        if (u < 0).any():
            raise ValueError("AMR scorer got a user without training interactions")
        return model.gamma_user[u] @ item_side.T

    return score


def fit_dmrl(split: Split, config: dict, ctx: Context) -> Scorer:
    import torch
    from cornac.data import FeatureModality, ImageModality
    from cornac.models import DMRL

    torch.manual_seed(ctx.seed)
    train_set = _train_set(split, ctx.seed)
    text = FeatureModality(features=ctx.text.astype(np.float32), ids=list(split.items), normalized=False)
    text.build(id_map=train_set.iid_map)
    # Cornac 3.0.1's DMRL accepts a pre-encoded FeatureModality but then reads two attributes only its
    # own TransformersTextModality has (AttributeError: 'FeatureModality' object has no attribute 'preencoded').
    # Its scoring also calls `.to(device)` on the text features, so they must be a tensor.
    text.preencoded, text.output_dim = True, ctx.text.shape[1]
    text.features = torch.from_numpy(np.ascontiguousarray(text.features, dtype=np.float32))
    image = ImageModality(features=ctx.image.astype(np.float32), ids=list(split.items), normalized=False)
    image.build(id_map=train_set.iid_map)
    train_set.add_modalities(item_text=text, item_image=image)
    model = DMRL(batch_size=config["batch_size"], learning_rate=config["learning_rate"], decay_r=config["decay_r"],
                 epochs=config["epochs"], embedding_dim=config["embedding_dim"], bert_text_dim=ctx.text.shape[1],
                 image_dim=ctx.image.shape[1], num_neg=4, num_factors=config["num_factors"], verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):  # DMRL prints its device and a loss line every 5 batches
        model.fit(train_set)
    users, cols = _index_maps(split, train_set)
    known = torch.tensor(list(train_set.iid_map.values()), dtype=torch.long)
    order = np.array(list(train_set.iid_map.values()))

    def score(rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), split.n_items), dtype=np.float32)
        for r, row in enumerate(rows):
            values = np.asarray(model.score(int(users[row]), known), dtype=np.float64)  # in iid_map order
            out[r] = values.min() - 1.0
            out[r, cols[order]] = values
        return out

    return score


SYSTEMS = [
    BenchSystem(
        "AMR", "cornac",
        [{"k": 32, "n_epochs": 40, "batch_size": 512, "learning_rate": lr, "lambda_w": 0.01, "lambda_adv": adv,
          "features": f} for f, lr, adv in (("raw", 0.01, 1.0), ("unit", 0.01, 1.0), ("unit", 0.01, 0.1),
                                            ("unit", 0.005, 1.0))],
        fit_amr, cold_capable=True, reads_text=False,
        notes="VBPR + adversarial training on EfficientNet-Lite0 poster features; k = k2",
    ),
    BenchSystem(
        "DMRL", "cornac",
        [{"batch_size": 64, "epochs": 10, "embedding_dim": 100, "learning_rate": lr, "decay_r": decay,
          "num_factors": factors} for lr, decay, factors in ((1e-4, 0.01, 4), (1e-3, 0.01, 4), (1e-3, 0.1, 4),
                                                             (1e-3, 0.01, 2))],
        fit_dmrl, notes="disentangled multimodal: pre-encoded MiniLM text + EfficientNet-Lite0 image; 10 epochs",
    ),
]
