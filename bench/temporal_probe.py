"""What validation can see of the per-user temporal protocol: its gap, a transition component, a trend component.

The benchmark's temporal test items lie a whole validation window after the profiles they are scored
from (test is scored from train; the validation items sit between). `mmrec train` validates with no
such gap. This reads a stored `bench/run_peers.py` checkpoint, rebuilds the blend it chose on validation
(two-tower + item-item at its half-life and weight + content) and validates, each under both gaps:
- the chosen blend, the item-item half-lives, and the whole (half-life, weight, content weight) grid:
  how much a selection that saw the gap could gain;
- a transition component on top of the chosen blend: T[i, j] = the weighted count of j following i
  within `window` positions of a user's training sequence (weight 1/d at distance d; `both` also counts
  j before i), row-normalized; scores x_u T with x_u the recency-weighted profile (half-life hq);
- a trend component on top of it: log(1 + the item's interactions, any user, in the `days` before the
  user's last profile item), i.e. what was popular when the user was last active (past only).
A component blends as (1 - a) z(chosen) + a z(component), a in WEIGHTS.

Validation only, the split's val.csv (test is never read):
- gap 0: profiles end at the user's last training item, as `mmrec train` validates;
- gapped: every profile (two-tower history, item-item, content, transitions, trend time) drops the
  user's last n_val training items, so the validation items lie as far after the profile as the
  benchmark's test items lie after train.

    OMP_NUM_THREADS=1 .venv/bin/python bench/temporal_probe.py tags:0:temporal:<checkpoint folder> ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.peers.stored import WORK, load_stored_run, probe_keys  # noqa: E402
from mmrec.fileio import atomic_write_text  # noqa: E402
WEIGHTS = (0.1, 0.2, 0.3, 0.5, 0.7)
HALFLIVES = (0.0, 1.0, 2.0, 5.0)
HQ = (0.5, 1.0, 3.0)
TREND_DAYS = (1, 7, 30, 180, 365)
SHAPES = (("fwd", 1), ("fwd", 3), ("fwd", 10), ("both", 3), ("both", 10))


def transitions(user_idx: np.ndarray, item_rows: np.ndarray, n_items: int, direction: str, window: int,
                normalize: str = "row") -> np.ndarray:
    order = np.argsort(user_idx, kind="stable")
    u, i = user_idx[order], item_rows[order]
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    for d in range(1, window + 1):
        same = u[d:] == u[:-d]
        src, dst = i[:-d][same], i[d:][same]
        part = sp.csr_matrix((np.full(len(src), 1.0 / d), (src, dst)), shape=(n_items, n_items))
        counts = counts + part + (part.T if direction == "both" else 0)
    dense = counts.toarray()
    if normalize == "row":
        dense /= np.maximum(dense.sum(axis=1, keepdims=True), 1e-12)
    elif normalize == "sym":
        r = np.sqrt(np.maximum(dense.sum(axis=1), 1e-12))
        c = np.sqrt(np.maximum(dense.sum(axis=0), 1e-12))
        dense /= r[:, None] * c[None, :]
    return dense.astype(np.float32)


def z(x: torch.Tensor) -> torch.Tensor:
    std, mean = torch.std_mean(x, dim=1, keepdim=True)
    return (x - mean) / std.clamp_min(1e-8)


def ndcg10(scores: torch.Tensor, relevant: sp.csr_matrix, exclude: sp.csr_matrix) -> float:
    s = scores.clone()
    ex = exclude.tocoo()
    s[torch.as_tensor(ex.row), torch.as_tensor(ex.col)] = float("-inf")
    top = torch.topk(s, 10, dim=1).indices.numpy()
    rel = relevant.tocsr()
    discounts = 1.0 / np.log2(np.arange(2, 12))
    total = 0.0
    for r in range(rel.shape[0]):
        items = set(rel.indices[rel.indptr[r]:rel.indptr[r + 1]])
        gains = np.array([1.0 if t in items else 0.0 for t in top[r]])
        ideal = discounts[:min(len(items), 10)].sum()
        total += float((gains * discounts).sum() / ideal)
    return total / rel.shape[0]


def peer_scores(name: str, variant: str, seed: int, protocol: str, train: pd.DataFrame | None,
                user_ids: list[str], item_ids: list[str]) -> np.ndarray:
    """[len(user_ids), len(item_ids)] scores of peer `name` with its stored best config for this key, fitted on
    the split's train (train None) or on `train` (e.g. the gapped profiles), rows and columns in the given order."""
    from bench.peers.protocols import load_split
    from bench.peers.systems import Context, all_systems

    split = load_split(WORK / variant / f"seed{seed}" / "splits" / protocol)
    if train is not None:
        split.frames["train"] = train[["user_id", "item_id", "timestamp"]].astype({"user_id": str, "item_id": str})
    stored = json.loads((ROOT / "bench" / "results" / "movielens-small-posters" / "runs" / variant / f"seed{seed}" /
                         protocol / f"{name}.json").read_text())
    system = next(s for s in all_systems() if s.name == name)
    # Interaction-only peers: no content features are handed over.
    ctx = Context(seed=seed, image=np.zeros((split.n_items, 0)), text=np.zeros((split.n_items, 0)))
    scorer = system.fit(split, stored["result"]["best_config"], ctx)
    user_row = {u: r for r, u in enumerate(split.users)}
    item_col = {i: c for c, i in enumerate(split.items)}
    scores = scorer(np.array([user_row[u] for u in user_ids]))
    return scores[:, [item_col[i] for i in item_ids]]


