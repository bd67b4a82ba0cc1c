"""Where the benchmark keeps things, per dataset, text variant and split seed.

    {workdir}/{dataset}/features/                      cached image/text features (.npy)
    {workdir}/{dataset}/{variant}/import/              mmrec's import of the (variant's) folder
    {workdir}/{dataset}/{variant}/mmrec/               mmrec's raw copy, feature store, checkpoints
    {workdir}/{dataset}/{variant}/seed{k}/splits/{protocol}/{train,val,test}.csv, meta.json
    {results}/{dataset}/peers_{protocol}.{json,md,png} merged tables
    {results}/{dataset}/runs/{variant}/seed{k}/{protocol}/{system}.json   one finished result each
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    workdir: Path
    results_dir: Path
    dataset: str  # path-safe (bench.peers.data.dataset_name)

    @property
    def features_dir(self) -> Path:
        return self.workdir / self.dataset / "features"

    def variant_dir(self, variant: str) -> Path:
        return self.workdir / self.dataset / variant

    def split_root(self, variant: str, seed: int) -> Path:
        return self.variant_dir(variant) / f"seed{seed}" / "splits"

    @property
    def report_dir(self) -> Path:
        return self.results_dir / self.dataset

    @property
    def runs_dir(self) -> Path:
        return self.report_dir / "runs"
