"""Systems under test. Each is a `BenchSystem`: a small validation grid and a `fit` that returns a scorer.

Every scorer maps user rows to [len(rows), n_items] scores in the split's catalogue order, so the
one metric implementation ranks every system over identical columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.peers.protocols import Split

Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class Context:
    """What a system may use besides the training interactions: content features and the seed."""

    seed: int
    image: np.ndarray  # [n_items, 1280] EfficientNet-Lite0 poster features, catalogue order
    text: np.ndarray  # [n_items, 384] MiniLM features, catalogue order
    threads: int = 1
    data_dir: Path | None = None  # the dataset folder of the text variant (mmrec's own pipeline imports it)
    workdir: Path | None = None  # the variant's work dir: mmrec's inputs, feature store and checkpoints go here
    log: Callable[[str], None] = print
    posters: Path | None = None  # {item_id}.jpg posters, or None when the dataset has none
    # An mmrec input folder's preprocessed tables and numeric columns (None: MovieLens, imported by mmrec's own
    # system with its importer, numeric column `year`).
    processed: Path | None = None
    numeric: tuple[str, ...] = ("year",)
    timestamps: bool = True  # False: the interactions have none (the split files' timestamp is 0)
    content: str | None = None  # an input folder's item content digest: mmrec's inputs are prepared again on a change


@dataclass
class BenchSystem:
    name: str
    library: str
    grid: list[dict[str, Any]]
    fit: Callable[[Split, dict[str, Any], Context], Scorer]
    cold_capable: bool = False  # can score items with no training interaction
    protocols: tuple[str, ...] | None = None  # the protocols it runs on (None: every protocol it can)
    # False: it reads no item text (ids, interactions, maybe poster features), so its result on a split is the
    # same under every text variant and run_peers reuses a stored one (same split files, by sha256).
    reads_text: bool = True
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # One-off work before the grid, untimed like the peers' cached image/text features (mmrec: its import,
    # preprocess and feature store): no config's fit time includes it.
    prepare: Callable[[Split, Context], Any] | None = None


def all_systems() -> list[BenchSystem]:
    """Every peer system in report order (mmrec systems are added by systems.mmrec when available)."""
    from bench.peers.systems import (content, cornac_deep, cornac_models, cornac_multimodal, implicit_models, mmrec,
                                     mult_vae)

    return [
        *cornac_models.SYSTEMS,
        *cornac_deep.SYSTEMS,
        *mult_vae.SYSTEMS,
        *cornac_multimodal.SYSTEMS,
        *implicit_models.SYSTEMS,
        *content.SYSTEMS,
        *mmrec.systems(),
    ]
