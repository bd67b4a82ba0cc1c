"""Progress reporting from core/pipeline code without any UI dependency.

Core code calls `progress(ProgressEvent(...))`; the CLI turns events into rich progress bars.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ProgressEvent:
    """One update of a named task. `total=None` means unknown length; `done=True` closes the task."""

    task: str
    completed: int = 0
    total: int | None = None
    description: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""  # a one-off note worth showing the user (e.g. "computing 12 missing features")
    done: bool = False


ProgressCallback = Callable[[ProgressEvent], None]


def null_progress(event: ProgressEvent) -> None:
    """A callback that ignores every event (the default for library use and tests)."""
