"""run_split: processed interactions -> train/val/test CSVs plus a JSON report, refusing leaky splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmrec.data.splits import REPORT_FILE, SplitFrames, save_split, split_interactions, split_report, time_ties_note
from mmrec.data.tables import interactions_sha256, load_interactions
from mmrec.fileio import atomic_write_json, check_not_in_use
from mmrec.pipeline.preprocess import stale_processed_note
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import Settings, SplitSettings


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
    _check_no_train(Path(settings.paths.splits_dir))
    interactions = load_interactions(Path(settings.paths.processed_dir))
    sample_n, notes = settings.split.sample_n, []
    if stale := stale_processed_note(settings):  # a split takes seconds: said once, with the other notes
        notes.append(stale)
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
            # A ratio of 0 asked for it (e.g. a 75/25 protocol without validation); else the data was too small.
            why = (f"split.{name}_ratio is 0" if getattr(settings.split, f"{name}_ratio", None) == 0
                   else "too few interactions for the ratios and the strategy")
            notes.append(f"The {name} part is empty ({why}): {consequence}."
                         + (" --strategy leave_one_out holds out each user's last interaction (users with two or "
                            "more)." if name == "test" and settings.split.strategy != "leave_one_out" and
                            "ratio is 0" not in why else ""))
    short = short_parts_note(report, interactions, settings.split)
    for note in (short or untested_users_note(frames, settings.split),
                 time_ties_note(frames, settings.split.strategy), leave_one_out_note(frames, settings.split)):
        if note:
            notes.append(note)
    report["notes"] = notes
    splits_dir = Path(settings.paths.splits_dir)
    _check_no_train(splits_dir)  # again: a train may have started while the split was drawn
    save_split(frames, splits_dir)
    atomic_write_json(splits_dir / REPORT_FILE, report)
    return SplitResult(splits_dir, frames, report)


def _check_no_train(splits_dir: Path) -> None:
    """BusyError while a `mmrec train` reads the split (mark_in_use)."""
    check_not_in_use(splits_dir, "splitting again now would change the rows it trains and validates on (its "
                     "checkpoint would no longer match the split, and evaluate would refuse it)")


def _interactions_per_user(frames: SplitFrames) -> pd.Series:
    """{user: interactions across train, val and test}."""
    return pd.concat([frames.train["user_id"], frames.val["user_id"], frames.test["user_id"]]).value_counts()


def leave_one_out_note(frames: SplitFrames, split: SplitSettings) -> str | None:
    """With leave_one_out, how many users hold out less than a test and a validation row: every user keeps a
    training interaction, so one with a single interaction gives no test row, and one with two no validation row;
    None when every user has enough."""
    if split.strategy != "leave_one_out":
        return None
    sizes = _interactions_per_user(frames)
    single, two = int((sizes == 1).sum()), int((sizes == 2).sum()) if split.val_ratio > 0 else 0
    if not single and not two:
        return None
    said = [f"{single:,} user(s) with a single interaction keep it for training (no test row)"] if single else []
    said += [f"{two:,} user(s) with two give a test row but no validation row"] if two else []
    return f"leave_one_out: {'; '.join(said)}, as every user keeps a training interaction."


def untested_users_note(frames: SplitFrames, split: SplitSettings) -> str | None:
    """With the per-user shares (stratified, temporal_user), how many users have no test row: a user's share of a
    few interactions rounds down to none (a single interaction always stays in train), so evaluate never scores
    them; None when every user has one."""
    if split.strategy not in ("stratified", "temporal_user"):
        return None
    sizes = _interactions_per_user(frames)
    untested = sizes.index[~sizes.index.isin(frames.test["user_id"])]
    if not len(untested):
        return None
    single = int((sizes[untested] == 1).sum())
    why = ("each has a single interaction, which stays in train" if single == len(untested) else
           f"{single:,} have a single interaction, which stays in train, and the others' share of their few "
           "interactions rounds down to none" if single else
           "their share of their few interactions rounds down to none")
    return (f"{len(untested):,} of {len(sizes):,} users ({len(untested) / len(sizes):.0%}) have no test row: {why}"
            + f" (strategy {split.strategy!r}). evaluate scores the {frames.test['user_id'].nunique():,} others; "
            "--strategy leave_one_out holds out a row of every user with two or more.")


def short_parts_note(report: dict, interactions: pd.DataFrame, split: SplitSettings) -> str | None:
    """A note when validation and test together hold well under the share asked (below 3/4 of it): per-user
    strategies keep each user's last interaction in train and round a few rows' share down, so users with one or
    two interactions (common in event logs) shrink the held-out parts; None when the shares are near the ratios."""
    if split.strategy not in ("stratified", "temporal_user"):  # shares by date, by whole users/items, or one row each
        return None
    asked = split.val_ratio + split.test_ratio
    total = sum(part["interactions"] for part in report["parts"].values())
    held = report["parts"]["val"]["interactions"] + report["parts"]["test"]["interactions"]
    if not total or not held or asked <= 0 or held / total >= 0.75 * asked:
        return None
    per_user = interactions["user_id"].value_counts()
    single = int((per_user == 1).sum())
    shares = " / ".join(f"{report['parts'][name]['interactions'] / total:.0%}" for name in ("train", "val", "test"))
    return (f"Train / val / test hold {shares} of the interactions, not the {split.train_ratio:g} / "
            f"{split.val_ratio:g} / {split.test_ratio:g} asked: {single:,} of {len(per_user):,} users have a single "
            "interaction, which stays in train (strategy "
            f"{split.strategy!r}). Validation and test then cover fewer users ({report['parts']['val']['users']:,} "
            f"and {report['parts']['test']['users']:,}); 'temporal' holds out by date whatever each user's count.")
