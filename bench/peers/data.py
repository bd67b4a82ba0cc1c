"""The benchmark's datasets as implicit feedback: MovieLens read through mmrec's own importer (every layout, both
text variants), or any catalogue in mmrec's input format read through mmrec's own preprocess.

MovieLens, any layout mmrec imports: ml-latest (ratings.csv, movies.csv, optional tags.csv), ml-1m / ml-10m
(ratings.dat, movies.dat, optional tags.dat) or ml-100k (u.data, u.item). Rating >= 4 is a positive;
5-core filtered until stable. Item text is what mmrec's text backbone reads: "title. Genres: ... .
Tags: ..." (`mmrec.data.text.item_text` over the imported title and description). Text variants:
- `tags`: the importer's description with genres and tags (a folder with a tags file only);
- `no-tags`: "title. genres" only — the importer reads a view of the folder without its tags file.

An mmrec input folder (item_info + interactions [+ images/], README "Input format"; an `mmrec.yaml` beside them
is read for its `data` and `preprocess` settings: column names, rating threshold, numeric columns): `mmrec
preprocess` cleans it, and its kept interactions (those at or above data.positive_rating_threshold when set) are
the positives, 5-core filtered. One text variant, `catalogue`: the item text as given. Without a timestamp
column the temporal protocol is not run.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmrec.data.movielens import FLAVOURS, detect_flavour, import_movielens
from mmrec.data.text import item_text
from mmrec.errors import DataError
from mmrec.settings import DataSettings, Settings

POSITIVE_RATING = 4.0
MIN_POSITIVES = 5
CATALOGUE = "catalogue"  # the one text variant of an mmrec input folder: its item text as given
TEXT_VARIANTS = ("tags", "no-tags", CATALOGUE)
MMREC_CONFIG = "mmrec.yaml"  # an mmrec input folder's own settings (data and preprocess sections)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def dataset_name(data_dir: str | Path) -> str:
    """A path-safe name for the dataset: its folder's name with anything but [A-Za-z0-9._-] replaced."""
    name = _UNSAFE.sub("_", Path(data_dir).resolve().name).strip("._") or "dataset"
    return name[:80]


def folder_settings(data_dir: str | Path) -> Settings:
    """The settings mmrec reads an input folder with: its own mmrec.yaml (if any) with paths.data_dir the folder."""
    from mmrec.settings import load_settings

    config = Path(data_dir) / MMREC_CONFIG
    return load_settings(config if config.is_file() else None, {"paths.data_dir": str(Path(data_dir))}).settings


def missing_input_files(data_dir: str | Path) -> list[str]:
    """The mmrec input files (item_info and interactions, as its mmrec.yaml names them) `data_dir` lacks."""
    data = folder_settings(data_dir).data
    return [name for name in (data.item_info_file, data.interactions_file) if not (Path(data_dir) / name).is_file()]


def layout_of(data_dir: str | Path) -> str:
    """"movielens" or "mmrec" (an mmrec input folder); DataError naming both when it is neither."""
    try:
        detect_flavour(Path(data_dir))
        return "movielens"
    except DataError:
        missing = missing_input_files(data_dir)
        if not missing:
            return "mmrec"
        found = ", ".join(sorted(p.name for p in Path(data_dir).iterdir())[:8]) or "nothing"
        raise DataError(f"{data_dir} is neither a MovieLens folder nor an mmrec input folder: it lacks "
                        f"{' and '.join(missing)} for the latter (found: {found}).",
                        hint="pass a MovieLens folder (ml-latest: ratings.csv, movies.csv; ml-100k: u.data, u.item) "
                             "or a folder in mmrec's input format (item_info.csv, interactions.csv, optional images/ "
                             "and mmrec.yaml naming other files)") from None


def has_tags(data_dir: str | Path) -> bool:
    data_dir = Path(data_dir)
    if layout_of(data_dir) == "mmrec":
        return False
    tags_file = FLAVOURS[detect_flavour(data_dir)][1]
    return tags_file is not None and (data_dir / tags_file).is_file()


