"""Placeholder: replaced by the module that implements `mmrec preprocess`."""

import typer


def register(root: typer.Typer) -> None:
    """Adds nothing until implemented."""
