"""Optimizers: AdamW / Adam / SGD, with row-sparse (lazy) Adam for the id embedding tables.

A dense Adam step touches every row of every parameter, so with id embeddings of a large catalogue
(200k items x 64) the optimizer, not the batch, sets the cost of a step: at 200k items it took two
thirds of each step. With `training.sparse_embeddings` the id tables produce sparse gradients and
`torch.optim.SparseAdam` updates only the rows the batch used ("lazy" Adam, the usual practice for
recommender embeddings); every other parameter keeps the configured dense optimizer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmrec.settings import TrainingSettings


def sparse_tables(model: nn.Module) -> list[nn.Embedding]:
    """The id embedding tables of `model` (the parameters whose size grows with users and items)."""
    return [module for module in model.modules() if isinstance(module, nn.Embedding)]


def use_sparse_embeddings(cfg: TrainingSettings, world_size: int) -> bool:
    """Sparse id-embedding updates: single process with Adam(W) (DDP reduces dense gradients; SGD has no
    lazy form here), unless training.sparse_embeddings says otherwise."""
    return bool(cfg.sparse_embeddings) and cfg.optimizer in ("adam", "adamw") and world_size == 1


class LazyEmbeddingOptimizer:
    """The dense optimizer for ordinary parameters plus SparseAdam for the id tables, as one optimizer.

    Weight decay on the tables acts on the rows a step touches: decoupled (p *= 1 - lr*wd) for AdamW,
    added to the gradient rows for Adam. `param_groups` lists both parts, so lr schedules set both.
    """

    def __init__(self, dense: torch.optim.Optimizer, tables: list[nn.Parameter], cfg: TrainingSettings) -> None:
        self.dense = dense
        self.sparse = torch.optim.SparseAdam(tables, lr=cfg.learning_rate)
        self.weight_decay = cfg.weight_decay
        self.decoupled = cfg.optimizer == "adamw"

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.dense.param_groups + self.sparse.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.dense.zero_grad(set_to_none=set_to_none)
        self.sparse.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        if self.weight_decay:
            for group in self.sparse.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad.coalesce()
                    rows = grad.indices()[0]
                    if self.decoupled:
                        p.index_copy_(0, rows, p.index_select(0, rows) * (1 - group["lr"] * self.weight_decay))
                    else:
                        values = grad.values() + self.weight_decay * p.index_select(0, rows)
                        # Scoped opt-out: torch 2.11 warns that checks are "implicitly disabled" despite the flag.
                        with torch.sparse.check_sparse_tensor_invariants(enable=False):
                            p.grad = torch.sparse_coo_tensor(grad.indices(), values, grad.shape,
                                                             check_invariants=False)
        self.dense.step()
        self.sparse.step()

    def state_dict(self) -> dict[str, Any]:
        return {"dense": self.dense.state_dict(), "sparse": self.sparse.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.dense.load_state_dict(state_dict["dense"])
        self.sparse.load_state_dict(state_dict["sparse"])


Optimizer = torch.optim.Optimizer | LazyEmbeddingOptimizer


@torch.no_grad()
def clip_gradients(parameters: Any, max_norm: float) -> torch.Tensor:
    """Scale the gradients so their joint L2 norm is at most `max_norm` (torch's clip_grad_norm_, eps 1e-6);
    returns the norm before clipping. Sparse gradients (the lazy-Adam id tables) are coalesced first, so a row
    a batch used twice counts once with its summed gradient; torch's own clip has no norm kernel for sparse CUDA
    tensors (training on a GPU failed at its first step)."""
    values = []
    for p in parameters:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            values.append(p.grad.values())  # a view: scaling it scales the gradient
        else:
            values.append(p.grad)
    if not values:
        return torch.zeros(())
    total = torch.nn.utils.get_total_norm(values)
    coefficient = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for value in values:
        value.mul_(coefficient.to(value.device))
    return total


def _dense_optimizer(params: list[nn.Parameter], cfg: TrainingSettings) -> torch.optim.Optimizer:
    if cfg.optimizer in ("adamw", "adam"):
        # The fused kernel (one pass over all parameters, CPU and CUDA) is 5x faster than the per-parameter
        # loop on CPU for a model of a few dozen small tensors; same update rule.
        fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        return kind(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, fused=fused or None)
    return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay)


def build_optimizer(model: nn.Module, cfg: TrainingSettings, world_size: int = 1) -> Optimizer:
    """AdamW / Adam / SGD (momentum 0.9) over the trainable parameters; with sparse id embeddings (see
    `use_sparse_embeddings`) the id tables switch to sparse gradients and lazy Adam updates."""
    tables = sparse_tables(model) if use_sparse_embeddings(cfg, world_size) else []
    for table in tables:
        table.sparse = True
    table_ids = {id(table.weight) for table in tables}
    dense = [p for p in model.parameters() if p.requires_grad and id(p) not in table_ids]
    optimizer = _dense_optimizer(dense, cfg)
    sparse = [table.weight for table in tables if table.weight.requires_grad]
    return LazyEmbeddingOptimizer(optimizer, sparse, cfg) if sparse else optimizer