def available_variants(data_dir: str | Path) -> list[str]:
    """MovieLens: `tags` and `no-tags` when the folder has tags, else only `no-tags`; an mmrec input folder:
    `catalogue`."""
    if layout_of(data_dir) == "mmrec":
        return [CATALOGUE]
    return ["tags", "no-tags"] if has_tags(data_dir) else ["no-tags"]


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
    if (variant == CATALOGUE) != (layout_of(data_dir) == "mmrec"):
        raise DataError(f"the `{variant}` text variant is not one of {data_dir}'s: "
                        + ("an mmrec input folder has one, `catalogue` (its item text as given)" if variant != CATALOGUE
                           else "`catalogue` is an mmrec input folder's; a MovieLens folder has `tags` / `no-tags`"),
                        hint=f"use --text-variants {' '.join(available_variants(data_dir))}")
    if variant == CATALOGUE:
        return data_dir
    tagged = has_tags(data_dir)
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
    timestamps: bool = True  # False: an input folder without a timestamp column (timestamp 0: no temporal split)
    # An mmrec input folder: its preprocessed tables (mmrec's own system trains from them) and numeric columns.
    processed: Path | None = None
    numeric: tuple[str, ...] = ("year",)
    # sha256 of what the systems read of the items (text, image fingerprints, numeric columns) of an input folder,
    # which a user may edit between runs: stored results and prepared inputs count only for the same content.
    content: str | None = None
    threshold: float | None = None  # an input folder's data.positive_rating_threshold

    def describe(self) -> str:
        size = (f"{len(self.positives)} positives, {self.positives.user_id.nunique()} users, "
                f"{self.positives.item_id.nunique()} items")
        if self.processed is not None:
            kept = "every one" if self.threshold is None else f"rating >= {self.threshold:g}"
            return (f"catalogue {self.name} (mmrec input folder), text as given: {self.n_ratings} interactions -> "
                    f"positives ({kept}, as mmrec preprocess keeps them), 5-core: {size}"
                    + ("" if self.timestamps else "; no timestamps"))
        return (f"MovieLens {self.name} ({self.flavour} layout), text variant `{self.variant}`: "
                f"{self.n_ratings} ratings -> rating>=4 positives, 5-core: {size}")

    def item_texts(self, item_ids: list[str]) -> list[str]:
        """What mmrec's text backbone reads for each item, in the order of `item_ids`."""
        rows = self.items.reindex(item_ids)
        return [item_text(str(t) if isinstance(t, str) else "", str(d) if isinstance(d, str) else "")
                for t, d in zip(rows["title"], rows["description"])]


def load_dataset(data_dir: str | Path, variant: str, variant_dir: str | Path) -> Dataset:
    """Import `data_dir` with mmrec's importer (no posters copied) into `variant_dir`/import; an mmrec input
    folder is preprocessed there instead (`load_catalogue`)."""
    data_dir = Path(data_dir).resolve()
    variant_dir = Path(variant_dir)
    source = variant_source(data_dir, variant, variant_dir / "source")
    if variant == CATALOGUE:
        return load_catalogue(data_dir, variant_dir)
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


def load_catalogue(data_dir: Path, variant_dir: Path) -> Dataset:
    """An mmrec input folder through `mmrec preprocess` (its mmrec.yaml's data and preprocess settings; features
    not cached) into `variant_dir`/import/processed: the kept interactions are the positives (5-core), the
    cleaned titles and descriptions the item text, the processed images the posters (`variant_dir`/posters:
    links named {item_id}.jpg, as the peers' image features read them)."""
    from mmrec.data.ids import is_safe_id
    from mmrec.data.tables import load_interactions, load_items
    from mmrec.pipeline.preprocess import run_preprocess

    processed = variant_dir / "import" / "processed"
    settings = folder_settings(data_dir).model_copy(deep=True)
    settings.paths.processed_dir = processed
    settings.paths.cache_dir = variant_dir / "import" / "cache"  # preprocess remembers image digests there
    result = run_preprocess(settings)
    items = load_items(processed)
    interactions = load_interactions(processed)
    timestamps = "timestamp" in interactions.columns
    frame = interactions[["user_id", "item_id"]].assign(
        timestamp=interactions["timestamp"].astype("int64") if timestamps else 0)
    numeric = tuple(result.report["columns"]["numeric"])
    content = catalogue_content(processed)
    # One posters folder per content: the peers' image features are cached by its path and the item ids.
    posters = variant_dir / f"posters-{content[:16]}"
    shutil.rmtree(posters, ignore_errors=True)
    posters.mkdir(parents=True)
    for item_id, image in zip(items["item_id"], items["image_path"]):
        if isinstance(image, str) and is_safe_id(item_id):
            (posters / f"{item_id}.jpg").symlink_to((processed / image).resolve())
    return Dataset(
        name=dataset_name(data_dir), flavour="mmrec input folder", variant=CATALOGUE, source=data_dir,
        posters=posters, positives=k_core(frame.drop_duplicates(["user_id", "item_id"])),
        items=items.set_index("item_id"), n_ratings=int(result.report["interactions"]["input_rows"]),
        timestamps=timestamps, processed=processed, numeric=numeric, content=content,
        threshold=settings.data.positive_rating_threshold,
    )


def catalogue_content(processed: Path) -> str:
    """sha256 of what the systems read of an input folder's preprocessed items: ids, title, description, image
    fingerprint and the numeric columns kept (an edit to any of them makes stored results and inputs stale)."""
    from mmrec.data.tables import REPORT_FILE, load_items
    from mmrec.fileio import read_json

    numeric = read_json(Path(processed) / REPORT_FILE)["columns"]["numeric"]
    read = load_items(Path(processed))[["item_id", "title", "description", "image_fingerprint", *numeric]]
    return hashlib.sha256(pd.util.hash_pandas_object(read.astype(str), index=False).to_numpy().tobytes()).hexdigest()
