"""run_encoders_extract / run_encoders_show: id encoders fitted on the train split, stored as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mmrec.data.encoders import IdEncoder, encoder_paths, fit_encoders, load_encoders, save_encoders
from mmrec.data.splits import SplitFrames, load_split
from mmrec.settings import Settings


@dataclass
class EncodersResult:
    """The encoders, where they live, and how many val/test ids they do not know (cold ids)."""

    users: IdEncoder
    items: IdEncoder
    paths: tuple[Path, Path]
    unknown: dict[str, dict[str, int]] = field(default_factory=dict)


def _split(settings: Settings) -> SplitFrames:
    """The split; test.csv read for the unknown counts when there is one (a train/val split is fine)."""
    splits_dir = Path(settings.paths.splits_dir)
    return load_split(splits_dir, test=(splits_dir / "test.csv").is_file())


def _unknown_counts(frames: SplitFrames, users: IdEncoder, items: IdEncoder) -> dict[str, dict[str, int]]:
    return {
        name: {
            "users": users.count_unknown(set(part["user_id"])),
            "items": items.count_unknown(set(part["item_id"])),
        }
        for name, part in (("val", frames.val), ("test", frames.test))
    }


def run_encoders_extract(settings: Settings) -> EncodersResult:
    """Fit user/item encoders on the train split and save them under checkpoint_dir/encoders."""
    frames = _split(settings)
    users, items = fit_encoders(frames.train)  # on train alone
    paths = save_encoders(Path(settings.paths.checkpoint_dir), users, items)
    return EncodersResult(users, items, paths, _unknown_counts(frames, users, items))


def run_encoders_show(settings: Settings) -> EncodersResult:
    """Load the saved encoders (and count unknown val/test ids when the split is present)."""
    checkpoint_dir = Path(settings.paths.checkpoint_dir)
    users, items = load_encoders(checkpoint_dir)
    unknown = {}
    if (Path(settings.paths.splits_dir) / "train.csv").is_file():
        unknown = _unknown_counts(_split(settings), users, items)
    return EncodersResult(users, items, encoder_paths(checkpoint_dir), unknown)
