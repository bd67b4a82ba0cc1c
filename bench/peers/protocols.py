"""The three protocols, written ONCE as split files that every system reads.

Layout: {workdir}/splits/{protocol}/{train,val,test}.csv (user_id,item_id,timestamp — mmrec's own
split format) plus meta.json (catalogue order, cold items, counts). Catalogue = every item of the
5-core data in sorted order, so all systems score the same item columns in the same order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mmrec.errors import SplitError
from mmrec.data.matrices import interaction_matrix
from mmrec.fileio import atomic_path, atomic_write_json

PROTOCOLS = ("random", "coldstart", "temporal")
PARTS = ("train", "val", "test")
HOLDOUT_FRACTION = 0.1  # per-user share of positives for validation and again for test
COLD_ITEM_FRACTION = 0.2


def _per_user_tail_split(frame: pd.DataFrame, order: pd.Series) -> dict[str, pd.DataFrame]:
    """Per user, sorted by `order`: the last 10% (>= 1) is test, the 10% (>= 1) before it val."""
    frame = frame.assign(_order=order.values).sort_values(["user_id", "_order", "item_id"], kind="stable")
    position = frame.groupby("user_id").cumcount(ascending=False)  # 0 = the user's last row
    n = frame["user_id"].map(frame["user_id"].value_counts())
    n_hold = np.maximum(1, np.round(n * HOLDOUT_FRACTION)).astype(int)
    if (n < 3).any():
        raise SplitError("a user has fewer than 3 positives", hint="apply the 5-core filter first")
    frame = frame.drop(columns="_order")
    return {
        "test": frame[position < n_hold],
        "val": frame[(position >= n_hold) & (position < 2 * n_hold)],
        "train": frame[position >= 2 * n_hold],
    }


def split_random(frame: pd.DataFrame, seed: int) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Per-user 80/10/10 at random; every user keeps >= 1 training item."""
    order = pd.Series(np.random.default_rng(seed).random(len(frame)), index=frame.index)
    return _per_user_tail_split(frame, order), []


def split_temporal(frame: pd.DataFrame, seed: int) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Per user by time: last 10% of positives test, the 10% before validation."""
    return _per_user_tail_split(frame, frame["timestamp"]), []


def split_coldstart(frame: pd.DataFrame, seed: int) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """20% of items held out entirely; their interactions go half to validation, half to test."""
    rng = np.random.default_rng(seed)
    items = np.array(sorted(frame["item_id"].unique()))
    cold = set(rng.choice(items, size=round(COLD_ITEM_FRACTION * len(items)), replace=False))
    is_cold = frame["item_id"].isin(cold).to_numpy()
    held = frame[is_cold]
    to_test = rng.random(len(held)) < 0.5
    parts = {"train": frame[~is_cold], "val": held[~to_test], "test": held[to_test]}
    return parts, sorted(cold)


SPLITTERS = {"random": split_random, "coldstart": split_coldstart, "temporal": split_temporal}


def verify_split(parts: dict[str, pd.DataFrame], cold_items: list[str], protocol: str) -> None:
    """Raise SplitError on any leak: a (user, item) pair in two parts, or a cold item in train."""
    keys = {name: set(zip(part["user_id"], part["item_id"])) for name, part in parts.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        overlap = keys[a] & keys[b]
        if overlap:
            raise SplitError(f"{protocol}: {len(overlap)} (user, item) pairs in both {a} and {b}")
    if cold_items and set(cold_items) & set(parts["train"]["item_id"]):
        raise SplitError(f"{protocol}: a held-out cold item appears in train")
    if protocol != "coldstart":
        without_train = set(parts["test"]["user_id"]) - set(parts["train"]["user_id"])
        if without_train:
            raise SplitError(f"{protocol}: {len(without_train)} test users have no training item")


def write_protocol(frame: pd.DataFrame, protocol: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Split `frame` [user_id, item_id, timestamp] with `protocol`, verify, write the files; returns the folder."""
    if protocol not in SPLITTERS:
        raise SplitError(f"unknown protocol {protocol!r}", hint=f"choose one of {', '.join(PROTOCOLS)}")
    parts, cold_items = SPLITTERS[protocol](frame, seed)
    # Users with no training positive cannot be represented by any system: drop and count them.
    train_users = set(parts["train"]["user_id"])
    dropped = {n: int((~p["user_id"].isin(train_users)).sum()) for n, p in parts.items() if n != "train"}
    parts = {n: p[p["user_id"].isin(train_users)] for n, p in parts.items()}
    verify_split(parts, cold_items, protocol)
    folder = Path(out_dir) / protocol
    for name, part in parts.items():
        with atomic_path(folder / f"{name}.csv") as tmp:
            part[["user_id", "item_id", "timestamp"]].to_csv(tmp, index=False)
    meta = {
        "protocol": protocol,
        "seed": seed,
        "items": sorted(frame["item_id"].unique()),
        "users": sorted(frame["user_id"].unique()),
        "cold_items": cold_items,
        "counts": {name: len(part) for name, part in parts.items()},
        "dropped_rows_user_without_train": dropped,
    }
    atomic_write_json(folder / "meta.json", meta)
    return folder


@dataclass
class Split:
    """A protocol's split files loaded onto one shared index: rows = users, columns = catalogue items."""

    protocol: str
    users: list[str]
    items: list[str]
    frames: dict[str, pd.DataFrame]
    matrices: dict[str, sp.csr_matrix]  # "train"/"val"/"test": [n_users, n_items] binary
    cold_items: np.ndarray | None  # catalogue indices ranked among themselves (coldstart only)
    folder: Path | None = None  # where the split files are (mmrec trains on them directly)
    seed: int = 0

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)


def load_split(folder: str | Path) -> Split:
    """Read {train,val,test}.csv + meta.json written by `write_protocol`."""
    folder = Path(folder)
    if not (folder / "meta.json").is_file():
        raise SplitError(f"no split files in {folder}", hint="run bench/run_peers.py for this protocol and seed first: "
                         "it writes them")
    meta = json.loads((folder / "meta.json").read_text())
    users, items = meta["users"], meta["items"]
    user_index = {u: i for i, u in enumerate(users)}
    item_index = {it: i for i, it in enumerate(items)}
    frames, matrices = {}, {}
    for name in PARTS:
        part = pd.read_csv(folder / f"{name}.csv", dtype={"user_id": str, "item_id": str})
        frames[name] = part
        rows = part["user_id"].map(user_index).to_numpy()
        cols = part["item_id"].map(item_index).to_numpy()
        matrices[name] = interaction_matrix(rows, cols, len(users), len(items))
    cold = np.array([item_index[i] for i in meta["cold_items"]], dtype=np.int64) if meta["cold_items"] else None
    return Split(meta["protocol"], users, items, frames, matrices, cold, folder.resolve(), int(meta.get("seed", 0)))
