"""MovieLens (ml-latest-small / ml-20m+, ml-1m / ml-10m, ml-100k) plus a posters folder -> the mmrec input format.

Only content goes into item_info (title, genres + tags as description, release year, genres again as a
category column `genres`, `A|B`). Interaction
statistics (counts, mean rating) are NOT written as item features: computed over all ratings they
would leak the test split; the model side derives them from the training split.
"""

from __future__ import annotations

import filecmp
import io
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.data.ids import is_safe_id
from mmrec.data.import_config import config_sha256, files_record, import_config_target, refuse_own_files
from mmrec.errors import DataError
from mmrec.fileio import atomic_path, atomic_write_json, atomic_write_text
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import DataSettings

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
_YEAR = re.compile(r"\s*\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")
MAX_TAGS = 15


@dataclass
class MovieLensImport:
    """What the import wrote and found."""

    out_dir: Path
    flavour: str
    movies: int
    ratings: int
    users: int
    tagged_movies: int = 0
    posters_copied: int = 0
    posters_missing: int = 0
    missing_examples: list[str] = field(default_factory=list)
    numeric_columns: list[str] = field(default_factory=lambda: ["year"])
    config_path: Path | None = None
    posters_unchanged: int = 0  # of posters_copied: the file there already had these bytes (left as it was)
    config_kept: str | None = None  # why OUT/mmrec.yaml was kept, the new one beside it (import_config_target)


def split_title_year(title: str) -> tuple[str, float]:
    """("Toy Story", 1995.0) from "Toy Story (1995)"; year NaN when absent."""
    title = str(title).strip()
    match = _YEAR.search(title)
    if not match:
        return title, float("nan")
    return title[: match.start()].strip(), float(match.group(1))


def _genres(genres: list[str]) -> list[str]:
    return [g.strip() for g in genres if g.strip() and g.strip() != "(no genres listed)"]


# item_info's columns: genres also as a category column (data.category_columns: [genres], values split at |)
ITEM_COLUMNS = ["item_id", "title", "description", "year", "genres"]


def _description(genres: list[str], tags: list[str]) -> str:
    parts = []
    genres = _genres(genres)
    if genres:
        parts.append("Genres: " + ", ".join(genres) + ".")
    if tags:
        parts.append("Tags: " + ", ".join(tags) + ".")
    return " ".join(parts)


def _aggregate_tags(tags: pd.DataFrame) -> dict[str, list[str]]:
    """movieId -> up to MAX_TAGS distinct tags (case-insensitive), most frequent first."""
    result: dict[str, list[str]] = {}
    for movie, group in tags.groupby("movieId"):
        counts = Counter(str(t).strip() for t in group["tag"] if str(t).strip())
        seen: set[str] = set()
        ordered = []
        for tag, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower())):
            if tag.lower() not in seen:
                seen.add(tag.lower())
                ordered.append(tag)
        result[str(movie).strip()] = ordered[:MAX_TAGS]
    return result


def _tables(movies: pd.DataFrame, ratings: pd.DataFrame, tags: dict[str, list[str]]
            ) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """(items, interactions, ids of tagged movies) from movieId/title/genres ("A|B") and
    userId/movieId/rating/timestamp."""
    rows = []
    for movie_id, title, genres in zip(movies["movieId"], movies["title"], movies["genres"], strict=True):
        clean_title, year = split_title_year(title)
        movie_id = movie_id.strip()
        rows.append((movie_id, clean_title, _description(genres.split("|"), tags.get(movie_id, [])), year,
                     "|".join(_genres(genres.split("|")))))
    items = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    interactions = pd.DataFrame(
        {
            "user_id": ratings["userId"].str.strip(),
            "item_id": ratings["movieId"].str.strip(),
            "timestamp": ratings["timestamp"].astype("int64"),
            "rating": ratings["rating"].astype("float64"),
        }
    )
    return items, interactions, {movie for movie, movie_tags in tags.items() if movie_tags}


def _read_latest(src: Path) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    movies = pd.read_csv(src / "movies.csv", dtype=str, keep_default_na=False)
    ratings = pd.read_csv(src / "ratings.csv", dtype={"userId": str, "movieId": str})
    tags_path = src / "tags.csv"
    tags = _aggregate_tags(pd.read_csv(tags_path, dtype=str, keep_default_na=False)) if tags_path.is_file() else {}
    return _tables(movies, ratings, tags)


