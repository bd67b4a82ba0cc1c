"""One JSON file per finished (protocol, text variant, seed, system) result, so a run can resume.

Each file is written atomically as soon as its system finishes; a rerun skips the keys whose file
exists and was made on the same split files (sha256 recorded; unless asked to redo them), and the tables are
rebuilt from every file present whose split files are these (or cannot be checked: no split folder here).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.peers.tuning import SystemResult
from mmrec.errors import DataError
from mmrec.fileio import atomic_write_json

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class RunKey:
    protocol: str
    variant: str
    seed: int
    system: str

    def path(self, runs_dir: Path) -> Path:
        """runs_dir/{variant}/seed{k}/{protocol}/{system}.json, every part path-safe."""
        parts = [_UNSAFE.sub("_", p).strip(".") or "_" for p in (self.variant, self.protocol, self.system)]
        return Path(runs_dir) / parts[0] / f"seed{int(self.seed)}" / parts[1] / f"{parts[2]}.json"


@dataclass
class StoredRun:
    key: RunKey
    context: dict[str, Any]  # dataset, split and machine description of the run
    result: SystemResult


def stored_digest(runs_dir: Path, key: RunKey) -> str | None:
    """The split digest (context["split_sha256"]) `key`'s stored result was made on; None without a readable one."""
    try:
        return json.loads(key.path(runs_dir).read_text())["context"].get("split_sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def is_done(runs_dir: Path, key: RunKey, digest: str | None = None) -> bool:
    """Whether `key` has a stored result, made on split files with sha256 `digest` when one is given: a result of
    other files (another dataset in a folder of the same name, another split) is no result of these."""
    if not key.path(runs_dir).is_file():
        return False
    return digest is None or stored_digest(runs_dir, key) == digest


def save_run(runs_dir: Path, key: RunKey, result: SystemResult, context: dict[str, Any]) -> Path:
    path = key.path(runs_dir)
    atomic_write_json(path, {"key": asdict(key), "context": context, "result": result.to_json()})
    return path


def split_digest(folder: Path, content: str | None = None) -> str:
    """sha256 over a protocol folder's train/val/test.csv: equal digests, the same split files; with `content`
    (an input folder's item content digest, `Dataset.content`), also the same items as the systems read them."""
    digest = hashlib.sha256()
    for name in ("train", "val", "test"):
        digest.update(name.encode())
        digest.update((Path(folder) / f"{name}.csv").read_bytes())
    if content is not None:
        digest.update(b"content" + content.encode())
    return digest.hexdigest()


def reusable_run(runs_dir: Path, key: RunKey, variants: tuple[str, ...], digest: str) -> StoredRun | None:
    """A stored result of `key`'s system, protocol and seed under another text variant whose split files had
    sha256 `digest` (recorded as context["split_sha256"]), or None. Only for systems that read no item text:
    their result on the same split files is the same under every variant."""
    for variant in variants:
        other = RunKey(key.protocol, variant, key.seed, key.system)
        if variant == key.variant or not is_done(runs_dir, other, digest):
            continue
        payload = json.loads(other.path(runs_dir).read_text())
        if "reused_from" not in payload["context"]:
            return StoredRun(other, payload["context"], SystemResult(**payload["result"]))
    return None


def load_runs(runs_dir: Path) -> list[StoredRun]:
    """Every stored result under `runs_dir`, sorted by key; DataError names a file that cannot be read."""
    runs = []
    for path in sorted(Path(runs_dir).glob("*/seed*/*/*.json")):
        try:
            payload = json.loads(path.read_text())
            runs.append(StoredRun(RunKey(**payload["key"]), payload["context"], SystemResult(**payload["result"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"cannot read benchmark result {path}: {exc}",
                            hint="delete that file; the next run recomputes it") from None
    return sorted(runs, key=lambda r: (r.key.protocol, r.key.variant, r.key.seed, r.key.system))
