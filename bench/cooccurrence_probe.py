"""Items done close together in time on top of EASE, validation only (the probe behind `directions: both`).

For one key, EASE (numpy, lambda chosen on validation from the grid) is blended with a time-local
co-occurrence model, (1 - a) z(EASE) + a z(x_u C) with z standardizing each user's row over her unseen
items, where C sums 1 / d^power over every pair d <= window positions apart in a user's time-ordered
training items (`sym`: both orders; `fwd`: j after i only, mmrec's next-item transitions), rows normalized,
and x_u the profile at a half-life of hl items (0: every item alike). Every (mode, power, window, hl, a) is
scored by validation NDCG@10 and its paired per-user gain over EASE alone. test.csv is never read.

Keys: `random S` / `temporal S` (the peer benchmark's split files of seed S, tags variant: ratings >= 4,
5-core) or `dense S` (every ml-latest-small rating, per user 75% as train.csv as `bench/cli_no_val.py` splits
it, then 10% of each user's train rows as the holdout `mmrec train` would carve; only train.csv is used).

    OMP_NUM_THREADS=1 .venv/bin/python bench/cooccurrence_probe.py random 0     # writes results/cooccurrence_probe/
    .venv/bin/python bench/cooccurrence_probe.py --report                        # the summary table
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "cooccurrence_probe"
SPLITS = ROOT / "bench" / ".work" / "movielens-small-posters" / "tags"
RATINGS = ROOT.parent / "shared" / "data" / "movielens-small-posters" / "ratings.csv"


def ndcg_users(scores: np.ndarray, target: np.ndarray, k: int = 10) -> np.ndarray:
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, 1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, 1)
    hits = np.take_along_axis(target, top, 1)
    disc = 1 / np.log2(np.arange(2, k + 2))
    dcg = (hits * disc).sum(1)
    n = np.minimum(target.sum(1), k).astype(int)
    idcg = np.cumsum(disc)[np.maximum(n - 1, 0)] * (n > 0)
    return np.where(n > 0, dcg / np.maximum(idcg, 1e-12), np.nan)


def cooc(t: pd.DataFrame, n_items: int, window: int, power: int, sym: bool) -> sp.csr_matrix:
    users, items = t.u.to_numpy(), t.i.to_numpy()
    counts = sp.csr_matrix((n_items, n_items))
    for d in range(1, window + 1):
        same = users[d:] == users[:-d]
        a, b = items[:-d][same], items[d:][same]
        w = np.full(len(a), 1.0 / d ** power)
        if sym:
            counts = counts + sp.csr_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n_items, n_items))
        else:
            counts = counts + sp.csr_matrix((w, (a, b)), shape=(n_items, n_items))
    totals = np.asarray(counts.sum(1)).ravel()
    return sp.diags(np.divide(1, totals, out=np.zeros_like(totals), where=totals > 0)) @ counts


def profiles(t: pd.DataFrame, n_users: int, n_items: int, hl: float) -> sp.csr_matrix:
    f = t.drop_duplicates(["u", "i"], keep="last")
    w = np.ones(len(f)) if hl <= 0 else 0.5 ** (f.groupby("u").cumcount(ascending=False).to_numpy() / hl)
    return sp.csr_matrix((w, (f.u, f.i)), shape=(n_users, n_items))


def probe(train: pd.DataFrame, val: pd.DataFrame, lams: tuple[float, ...]) -> dict:
    items = pd.Index(sorted(set(train.item_id)))
    users = pd.Index(sorted(set(train.user_id)))
    train = train.assign(u=users.get_indexer(train.user_id), i=items.get_indexer(train.item_id))
    train = train.sort_values(["u", "timestamp"], kind="stable")
    val = val[val.item_id.isin(items) & val.user_id.isin(users)]
    n_users, n_items = len(users), len(items)
    x = sp.csr_matrix((np.ones(len(train)), (train.u, train.i)), shape=(n_users, n_items))
    x.data[:] = 1
    xd = x.toarray()
    y = np.zeros((n_users, n_items), bool)
    y[users.get_indexer(val.user_id), items.get_indexer(val.item_id)] = True
    vu = y.any(1)
    gram = (x.T @ x).toarray()
    ease: dict[str, float] = {}
    best = None
    for lam in lams:
        inverse = np.linalg.inv(gram + lam * np.eye(n_items))
        b = -inverse / np.diag(inverse)
        np.fill_diagonal(b, 0)
        s = xd[vu] @ b
        s[xd[vu] > 0] = -np.inf
        nd = ndcg_users(s, y[vu])
        ease[f"{lam:g}"] = float(np.nanmean(nd))
        if best is None or np.nanmean(nd) > best[0]:
            best = (np.nanmean(nd), xd[vu] @ b, nd)
    _, e, base = best
    seen = xd[vu] > 0

    def z(s: np.ndarray) -> np.ndarray:
        s = np.where(seen, np.nan, s)
        out = (s - np.nanmean(s, 1, keepdims=True)) / (np.nanstd(s, 1, keepdims=True) + 1e-9)
        return np.where(seen, -np.inf, out)

    ez = z(e)
    rows = []
    for sym in (True, False):
        for power in (1, 2):
            for window in (3, 10):
                c = cooc(train, n_items, window, power, sym)
                for hl in (0, 1, 3):
                    cz = z(np.asarray((profiles(train, n_users, n_items, hl)[vu] @ c).todense()))
                    for a in (0.1, 0.2, 0.3, 0.5):
                        nd = ndcg_users((1 - a) * ez + a * cz, y[vu])
                        d = nd - base
                        d = d[~np.isnan(d)]
                        rows.append({"mode": "sym" if sym else "fwd", "power": power, "window": window, "hl": hl,
                                     "a": a, "gain": float(d.mean() / np.nanmean(base)),
                                     "gain_se": float(d.mean() / (d.std(ddof=1) / np.sqrt(len(d))))})
    return {"ease_val_ndcg@10": ease, "val_users": int(vu.sum()), "rows": rows}


def split_for(kind: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, tuple[float, ...]]:
    if kind in ("random", "temporal"):
        path = SPLITS / f"seed{seed}" / "splits" / kind
        return pd.read_csv(path / "train.csv"), pd.read_csv(path / "val.csv"), (100.0, 200.0, 400.0)
    ratings = pd.read_csv(RATINGS).rename(columns={"userId": "user_id", "movieId": "item_id"})
    ratings = ratings.assign(k=np.random.default_rng(seed).random(len(ratings)))
    ratings["rank"] = ratings.groupby("user_id").k.rank(method="first") / ratings.groupby("user_id").k.transform("size")
    train = ratings[ratings["rank"] <= 0.75]
    train = train.assign(k=np.random.default_rng(seed + 100).random(len(train)))
    train["rank"] = train.groupby("user_id").k.rank(method="first") / train.groupby("user_id").k.transform("size")
    return train[train["rank"] > 0.1], train[train["rank"] <= 0.1], (200.0, 400.0)


def report() -> None:
    lines = ["# Items done close together on top of EASE (validation only, `bench/cooccurrence_probe.py`)", "",
             "Best validation NDCG@10 gain over EASE alone (its lambda chosen on validation) per co-occurrence kernel, "
             "over profile half-life (0, 1, 3) and weight (0.1-0.5); in brackets the paired SE, half-life, weight. "
             "sym = pairs in both orders, fwd = next items only; power p: weight 1 / d^p; w: window.", "",
             "| key | " + " | ".join(f"{m} p{p} w{w}" for m in ("sym", "fwd") for p in (1, 2) for w in (3, 10)) + " |",
             "|---|" + "---|" * 8]
    for path in sorted(OUT.glob("*.json")):
        rows = json.loads(path.read_text())["rows"]
        cells = []
        for mode in ("sym", "fwd"):
            for power in (1, 2):
                for window in (3, 10):
                    best = max((r for r in rows if (r["mode"], r["power"], r["window"]) == (mode, power, window)),
                               key=lambda r: r["gain"])
                    cells.append(f"{best['gain']:+.1%} ({best['gain_se']:.1f}, {best['hl']}, {best['a']:g})")
        lines.append(f"| {path.stem} | " + " | ".join(cells) + " |")
    (OUT / "README.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", nargs="?", choices=("random", "temporal", "dense"))
    parser.add_argument("seed", nargs="?", type=int, default=0)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report:
        report()
        return
    if args.kind is None:
        sys.exit("give a key (random S, temporal S or dense S) or --report")
    train, val, lams = split_for(args.kind, args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    result = probe(train, val, lams)
    (OUT / f"{args.kind}_seed{args.seed}.json").write_text(json.dumps(result, indent=1))
    best = max(result["rows"], key=lambda r: r["gain"])
    print(args.kind, args.seed, result["ease_val_ndcg@10"], best)


if __name__ == "__main__":
    main()
