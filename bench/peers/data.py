"""MovieLens as implicit feedback, read through mmrec's own importer (every layout, both text variants).

Any layout mmrec imports: ml-latest (ratings.csv, movies.csv, optional tags.csv), ml-1m / ml-10m
(ratings.dat, movies.dat, optional tags.dat) or ml-100k (u.data, u.item). Rating >= 4 is a positive;
5-core filtered until stable. Item text is what mmrec's text backbone reads: "title. Genres: ... .
Tags: ..." (`mmrec.data.text.item_text` over the imported title and description). Text variants:
- `tags`: the importer's description with genres and tags (a folder with a tags file only);
- `no-tags`: "title. genres" only — the importer reads a view of the folder without its tags file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmrec.data.movielens import FLAVOURS, detect_flavour, import_movielens
from mmrec.data.text import item_text
from mmrec.errors import DataError
from mmrec.settings import DataSettings

POSITIVE_RATING = 4.0
MIN_POSITIVES = 5
TEXT_VARIANTS = ("tags", "no-tags")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def dataset_name(data_dir: str | Path) -> str:
    """A path-safe name for the dataset: its folder's name with anything but [A-Za-z0-9._-] replaced."""
    name = _UNSAFE.sub("_", Path(data_dir).resolve().name).strip("._") or "dataset"
    return name[:80]


def has_tags(data_dir: str | Path) -> bool:
    data_dir = Path(data_dir)
    tags_file = FLAVOURS[detect_flavour(data_dir)][1]
    return tags_file is not None and (data_dir / tags_file).is_file()


def available_variants(data_dir: str | Path) -> list[str]:
    """`tags` and `no-tags` when the folder has tags, else only `no-tags`."""
    return list(TEXT_VARIANTS) if has_tags(data_dir) else ["no-tags"]


def k_core(interactions: pd.DataFrame, k: int = MIN_POSITIVES) -> pd.DataFrame:
    """Drop users and items with fewer than k interactions, repeated until nothing changes."""
    frame = interactions
    while True:
        user_counts = frame["user_id"].map(frame["user_id"].value_counts())
        item_counts = frame["item_id"].map(frame["item_id"].value_counts())
        kept = frame[(user_counts >= k) & (item_counts >= k)]
        if len(kept) == len(frame):
            return kept.reset_index(drop=True)
        frame = kept


def variant_source(data_dir: str | Path, variant: str, view_dir: str | Path) -> Path:
    """The folder mmrec's importer reads for `variant`: `data_dir`, or a view of it without its tags file."""
    data_dir = Path(data_dir).resolve()
    if variant not in TEXT_VARIANTS:
        raise DataError(f"unknown text variant {variant!r}", hint=f"choose one of {', '.join(TEXT_VARIANTS)}")
    tagged = has_tags(data_dir)  # also raises DataError when data_dir is no MovieLens folder
    if variant == "tags":
        if not tagged:
            raise DataError(f"{data_dir} has no tags file (tags.csv / tags.dat), so the `tags` text variant does not "
                            "exist there",
                            hint="use --text-variants no-tags")
        return data_dir
    if not tagged:
        return data_dir
    view = Path(view_dir)
    view.mkdir(parents=True, exist_ok=True)
    for name in FLAVOURS[detect_flavour(data_dir)][0]:  # the layout's files but its tags file
        link = view / name
        if not link.is_symlink() or link.resolve() != (data_dir / name):
            link.unlink(missing_ok=True)
            link.symlink_to(data_dir / name)
    return view


@dataclass
class Dataset:
    """One dataset variant: positives, the importer's item table, and where it came from."""

    name: str
    flavour: str
    variant: str
    source: Path  # the folder the importer read (data_dir, or the no-tags view)
    posters: Path | None
    positives: pd.DataFrame  # [user_id, item_id, timestamp], str ids, rating >= 4, 5-core
    items: pd.DataFrame  # importer's item_info indexed by item_id: title, description, year
    n_ratings: int

    def describe(self) -> str:
        return (f"MovieLens {self.name} ({self.flavour} layout), text variant `{self.variant}`: "
                f"{self.n_ratings} ratings -> rating>=4 positives, 5-core: {len(self.positives)} positives, "
                f"{self.positives.user_id.nunique()} users, {self.positives.item_id.nunique()} items")

    def item_texts(self, item_ids: list[str]) -> list[str]:
        """What mmrec's text backbone reads for each item, in the order of `item_ids`."""
        rows = self.items.reindex(item_ids)
        return [item_text(str(t) if isinstance(t, str) else "", str(d) if isinstance(d, str) else "")
                for t, d in zip(rows["title"], rows["description"])]


def load_dataset(data_dir: str | Path, variant: str, variant_dir: str | Path) -> Dataset:
    """Import `data_dir` with mmrec's importer (no posters copied) into `variant_dir`/import."""
    data_dir = Path(data_dir).resolve()
    variant_dir = Path(variant_dir)
    source = variant_source(data_dir, variant, variant_dir / "source")
    settings = DataSettings()
    imported = import_movielens(source, variant_dir / "import", None, settings)
    interactions = pd.read_csv(imported.out_dir / settings.interactions_file, dtype={"user_id": str, "item_id": str})
    items = pd.read_csv(imported.out_dir / settings.item_info_file, dtype={"item_id": str}, keep_default_na=False)
    positives = interactions[interactions["rating"] >= POSITIVE_RATING]
    frame = positives[["user_id", "item_id", "timestamp"]].astype({"timestamp": "int64"})
    posters = data_dir / "posters"
    return Dataset(
        name=dataset_name(data_dir), flavour=imported.flavour, variant=variant, source=source,
        posters=posters if posters.is_dir() else None,
        positives=k_core(frame.drop_duplicates(["user_id", "item_id"])),
        items=items.set_index("item_id"), n_ratings=len(interactions),
    )
