"""Fixtures of the training tests (helpers live in training_problem.py)."""

from __future__ import annotations

import pytest
import torch
from training_problem import TinyProblem, make_tiny_problem


@pytest.fixture
def tiny_problem() -> TinyProblem:
    return make_tiny_problem()


@pytest.fixture(autouse=True)
def _few_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
