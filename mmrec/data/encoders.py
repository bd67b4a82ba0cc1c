"""Id encoders: string ids <-> indices (0 = unknown/padding), fitted on the train split, stored as JSON."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.data.ids import positions, string_array
from mmrec.errors import CheckpointError
from mmrec.fileio import atomic_write_json, read_json

ENCODERS_SUBDIR = "encoders"
USER_FILE = "user_encoder.json"
ITEM_FILE = "item_encoder.json"
_FORMAT = "mmrec.IdEncoder/1"


class IdEncoder:
    """Known ids map to 1..n in sorted order (deterministic); anything else encodes to 0."""

    def __init__(self, ids: Sequence[str], kind: str = "id") -> None:
        self._ids = list(ids)
        self.kind = kind
        self._index = {value: k + 1 for k, value in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("IdEncoder ids must be unique")
        self.unknown_seen = 0  # running count of unknown ids passed to encode()
        self._vocabulary: object | None = None  # self._ids as a pyarrow array, built on first encode()

    @classmethod
    def fit(cls, ids: Iterable[str], kind: str = "id") -> IdEncoder:
        return cls(sorted({str(value) for value in ids}), kind)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids) + 1  # + the unknown/padding index 0

    def __contains__(self, value: object) -> bool:
        return value in self._index

    def encode(self, ids: Sequence[str]) -> np.ndarray:
        """Indices, int64 [len(ids)]; unknown ids become 0 and are counted in `unknown_seen`."""
        if self._vocabulary is None:
            self._vocabulary = string_array(self._ids)
        out = positions(ids, self._vocabulary) + 1  # absent (-1) -> 0
        self.unknown_seen += int((out == 0).sum())
        return out

    def count_unknown(self, ids: Iterable[str]) -> int:
        """How many of `ids` this encoder does not know (without changing `unknown_seen`)."""
        return sum(str(value) not in self._index for value in ids)

    def decode(self, indices: Iterable[int]) -> list[str | None]:
        """Ids for `indices`; 0 or out-of-range -> None."""
        n = len(self._ids)
        return [self._ids[int(k) - 1] if 0 < int(k) <= n else None for k in indices]

    @property
    def fingerprint(self) -> str:
        """sha256 of the ordered ids: equal fingerprints mean identical index assignments."""
        return hashlib.sha256(json.dumps(self._ids).encode("utf-8")).hexdigest()

    def to_dict(self) -> dict:
        return {
            "format": _FORMAT,
            "kind": self.kind,
            "size": len(self),
            "fingerprint": self.fingerprint,
            "ids": self._ids,
        }

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> IdEncoder:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"Id encoder {path} not found.", hint="Run `mmrec encoders extract` first.")
        try:
            state = read_json(path)
            encoder = cls([str(v) for v in state["ids"]], state.get("kind", "id"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"Id encoder {path} is unreadable: {exc}", hint="Re-run `mmrec encoders extract`."
            ) from None
        if state.get("fingerprint") not in (None, encoder.fingerprint):
            raise CheckpointError(
                f"Id encoder {path} does not match its recorded fingerprint (edited or damaged).",
                hint="Re-run `mmrec encoders extract`.",
            )
        return encoder


def fit_encoders(train: pd.DataFrame) -> tuple[IdEncoder, IdEncoder]:
    """(user encoder, item encoder) fitted on the TRAIN interactions only."""
    return IdEncoder.fit(train["user_id"].astype(str), "user"), IdEncoder.fit(
        train["item_id"].astype(str), "item"
    )


def encoder_paths(checkpoint_dir: Path) -> tuple[Path, Path]:
    folder = Path(checkpoint_dir) / ENCODERS_SUBDIR
    return folder / USER_FILE, folder / ITEM_FILE


def save_encoders(checkpoint_dir: Path, users: IdEncoder, items: IdEncoder) -> tuple[Path, Path]:
    user_path, item_path = encoder_paths(checkpoint_dir)
    users.save(user_path)
    items.save(item_path)
    return user_path, item_path


def load_encoders(checkpoint_dir: Path) -> tuple[IdEncoder, IdEncoder]:
    """(users, items) from {checkpoint_dir}/encoders; CheckpointError hinting `mmrec encoders extract`."""
    user_path, item_path = encoder_paths(checkpoint_dir)
    return IdEncoder.load(user_path), IdEncoder.load(item_path)
