import io
import random

import numpy as np
import torch

from mmrec.training.seeding import capture_rng_state, epoch_generator, restore_rng_state, seed_everything


def draw():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_state_survives_a_weights_only_roundtrip():
    seed_everything(3)
    draw()
    buffer = io.BytesIO()
    torch.save(capture_rng_state(), buffer)
    expected = draw()
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True))
    assert draw() == expected


def test_epoch_generators_depend_only_on_seed_and_epoch():
    a = torch.randperm(10, generator=epoch_generator(1, 2))
    torch.rand(5)  # global RNG use must not matter
    assert torch.equal(a, torch.randperm(10, generator=epoch_generator(1, 2)))
    assert not torch.equal(a, torch.randperm(10, generator=epoch_generator(1, 3)))
