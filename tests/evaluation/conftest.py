"""Fixtures for evaluation tests."""

from __future__ import annotations

import pytest
from eval_project import make_tiny_project


@pytest.fixture
def tiny_config(tmp_path):
    return make_tiny_project(tmp_path)
