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


@pytest.fixture
def invoke_in_fresh_process():
    """Runs `mmrec` commands (argument lists) one after the other in a fresh Python process: (their exit codes,
    their outputs, whether torch was imported), for the commands that must answer without loading torch."""
    import json
    import os
    import subprocess
    import sys

    def run(*commands: list[str]) -> tuple[list[int], list[str], bool]:
        code = ("import json, sys; from typer.testing import CliRunner; from mmrec.cli.app import app; "
                f"runs = [CliRunner().invoke(app, args) for args in {[list(map(str, c)) for c in commands]!r}]; "
                "print(json.dumps([[r.exit_code for r in runs], [r.output for r in runs], 'torch' in sys.modules]))")
        root = Path(__file__).parents[2]  # this checkout's mmrec, whatever the current folder or install
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return tuple(json.loads(done.stdout.strip().splitlines()[-1]))

    return run
