"""Tiny fabricated MovieLens folders in the layouts mmrec's importer reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES_100K = 19


def write_ml100k(folder: Path, n_users: int = 14, n_items: int = 12, seed: int = 0, density: float = 0.85) -> Path:
    """u.data (tab-separated user, item, rating, timestamp) and u.item (pipe-separated, 19 genre flags)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for user in range(1, n_users + 1):
        for item in range(1, n_items + 1):
            if rng.random() < density:
                rating = 5 if rng.random() < 0.8 else 2
                lines.append(f"{user}\t{item}\t{rating}\t{880000000 + 100 * user + item}")
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    items = []
    for item in range(1, n_items + 1):
        flags = ["0"] * GENRES_100K
        flags[1 + item % 5] = "1"
        items.append(f"{item}|Movie {item} (199{item % 10})|01-Jan-199{item % 10}||http://x|" + "|".join(flags))
    (folder / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    return folder


def write_ml_latest(folder: Path, n_users: int = 14, n_items: int = 12, seed: int = 0, tags: bool = True) -> Path:
    """ratings.csv, movies.csv and (optionally) tags.csv in the ml-latest-small format."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = ["userId,movieId,rating,timestamp"]
    for user in range(1, n_users + 1):
        for item in range(1, n_items + 1):
            if rng.random() < 0.85:
                rows.append(f"{user},{item},{4.5 if rng.random() < 0.8 else 2.0},{1_000_000 + 100 * user + item}")
    (folder / "ratings.csv").write_text("\n".join(rows) + "\n")
    movies = ["movieId,title,genres"] + [f"{i},Film {i} (20{i:02d}),Drama|Comedy" for i in range(1, n_items + 1)]
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    if tags:
        (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,funny,1\n2,1,classic,2\n1,3,dark,3\n")
    return folder


def write_ml_dat(folder: Path, n_users: int = 14, n_items: int = 12, seed: int = 0, tags: bool = True) -> Path:
    """ratings.dat, movies.dat and (optionally, as ml-10m) tags.dat: the `::`-separated ml-1m / ml-10m layout."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = [f"{user}::{item}::{5 if rng.random() < 0.8 else 2}::{978_000_000 + 100 * user + item}"
            for user in range(1, n_users + 1) for item in range(1, n_items + 1) if rng.random() < 0.85]
    (folder / "ratings.dat").write_text("\n".join(rows) + "\n")
    movies = [f"{i}::Film {i} (19{i:02d})::Drama|Comedy" for i in range(1, n_items + 1)]
    (folder / "movies.dat").write_text("\n".join(movies) + "\n", encoding="latin-1")
    if tags:
        (folder / "tags.dat").write_text("1::1::funny::1\n2::1::classic::2\n1::3::dark::3\n")
    return folder
