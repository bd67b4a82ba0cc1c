"""MovieLens-small as implicit feedback: rating >= 4 is a positive, 5-core filtered until stable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmrec.errors import DataError

POSITIVE_RATING = 4.0
MIN_POSITIVES = 5


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


def load_positives(data_dir: str | Path) -> pd.DataFrame:
    """ratings.csv -> positives [user_id, item_id, timestamp] (str ids), 5-core filtered."""
    path = Path(data_dir) / "ratings.csv"
    if not path.is_file():
        raise DataError(f"ratings file not found: {path}", hint="pass --data-dir pointing at movielens-small-posters")
    ratings = pd.read_csv(path)
    missing = {"userId", "movieId", "rating", "timestamp"} - set(ratings.columns)
    if missing:
        raise DataError(f"{path} lacks columns {sorted(missing)}", hint="use the unchanged MovieLens ratings.csv")
    positives = ratings[ratings["rating"] >= POSITIVE_RATING]
    frame = pd.DataFrame(
        {
            "user_id": positives["userId"].astype(str),
            "item_id": positives["movieId"].astype(str),
            "timestamp": positives["timestamp"].astype("int64"),
        }
    ).drop_duplicates(["user_id", "item_id"])
    return k_core(frame)


def load_item_text(data_dir: str | Path, item_ids: list[str]) -> list[str]:
    """'title. genres. tags' per item, in the order of `item_ids` (MovieLens has no long description)."""
    data_dir = Path(data_dir)
    movies = pd.read_csv(data_dir / "movies.csv", dtype={"movieId": str}).set_index("movieId")
    tags = pd.read_csv(data_dir / "tags.csv", dtype={"movieId": str})
    tag_text = tags.groupby("movieId")["tag"].apply(lambda t: ", ".join(sorted(set(map(str, t)))))
    texts = []
    for item in item_ids:
        title = movies.at[item, "title"] if item in movies.index else ""
        genres = movies.at[item, "genres"].replace("|", ", ") if item in movies.index else ""
        texts.append(f"{title}. {genres}. {tag_text.get(item, '')}".strip())
    return texts
