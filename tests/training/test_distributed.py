"""Two gloo processes with DDP take one step; the result must equal one process averaging both shards' gradients."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from training_problem import make_tiny_problem, tiny_model_settings, tiny_training_settings

from mmrec.models.two_tower import TwoTowerModel
from mmrec.training.distributed import DistContext, shard
from mmrec.training.seeding import seed_everything
from mmrec.training.trainer import Trainer, rank_rng_state

HERE = Path(__file__).resolve().parent
MODEL = dict(dropout=0.0, id_dropout=0.0)
TRAIN = dict(grad_clip=None, optimizer="sgd", learning_rate=0.5)

WORKER = textwrap.dedent("""
    import os
    import sys
    import torch
    sys.path.insert(0, {here!r})
    import test_distributed as t
    torch.set_num_threads(1)
    t.ddp_rank(1, sys.argv[1], None)  # an error here exits 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Done: leave without running C++ static destructors, where gloo's threads once aborted the process at exit
    # ("terminate called without an active exception", a clean-clone CI run) after the rank had finished its step.
    os._exit(0)
""")


def ddp_rank(rank: int, port: str, out):
    """One DDP rank: a fresh model (seed 0) takes one step on its half of a fixed batch."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        problem = make_tiny_problem()
        seed_everything(0)
        model = TwoTowerModel(tiny_model_settings(**MODEL), problem.dims)
        trainer = Trainer(model, problem.data, problem.catalogue, tiny_model_settings(**MODEL),
                          tiny_training_settings(**TRAIN), torch.device("cpu"), dist_ctx=DistContext(rank, 2, rank))
        trainer.train_step(problem.data.pairs[:32][rank::2])
        state = {k: v.clone() for k, v in trainer.module.state_dict().items()}
        torch.manual_seed(100 + rank)  # each rank's own RNG stream (dropout), as after an epoch
        trainer.gather_rank_rng()
        dist.barrier()
        return state, trainer.state_dict()
    finally:
        dist.destroy_process_group()


def free_port() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def test_shards_are_disjoint_and_equal():
    perm = torch.randperm(11)
    parts = [shard(perm, DistContext(r, 3)) for r in range(3)]
    assert all(len(p) == 3 for p in parts)
    assert len(set(torch.cat(parts).tolist())) == 9


@pytest.mark.slow
def test_ddp_step_matches_single_process_gradient_average(tmp_path):
    # Rank 1 runs in a subprocess, rank 0 here (one extra process instead of three).
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(here=str(HERE)))
    port = free_port()
    other = subprocess.Popen([sys.executable, str(script), port], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        ddp, checkpoint = ddp_rank(0, port, None)
    finally:
        _, err = other.communicate(timeout=300)
    assert other.returncode == 0, err[-3000:]

    problem = make_tiny_problem()
    seed_everything(0)
    model = TwoTowerModel(tiny_model_settings(**MODEL), problem.dims)
    trainer = Trainer(model, problem.data, problem.catalogue, tiny_model_settings(**MODEL),
                      tiny_training_settings(**TRAIN), torch.device("cpu"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = problem.data.pairs[:32]
    grads = []
    for rank in range(2):
        model.zero_grad()
        trainer.batch_loss(batch[rank::2]).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    model.zero_grad()
    with torch.no_grad():
        for name, param in model.named_parameters():
            param -= 0.5 * (grads[0][name] + grads[1][name]) / 2  # SGD's first step: lr * mean gradient

    changed = 0
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ddp[name], value, atol=1e-6, rtol=1e-5, msg=name)
        changed += not torch.equal(value, before[name])
    assert changed > 5  # the step really moved the weights

    # The checkpoint keeps both ranks' RNG states; a resume with two processes gives each rank its own.
    assert checkpoint["world_size"] == 2 and len(checkpoint["rng_ranks"]) == 2
    for rank in range(2):
        torch.manual_seed(100 + rank)
        expected = torch.get_rng_state()
        assert torch.equal(checkpoint["rng_ranks"][rank]["torch"], expected)
        assert torch.equal(rank_rng_state(checkpoint, DistContext(rank, 2))["torch"], expected)
    # Another process count: every rank starts from rank 0's state (the note says the resume is not exact).
    assert rank_rng_state(checkpoint, DistContext(1, 3)) is checkpoint["rng"]
