"""Test-wide guards: no network, no wandb, no stray MMREC_* settings, small thread counts."""

from __future__ import annotations

import os
import sys

import pytest

# tests/training/tiny_project.py (a tiny processed project writer) is shared by several test folders:
# importable as `tiny_project` from any of them.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "training"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "movielens-small-posters")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith("MMREC_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def shared_movielens():
    """Path to the shared real MovieLens + posters data; skips when ../shared is absent."""
    path = os.path.abspath(SHARED_DATA)
    if not os.path.isdir(path):
        pytest.skip(f"shared MovieLens data not found at {path}")
    return path


@pytest.fixture
def one_torch_thread():
    """Torch on one thread: tiny models train faster without thread contention on shared cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