def probe(variant: str, seed: int, protocol: str, folder: str, peer: str | None = None) -> dict:
    from mmrec.models.content_profile import ContentProfileModel
    from mmrec.models.histories import catalogue_index, ordered_pairs, user_histories
    from mmrec.models.item_item import fit_item_item, item_item_profiles
    from mmrec.models.scoring import Scorer

    run = load_stored_run(variant, seed, protocol, folder, "temporal_probe")
    settings, inputs, trainer, meta = run.settings, run.inputs, run.trainer, run.meta
    data, users, catalogue = trainer.data, inputs.users, inputs.catalogue
    rows = catalogue_index(inputs.item_ids)
    n_items = len(rows)
    choice = meta["item_item"]
    train = inputs.split.train
    val_rows = data.val_users.numpy()

    # The gapped profile: each user's train minus her last n_val items (n_val = her validation count).
    user_idx, item_rows = ordered_pairs(train, users, rows)
    n_val = np.zeros(len(users), dtype=np.int64)
    n_val[val_rows] = np.diff(data.val_relevant.indptr)
    frame = pd.DataFrame({"u": user_idx, "i": item_rows})
    age = frame.groupby("u").cumcount(ascending=False).to_numpy()
    keep = age >= n_val[user_idx]
    item_ids = np.array(inputs.item_ids, dtype=object)
    user_ids = np.array(["<unknown>", *users.ids], dtype=object)  # index 0 = unknown

    ordered = train.reset_index(drop=True).sort_values("timestamp", kind="stable")
    known = (users.encode(ordered["user_id"]) > 0) & ordered["item_id"].astype(str).isin(rows.index).to_numpy()
    stamps = ordered["timestamp"].to_numpy()[known]
    assert len(stamps) == len(user_idx)

    def frame_of(mask: np.ndarray) -> pd.DataFrame:
        # In time order with the real timestamps: ordered_pairs' stable sort keeps this order.
        return pd.DataFrame({"user_id": user_ids[user_idx[mask]], "item_id": item_ids[item_rows[mask]],
                             "timestamp": stamps[mask]})

    # Per item, the sorted timestamps of its training interactions (every user): trend counts by searchsorted.
    by_item = [np.sort(stamps[item_rows == i]) for i in range(n_items)]

    item_item = fit_item_item(train, users, rows, catalogue, settings.model, 0.0)
    results: dict[str, dict] = {}
    for gap, source in (("gap0", train), ("gapped", frame_of(keep))):
        histories = torch.as_tensor(user_histories(source, users, rows, data.histories.shape[1]))
        base = Scorer(trainer.module, catalogue, histories)
        binary = item_item_profiles(source, users, rows, 0.0)
        scorer = base
        if choice["blend"] > 0:
            scorer = scorer.with_item_item(item_item.with_profiles(
                item_item_profiles(source, users, rows, choice["halflife"])), choice["blend"])
        if choice["content_blend"] > 0:
            scorer = scorer.with_content(ContentProfileModel.build(catalogue, choice["content_modality"], binary),
                                         choice["content_blend"])
        users_t = torch.as_tensor(val_rows)
        base_scores = scorer.scores(users_t, users_t)
        out: dict[str, float] = {"chosen": ndcg10(base_scores, data.val_relevant, data.val_exclude)}
        if gap == "gap0":
            out["trainer_check"] = trainer.validate(scorer)["ndcg@10"]
        # The item-item half-life under this gap (same weight and content as chosen).
        for h in HALFLIVES:
            s = base.with_item_item(item_item.with_profiles(item_item_profiles(source, users, rows, h)),
                                    max(choice["blend"], 0.25))
            if choice["content_blend"] > 0:
                s = s.with_content(ContentProfileModel.build(catalogue, choice["content_modality"], binary),
                                   choice["content_blend"])
            out[f"ii_h{h:g}"] = ndcg10(s.scores(users_t, users_t), data.val_relevant, data.val_exclude)
        # The whole blend grid under this gap (what selection could gain if it validated with this gap).
        modality = choice["content_modality"] or "text"
        content_model = ContentProfileModel.build(catalogue, modality, binary)
        for h in HALFLIVES:
            ii = item_item.with_profiles(item_item_profiles(source, users, rows, h))
            for w in (0.0, 0.25, 0.5, 0.75, 1.0):
                for c in (0.0, 0.25, 0.5):
                    s = base.with_item_item(ii, w).with_content(content_model, c)
                    out[f"grid_h{h:g}_w{w:g}_c{c:g}"] = ndcg10(s.scores(users_t, users_t), data.val_relevant,
                                                               data.val_exclude)
        zb = z(base_scores)
        if peer is not None:  # a peer's scores on top of the chosen blend (peer refitted on the gapped train)
            q = torch.as_tensor(peer_scores(peer, variant, seed, protocol, source if gap == "gapped" else None,
                                            list(user_ids[val_rows]), list(inputs.item_ids)), dtype=torch.float32)
            out[f"peer_{peer}_alone"] = ndcg10(q, data.val_relevant, data.val_exclude)
            for a in WEIGHTS:
                out[f"peer_{peer}_a{a:g}"] = ndcg10((1 - a) * zb + a * z(q), data.val_relevant, data.val_exclude)
        # Trend: how often each item was interacted with (any user) in the window before the user's last profile item.
        last = pd.Series(source["timestamp"].to_numpy()).groupby(users.encode(source["user_id"])).max()
        t_u = last.reindex(val_rows).to_numpy(dtype=np.float64)
        for days in TREND_DAYS:
            lo = t_u - days * 86400.0
            counts = np.stack([np.searchsorted(times, t_u, side="right") - np.searchsorted(times, lo, side="left")
                               for times in by_item], axis=1).astype(np.float32)
            q = torch.as_tensor(np.log1p(counts))
            out[f"trend{days:g}d_alone"] = ndcg10(q, data.val_relevant, data.val_exclude)
            for a in WEIGHTS:
                out[f"trend{days:g}d_a{a:g}"] = ndcg10((1 - a) * zb + a * z(q), data.val_relevant, data.val_exclude)
        su, si = ordered_pairs(source, users, rows)
        for direction, window in SHAPES:
            t = torch.as_tensor(transitions(su, si, n_items, direction, window))
            for hq in HQ:
                prof = item_item_profiles(source, users, rows, hq)[val_rows]
                q = torch.as_tensor(np.asarray(prof @ t.numpy()), dtype=torch.float32)
                zq = z(q)
                out[f"{direction}{window}_hq{hq:g}_alone"] = ndcg10(q, data.val_relevant, data.val_exclude)
                for a in WEIGHTS:
                    out[f"{direction}{window}_hq{hq:g}_a{a:g}"] = ndcg10((1 - a) * zb + a * zq, data.val_relevant,
                                                                         data.val_exclude)
        results[gap] = {k: round(v, 4) for k, v in out.items()}
        print(variant, seed, gap, json.dumps(results[gap]), flush=True)
    return {"variant": variant, "seed": seed, "protocol": protocol, "choice": {k: choice[k] for k in (
        "blend", "halflife", "content_blend", "content_modality")}, **results}