def _read_dat(path: Path, names: list[str]) -> pd.DataFrame:
    """A `::`-separated MovieLens .dat file (ml-1m, ml-10m) as strings: UTF-8, or latin-1 (ml-1m's movies.dat)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    # `::` never occurs inside a field; a tab never does either, so the fast C parser reads the rewritten text.
    return pd.read_csv(io.StringIO(text.replace("::", "\t")), sep="\t", header=None, names=names, dtype=str,
                       keep_default_na=False, quoting=3, engine="c")  # quoting=3: QUOTE_NONE, titles hold quotes


def _read_1m(src: Path) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    movies = _read_dat(src / "movies.dat", ["movieId", "title", "genres"])
    ratings = _read_dat(src / "ratings.dat", ["userId", "movieId", "rating", "timestamp"])
    tags_path = src / "tags.dat"  # ml-10m only
    tags = (_aggregate_tags(_read_dat(tags_path, ["userId", "movieId", "tag", "timestamp"]))
            if tags_path.is_file() else {})
    return _tables(movies, ratings, tags)


def _read_100k(src: Path) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    genre_file = src / "u.genre"
    genres = ML100K_GENRES
    if genre_file.is_file():
        lines = [
            line.split("|")[0]
            for line in genre_file.read_text(encoding="latin-1").splitlines()
            if "|" in line
        ]
        genres = tuple(lines) or genres
    raw = pd.read_csv(
        src / "u.item", sep="|", header=None, encoding="latin-1", dtype=str, keep_default_na=False
    )
    rows = []
    for record in raw.itertuples(index=False):
        movie_id, title, release = record[0].strip(), record[1], record[2]
        clean_title, year = split_title_year(title)
        if np.isnan(year) and release[-4:].isdigit():
            year = float(release[-4:])
        flags = list(record[5 : 5 + len(genres)])
        names = [genre for genre, flag in zip(genres, flags, strict=False) if flag.strip() == "1"]
        rows.append((movie_id, clean_title, _description(names, []), year, "|".join(_genres(names))))
    items = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    data = pd.read_csv(
        src / "u.data",
        sep="\t",
        header=None,
        names=["user_id", "item_id", "rating", "timestamp"],
        dtype={"user_id": str, "item_id": str},
    )
    interactions = pd.DataFrame(
        {
            "user_id": data["user_id"].str.strip(),
            "item_id": data["item_id"].str.strip(),
            "timestamp": data["timestamp"].astype("int64"),
            "rating": data["rating"].astype("float64"),
        }
    )
    return items, interactions, set()


# Layout name -> (the files that identify it, its optional tags file, its reader).
FLAVOURS = {
    "ml-latest": (("ratings.csv", "movies.csv"), "tags.csv", _read_latest),
    "ml-1m": (("ratings.dat", "movies.dat"), "tags.dat", _read_1m),
    "ml-100k": (("u.data", "u.item"), None, _read_100k),
}


def detect_flavour(src: Path) -> str:
    for flavour, (files, _, _) in FLAVOURS.items():
        if all((src / name).is_file() for name in files):
            return flavour
    if not src.is_dir():
        raise DataError(f"{src} is a file, not a MovieLens folder." if src.exists() else f"{src} does not exist.",
                        hint="Name the folder unpacked from the MovieLens zip (e.g. ml-latest-small/).")
    present = ", ".join(sorted(p.name for p in src.iterdir())[:15])
    raise DataError(
        f"{src} is not a MovieLens folder (found: {present}).",
        hint="Name a MovieLens folder: ml-latest-small / ml-20m / ml-25m (ratings.csv, movies.csv[, tags.csv]), "
        "ml-1m / ml-10m (ratings.dat, movies.dat[, tags.dat]) or ml-100k (u.data, u.item).",
    )


def import_movielens(
    src: Path,
    out_dir: Path,
    posters: Path | None,
    data: DataSettings,
    max_users: int | None = None,
    progress: ProgressCallback = null_progress,
    force: bool = False,
) -> MovieLensImport:
    """Write item_info, interactions and images/ under `out_dir`, plus dataset.json and mmrec.yaml; input files
    there that no import wrote are refused unless `force`."""
    src, out_dir = Path(src), Path(out_dir)
    flavour = detect_flavour(src)
    if posters is not None and not Path(posters).is_dir():
        raise DataError(
            f"Posters folder {posters} " + ("is a file, not a folder." if Path(posters).exists() else "not found."),
            hint="Pass --posters DIR holding {movieId}.jpg files.")
    names = (data.item_info_file, data.interactions_file)
    refuse_own_files(out_dir, names, force, "mmrec data import movielens")
    try:
        items, interactions, tagged = FLAVOURS[flavour][2](src)
    except (pd.errors.ParserError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read MovieLens files in {src}: {exc}") from None
    if max_users is not None:
        keep = sorted(interactions["user_id"].unique(), key=lambda u: (len(u), u))[:max_users]
        interactions = interactions[interactions["user_id"].isin(set(keep))]
        items = items[items["item_id"].isin(set(interactions["item_id"]))]
    result = MovieLensImport(  # tagged movies among those imported (--max-users keeps fewer)
        out_dir, flavour, len(items), len(interactions), int(interactions["user_id"].nunique()),
        len(tagged & set(items["item_id"])),
    )

    images_dir = out_dir / data.images_subdir
    images_dir.mkdir(parents=True, exist_ok=True)
    progress(ProgressEvent("posters", 0, len(items), "Copying posters"))
    for k, item_id in enumerate(items["item_id"]):
        source = Path(posters) / f"{item_id}.jpg" if posters is not None and is_safe_id(item_id) else None
        if source is not None and source.is_file():
            target = images_dir / f"{item_id}.jpg"
            # A poster already there with the same bytes is left alone: rewriting it would change its mtime,
            # and preprocess would take every image of a re-import for a new one.
            if target.is_file() and filecmp.cmp(source, target, shallow=False):
                result.posters_unchanged += 1
            else:
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
            result.posters_copied += 1
        else:
            result.posters_missing += 1
            if len(result.missing_examples) < 5:
                result.missing_examples.append(item_id)
        if k % 500 == 0:
            progress(ProgressEvent("posters", k + 1, len(items), "Copying posters"))
    progress(ProgressEvent("posters", len(items), len(items), "Copying posters", done=True))

    with atomic_path(out_dir / data.item_info_file) as tmp:
        items.to_csv(tmp, index=False)
    with atomic_path(out_dir / data.interactions_file) as tmp:
        interactions.to_csv(tmp, index=False)
    config = _config_yaml(out_dir.resolve())
    result.config_path, result.config_kept = import_config_target(out_dir)
    atomic_write_text(result.config_path, config)
    atomic_write_json(
        out_dir / "dataset.json",
        {
            "source": str(src),
            "flavour": flavour,
            "posters": str(posters) if posters else None,
            "movies": result.movies,
            "ratings": result.ratings,
            "users": result.users,
            "tagged_movies": tagged,
            "posters_copied": result.posters_copied,
            "posters_missing": result.posters_missing,
            **files_record(out_dir, names),
            "numeric_columns": result.numeric_columns,
            "max_users": max_users,
            "note": "No interaction statistics are item features here: "
            "the pipeline computes them from train only.",
            "config_sha256": config_sha256(config),
            "config_file": result.config_path.name,
        },
    )
    return result


def _config_yaml(out_dir: Path) -> str:
    def q(path: str) -> str:  # a JSON string is a valid double-quoted YAML scalar
        return json.dumps(str(out_dir / path) if path else str(out_dir))

    return (
        "# Written by `mmrec data import movielens`.\n"
        f"# Use with: mmrec <command> --config {out_dir}/mmrec.yaml\n"
        "paths:\n"
        f"  data_dir: {q('')}\n"
        f"  processed_dir: {q('processed')}\n"
        f"  splits_dir: {q('splits')}\n"
        f"  cache_dir: {q('cache')}\n"
        f"  checkpoint_dir: {q('models/checkpoints')}\n"
        f"  results_dir: {q('results')}\n"
        "data:\n"
        "  numerical_features_cols: [year]   # MovieLens has no view/comment/thumbup counts\n"
        "  positive_rating_threshold: 4.0    # ratings >= 4 are positives; the rest are dropped and counted\n"
    )
