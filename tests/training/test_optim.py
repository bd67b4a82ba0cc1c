import pytest
import torch
from torch import nn

from mmrec.settings import TrainingSettings
from mmrec.training.optim import LazyEmbeddingOptimizer, build_optimizer, clip_gradients
from mmrec.training.schedule import LRSchedule


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table = nn.Embedding(6, 3)
        self.head = nn.Linear(3, 1)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.head(self.table(rows)).square().sum()


def step(model: nn.Module, optimizer, rows: list[int]) -> None:
    optimizer.zero_grad(set_to_none=True)
    model(torch.tensor(rows)).backward()
    clip_gradients(model.parameters(), 10.0)
    optimizer.step()


@pytest.mark.parametrize("name, cls", [("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                                       ("sgd", torch.optim.SGD)])
def test_plain_models_get_the_configured_optimizer(name, cls):
    assert isinstance(build_optimizer(nn.Linear(2, 2), TrainingSettings(optimizer=name)), cls)


@pytest.mark.parametrize("overrides, world_size", [({"optimizer": "sgd"}, 1), ({"sparse_embeddings": False}, 1),
                                                   ({}, 2)])
def test_dense_tables_where_lazy_updates_do_not_apply(overrides, world_size):
    model = Tiny()
    optimizer = build_optimizer(model, TrainingSettings(**overrides), world_size)
    assert not isinstance(optimizer, LazyEmbeddingOptimizer) and not model.table.sparse


@pytest.mark.parametrize("max_norm", [1e-3, 1e3])
def test_clipping_sparse_gradients_equals_clipping_the_dense_ones(max_norm):
    """Rows used twice in a batch (an uncoalesced sparse gradient) count once with their summed gradient, as in
    torch's clip over the dense gradient; a norm under max_norm leaves the gradients alone."""
    sparse, dense = Tiny(), Tiny()
    sparse.table.sparse = True
    rows = torch.tensor([0, 2, 2, 5, 5, 5])
    sparse(rows).backward()
    dense(rows).backward()
    assert sparse.table.weight.grad.is_sparse
    expected = torch.nn.utils.clip_grad_norm_(list(dense.parameters()), max_norm)
    total = clip_gradients(sparse.parameters(), max_norm)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(sparse.table.weight.grad.to_dense(), dense.table.weight.grad)
    torch.testing.assert_close(sparse.head.weight.grad, dense.head.weight.grad)
    clipped = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in dense.parameters()]))
    assert (clipped < expected) == (max_norm < expected)


@pytest.mark.parametrize("name, weight_decay", [("adamw", 0.0), ("adamw", 0.1), ("adam", 0.1)])
def test_a_step_touching_every_row_equals_the_dense_optimizer(name, weight_decay):
    cfg = TrainingSettings(optimizer=name, weight_decay=weight_decay, learning_rate=0.05)
    lazy, dense = Tiny(), Tiny()
    lazy_opt, dense_opt = build_optimizer(lazy, cfg), build_optimizer(dense, cfg.model_copy(update={"sparse_embeddings": False}))
    assert isinstance(lazy_opt, LazyEmbeddingOptimizer) and lazy.table.sparse
    step(lazy, lazy_opt, [0, 1, 2, 3, 4, 5, 5])
    step(dense, dense_opt, [0, 1, 2, 3, 4, 5, 5])
    for a, b in zip(lazy.parameters(), dense.parameters()):
        torch.testing.assert_close(a, b)


def test_untouched_rows_stay_put_and_the_dense_part_still_learns():
    model = Tiny()
    optimizer = build_optimizer(model, TrainingSettings(weight_decay=0.1))
    step(model, optimizer, [0, 1])
    table, head = model.table.weight.detach().clone(), model.head.weight.detach().clone()
    step(model, optimizer, [1, 2])  # row 0 has Adam momentum, but a lazy step leaves it alone
    moved = (model.table.weight.detach() != table).any(dim=1).tolist()
    assert moved == [False, True, True, False, False, False]
    assert not torch.equal(model.head.weight.detach(), head)


def test_the_schedule_sets_both_parts_and_state_round_trips():
    cfg = TrainingSettings(learning_rate=0.5, scheduler="step", step_size=1, gamma=0.5, epochs=3)
    model = Tiny()
    optimizer = build_optimizer(model, cfg)
    schedule = LRSchedule(optimizer, cfg, steps_per_epoch=1)
    step(model, optimizer, [0, 3])
    schedule.step()
    assert [group["lr"] for group in optimizer.param_groups] == [0.25, 0.25]
    again = build_optimizer(Tiny(), cfg)
    again.load_state_dict(optimizer.state_dict())
    assert torch.equal(again.sparse.state_dict()["state"][0]["exp_avg"].to_dense(),
                       optimizer.sparse.state_dict()["state"][0]["exp_avg"].to_dense())
    with pytest.raises(KeyError):
        again.load_state_dict(build_optimizer(nn.Linear(3, 1), cfg).state_dict())