def summary(rows: list[dict]) -> list[str]:
    """Markdown: per key, the chosen blend and the transition blend validation would pick (gap 0), under both gaps."""
    lines = ["| key | chosen blend: gap 0 / gapped | item-item h 0 / 1 / 2 / 5, gapped | best transition blend on gap 0 "
             "| its gap 0 / gapped | best transition blend, gapped | blend grid: gap-0 pick, gapped | blend grid: best gapped "
             "| trend blend: gap-0 pick, gap 0 / gapped |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        gap0, gapped = row["gap0"], row["gapped"]
        blends = [k for k in gap0 if k.startswith(("fwd", "both")) and not k.endswith("_alone")]
        trends = [k for k in gap0 if k.startswith("trend") and not k.endswith("_alone")]
        trend_pick = max(trends, key=lambda k: gap0[k])
        pick = max(blends, key=lambda k: gap0[k])
        hindsight = max(blends, key=lambda k: gapped[k])
        grid = [k for k in gap0 if k.startswith("grid_")]
        grid_pick, grid_gapped = max(grid, key=lambda k: gap0[k]), max(grid, key=lambda k: gapped[k])
        halflives = " / ".join(f"{gapped[f'ii_h{h:g}']:.4f}" for h in HALFLIVES)
        lines.append(f"| {row['protocol']} / {row['variant']} / seed {row['seed']} | {gap0['chosen']:.4f} / "
                     f"{gapped['chosen']:.4f} | {halflives} | {pick} | {gap0[pick]:.4f} / {gapped[pick]:.4f} | "
                     f"{hindsight}: {gapped[hindsight]:.4f} | {grid_pick}: {gapped[grid_pick]:.4f} | "
                     f"{grid_gapped}: {gapped[grid_gapped]:.4f} | {trend_pick}: {gap0[trend_pick]:.4f} / "
                     f"{gapped[trend_pick]:.4f} |")
    peered = [row for row in rows if any(k.startswith("peer_") for k in row["gap0"])]
    if peered:
        lines += ["", "| key | peer alone: gap 0 / gapped | chosen blend + peer, weight picked on gap 0: gap 0 / gapped "
                  "| + peer, best weight on the gapped validation |", "|---|---|---|---|"]
        for row in peered:
            gap0, gapped = row["gap0"], row["gapped"]
            alone = next(k for k in gap0 if k.startswith("peer_") and k.endswith("_alone"))
            blends = [k for k in gap0 if k.startswith("peer_") and not k.endswith("_alone")]
            pick, hindsight = max(blends, key=lambda k: gap0[k]), max(blends, key=lambda k: gapped[k])
            lines.append(f"| {row['protocol']} / {row['variant']} / seed {row['seed']} | {gap0[alone]:.4f} / "
                         f"{gapped[alone]:.4f} | {pick}: {gap0[pick]:.4f} / {gapped[pick]:.4f} | "
                         f"{hindsight}: {gapped[hindsight]:.4f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="variant:seed:protocol:checkpoint folder")
    parser.add_argument("--peer", help="also blend this interaction-only peer (e.g. BiVAE) with its stored best config, "
                        "refitted per gap, on top of the chosen blend")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "movielens-small-posters" / "temporal_probe",
                        help="writes OUT.json and OUT.md")
    args = parser.parse_args()

    def one(run: str) -> dict:
        variant, seed, protocol, folder = run.split(":", 3)
        return probe(variant, int(seed), protocol, folder, args.peer)

    write_report(args.out, *probe_keys(args.runs, one, args.out))


def write_report(out: Path, machine: str, rows: list[dict]) -> None:
    """OUT.md from the rows of OUT.json (also rebuilt alone: write_report(out, **json.load(OUT.json)))."""
    lines = ["# The temporal protocol's gap, and transition, trend and peer components: validation NDCG@10", "",
             f"Machine: {machine}. `bench/temporal_probe.py` on stored `bench/run_peers.py` checkpoints; the split's "
             "val.csv only (gap 0: profiles end at the last training item; gapped: every profile drops each user's "
             "last n_val training items, as far as the benchmark's test lies after train). Transition configs: "
             "fwd|both + window, hq = profile half-life, a = blend weight; grid configs: h = item-item half-life, "
             "w = its weight, c = content weight. In the gapped rows mmrec's weights (two-tower, item-item) and the "
             "transition counts stay fitted on all of train, so they saw the dropped items: that favours them over a "
             "peer, which is refitted on the gapped train as its test-time state is.", "", *summary(rows)]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
