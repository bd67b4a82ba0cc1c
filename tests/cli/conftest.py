"""Shared CLI fixtures: the tiny evaluation project (tests/evaluation/eval_project.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "eval_project_for_cli", Path(__file__).parents[1] / "evaluation" / "eval_project.py"
)
eval_project = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eval_project)


@pytest.fixture
def config(tmp_path):
    """Config of a tiny preprocessed + split project (40 users, 30 items) in tmp_path."""
    return eval_project.make_tiny_project(tmp_path)
