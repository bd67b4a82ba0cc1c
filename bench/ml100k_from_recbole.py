"""Write MovieLens-100K, as the RecBole wheel ships it, in the ml-latest layout mmrec's importer reads.

A second real dataset for the generalization checks, reachable where only package registries are: RecBole's
PyPI wheel carries ml-100k's atomic files (`recbole/dataset_example/ml-100k/ml-100k.{inter,item}`: 100,000
ratings of 943 users on 1,682 movies, GroupLens' research-only terms as ml-latest-small). No posters, no tags:
the text is "title (year). genres", the peer benchmark's `no-tags` variant, and every image feature is zero.

    .venv/bin/pip download --no-deps recbole==1.2.1 -d /tmp/recbole
    .venv/bin/python bench/ml100k_from_recbole.py /tmp/recbole/recbole-1.2.1-py3-none-any.whl bench/.work/ml-100k

writes `ratings.csv` (userId,movieId,rating,timestamp) and `movies.csv` (movieId,title,genres) under the
output folder (keep it under the ignored `bench/.work/`; the data is never committed). Then, e.g.:

    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py --data bench/.work/ml-100k --work bench/.work/cli_no_val_ml100k \
        --seeds 0 1 2 --runs holdout --out bench/results/ml-100k/cli_no_val
    OMP_NUM_THREADS=1 .venv/bin/python bench/run_peers.py --data-dir bench/.work/ml-100k --seeds 0 1 2 --protocols random
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import zipfile
from pathlib import Path

MEMBER = "recbole/dataset_example/ml-100k/ml-100k.{}"


def _rows(archive: zipfile.ZipFile, kind: str) -> list[list[str]]:
    text = archive.read(MEMBER.format(kind)).decode("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    return rows[1:]  # the header names RecBole's typed fields


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())
    os.replace(tmp, path)


def convert(wheel: Path, out: Path) -> tuple[int, int]:
    """(ratings, movies) written."""
    with zipfile.ZipFile(wheel) as archive:
        inter = _rows(archive, "inter")
        items = _rows(archive, "item")
    out.mkdir(parents=True, exist_ok=True)
    ratings = [[user, item, rating, str(int(float(stamp)))] for user, item, rating, stamp in inter]
    movies = []
    for fields in items:
        item, title, year, genres = (fields + ["", "", ""])[:4]
        # RecBole keeps the year apart and the genres space-separated (no ml-100k genre has a space)
        shown = f"{title} ({year})" if year.strip() else title
        movies.append([item, shown, "|".join(genres.split()) or "(no genres listed)"])
    _write_csv(out / "ratings.csv", ["userId", "movieId", "rating", "timestamp"], ratings)
    _write_csv(out / "movies.csv", ["movieId", "title", "genres"], movies)
    return len(ratings), len(movies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="recbole-*.whl (pip download --no-deps recbole)")
    parser.add_argument("out", type=Path, help="output folder (ml-latest layout)")
    args = parser.parse_args(argv)
    n_ratings, n_movies = convert(args.wheel, args.out)
    print(f"wrote {n_ratings} ratings and {n_movies} movies to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
