"""run_split: processed interactions -> train/val/test CSVs plus a JSON report, refusing leaky splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmrec.data.splits import REPORT_FILE, SplitFrames, save_split, split_interactions, split_report
from mmrec.data.tables import interactions_sha256, load_interactions
from mmrec.fileio import atomic_write_json
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import Settings


@dataclass
class SplitResult:
    """The written split and its report."""

    splits_dir: Path
    frames: SplitFrames
    report: dict

    @property
    def report_path(self) -> Path:
        return self.splits_dir / REPORT_FILE


def run_split(settings: Settings, progress: ProgressCallback = null_progress) -> SplitResult:
    """Split settings.paths.processed_dir's interactions per settings.split into settings.paths.splits_dir."""
    interactions = load_interactions(Path(settings.paths.processed_dir))
    sample_n, notes = settings.split.sample_n, []
    what = f"{len(interactions):,} interactions"
    if sample_n is not None and sample_n < len(interactions):
        what = f"a sample of {sample_n:,} of the {len(interactions):,} interactions"
    elif sample_n is not None:
        notes.append(f"--sample-n {sample_n:,} is not below the {len(interactions):,} interactions there are: "
                     "all of them are split.")
    progress(
        ProgressEvent(
            "split",
            message=f"Splitting {what} with strategy {settings.split.strategy!r} (seed {settings.split.seed})",
            done=True,
        )
    )
    frames = split_interactions(interactions, settings.split)  # raises SplitError before anything is written
    report = split_report(frames, settings.split, len(interactions),
                          interactions_sha256(Path(settings.paths.processed_dir)))
    for name, consequence in (("val", "train holds out part of train for validation instead "
                                      "(training.holdout_ratio)"),
                              ("test", "evaluate has nothing to score")):
        if not report["parts"][name]["interactions"]:
            notes.append(f"The {name} part is empty (too few interactions for the ratios and the strategy): "
                         f"{consequence}.")
    report["notes"] = notes
    splits_dir = Path(settings.paths.splits_dir)
    save_split(frames, splits_dir)
    atomic_write_json(splits_dir / REPORT_FILE, report)
    return SplitResult(splits_dir, frames, report)
