"""FeatureStore: one diskcache per backbone combo (`cache_dir/{combo}/`), values in the format of
store_format, a byte-bounded LRU in front.

This is the only module that knows how diskcache lays out its files and its SQL table: bulk reads
go straight to that table (one SELECT per chunk of keys instead of one get() per key, ~10x faster
for 100k keys). The layout is checked when a store opens, and diskcache's major version is pinned.

A combo folder that is a symbolic link is refused without being opened: a cache never reads or
deletes anything outside cache_dir.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import diskcache
import numpy as np

from mmrec.combo import COMBO_NAME, check_combo_name
from mmrec.errors import FeatureError
from mmrec.features.pack import FeaturePack
from mmrec.features.store_format import HEADER_SIZE, decode_value, key_prefix, value_header
from mmrec.fileio import atomic_write_json, read_json
from mmrec.settings import CacheSettings

if TYPE_CHECKING:  # torch is imported where tensors are made: listing a store does not load it
    import torch

# SQLite >= 3.32 allows 32766 bound variables per statement; older builds 999.
_IN_CHUNK = 30_000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 900
DB_FILE = diskcache.core.DBNAME  # "cache.db": its presence marks a combo folder
META_FILE = "meta.json"
STATS_FILE = "stats.json"
# Fewer diskcache rows than this are cheap to read; a pack is (re)written only above it.
PACK_MIN_ROWS = 1000


def combo_folder(root: Path, combo: str) -> Path:
    """`root/combo`, refused (FeatureError, nothing opened) when the name is unsafe or it is a link."""
    folder = Path(root) / check_combo_name(combo, FeatureError)
    for path in (folder, folder / DB_FILE):
        if path.is_symlink():
            raise FeatureError(
                f"Feature cache {folder} is refused: {path} is a symbolic link (to {path.readlink()}); "
                "a cache is never read or deleted outside the cache dir.",
                hint="Remove the link, or point paths.cache_dir at the real folder.",
            )
    return folder


def find_combo_folders(root: Path) -> tuple[list[Path], list[str]]:
    """(combo folders holding a store, names of combo entries refused as symbolic links)."""
    if not Path(root).is_dir():
        return [], []
    stores, links = [], []
    for path in sorted(Path(root).iterdir()):
        if not COMBO_NAME.match(path.name):
            continue
        if path.is_symlink() or (path / DB_FILE).is_symlink():
            if path.is_dir():
                links.append(path.name)
        elif path.is_dir() and (path / DB_FILE).is_file():
            stores.append(path)
    return stores, links


def existing_combo_folder(root: Path, combo: str) -> Path:
    """The folder of an existing combo store, or a FeatureError naming the ones that exist."""
    folder = combo_folder(root, combo)
    if not (folder / DB_FILE).is_file():
        known = ", ".join(path.name for path in find_combo_folders(root)[0]) or "none yet"
        raise FeatureError(
            f"No feature cache named {combo!r} in {root}.",
            hint=f"Existing combos: {known}. Fill one with `mmrec cache precompute`.",
        )
    return folder


def remove_combo_folder(root: Path, combo: str) -> None:
    """Delete one combo store (refused for links; links inside it are removed, never followed)."""
    shutil.rmtree(existing_combo_folder(root, combo))


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files below `folder` (links are not followed)."""
    return sum(p.lstat().st_size for p in Path(folder).rglob("*") if not p.is_symlink() and p.is_file())


class ByteLRU:
    """key -> bytes, evicting least-recently-used entries beyond `capacity` bytes in total."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.capacity:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._entries[key] = value
        self.size += len(value)
        while self.size > self.capacity:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)


def damaged_store_error(folder: Path, combo: str, problem: Exception) -> FeatureError:
    """A combo store whose files cannot be read (a truncated cache.db or meta.json): what to do about it."""
    return FeatureError(
        f"The feature cache {folder} is damaged and cannot be read ({type(problem).__name__}: {problem}).",
        hint=f"Remove it with `mmrec cache clear {combo} -y`; the next precompute (or train) computes its vectors "
             "again. Other combos are not affected.")


class FeatureStore:
    """The feature cache of one combo (`root/combo/`): safe to share between processes.

    A store this `with` block created is removed again when the block fails before anything was stored
    (e.g. the backbone's weights are refused): a failed request leaves no empty combo behind.
    """

    def __init__(self, root: Path, combo: str, cache: CacheSettings) -> None:
        self.combo = combo
        self.folder = combo_folder(root, combo)
        self.settings = cache
        self.created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        # eviction_policy='none': features are never silently dropped; the size limit is enforced
        # by put_many with a clear error instead.
        try:
            # Every value stays inside cache.db as raw bytes (no file beside it): the only kind of entry read back.
            self.disk = diskcache.Cache(str(self.folder), eviction_policy="none", size_limit=cache.size_limit_bytes,
                                        disk_min_file_size=2**31 - 1)
        except sqlite3.OperationalError as exc:  # e.g. "attempt to write a readonly database"
            raise FeatureError(
                f"Cannot open the feature cache {self.folder} ({exc}): the store (SQLite, via diskcache) writes its "
                "settings and statistics on opening, so its folder must be writable by this user, even to read, "
                "and have room (a full disk or a file size limit stops it too).",
                hint="Give this user write access to paths.cache_dir (or point it at a writable copy: "
                     "MMREC_PATHS__CACHE_DIR=...), free disk space, or lift the limit.") from None
        except sqlite3.DatabaseError as exc:  # "database disk image is malformed": a truncated or damaged file
            raise damaged_store_error(self.folder, combo, exc) from None
        self._check_layout()
        self.lru = ByteLRU(cache.memory_lru_bytes)
        self.counters = {"hits": 0, "misses": 0, "copied": 0, "computed": 0, "failed": 0}

    def _check_layout(self) -> None:
        columns = {row[1] for row in self.disk._sql("PRAGMA table_info(Cache)")}
        if not {"key", "raw", "value", "mode", "filename"} <= columns:
            self.disk.close()
            raise FeatureError(
                f"The diskcache at {self.folder} has an unexpected table layout (columns {sorted(columns)}).",
                hint="Install a diskcache 5.x release (pyproject pins diskcache>=5.6,<6).",
            )
        # mmrec writes string keys and raw byte values only. Any other entry (a pickled value or key, a value in a
        # file) was put there by something else, and diskcache would unpickle it or open the file it names: a cache
        # folder copied from elsewhere could run code or touch files outside it. Such a store is never read.
        foreign = self.disk._sql("SELECT count(*) FROM Cache WHERE raw != 1 OR mode != ? OR filename IS NOT NULL",
                                 (diskcache.core.MODE_RAW,)).fetchone()[0]
        if foreign:
            self.disk.close()
            raise FeatureError(
                f"The feature cache {self.folder} holds {foreign:,} entr{'y' if foreign == 1 else 'ies'} mmrec never "
                "writes (a pickled key or value, or a value kept in a file): mmrec stores raw float16 vectors only, "
                "so something else altered this cache. It is not read, as reading such an entry could run code.",
                hint=f"Remove it with `mmrec cache clear {self.combo} -y` (the next precompute computes its vectors "
                     "again), or restore the folder from a copy you trust.")

    def close(self) -> None:
        self.disk.close()

    def __len__(self) -> int:
        return len(self.disk)

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        unused = (exc_type is not None and self.created and len(self.disk) == 0
                  and not (self.folder / META_FILE).exists())
        self.close()
        if unused:
            shutil.rmtree(self.folder, ignore_errors=True)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Raw values of `keys` (None = absent), LRU first, the rest in chunked SQL reads."""
        values: list[bytes | None] = [None] * len(keys)
        to_read: dict[str, list[int]] = {}
        lookup = self.lru.get if len(self.lru) else (lambda key: None)  # skip lookups in an empty LRU
        for position, key in enumerate(keys):
            value = lookup(key)
            if value is None:
                to_read.setdefault(key, []).append(position)
            else:
                values[position] = value
        if to_read:
            for key, value in self._read_disk(list(to_read)).items():
                self.lru.put(key, value)
                for position in to_read[key]:
                    values[position] = value
        found = sum(value is not None for value in values)
        self.counters["hits"] += found
        self.counters["misses"] += len(keys) - found
        return values

    def _read_disk(self, keys: list[str]) -> dict[str, bytes]:
        # One SELECT per chunk instead of one diskcache.get per key: ~10x faster for 100k keys. Every value is
        # raw bytes in the table (checked on opening), so nothing is unpickled or read from a file.
        found: dict[str, bytes] = {}
        sql = self.disk._sql
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start:start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = sql(f"SELECT key, value FROM Cache WHERE raw = 1 AND key IN ({marks})", chunk).fetchall()
            found.update((key, value) for key, value in rows if isinstance(value, bytes))
        return found

    def existing_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of `keys` are stored on disk (no values read)."""
        present: set[str] = set()
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start:start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.disk._sql(f"SELECT key FROM Cache WHERE raw = 1 AND key IN ({marks})", chunk)
            present.update(key for (key,) in rows)
        return present

    def scan(self) -> Iterator[tuple[str, bool]]:
        """(key, is a "could not read" marker) of every stored entry, values unread."""
        # Bytes 5-8 of a value hold its dim; 0 marks a failure (see store_format).
        rows = self.disk._sql("SELECT key, substr(value, 5, 4) = x'00000000' FROM Cache WHERE raw = 1")
        for key, failure in rows:
            yield key, bool(failure)

    def put_many(self, entries: Sequence[tuple[str, bytes]]) -> None:
        """Write encoded values in one transaction (all or nothing if the process dies)."""
        if not entries:
            return
        if self.disk.volume() > self.settings.size_limit_bytes:
            raise FeatureError(
                f"Feature cache {self.folder} is over its size limit ({self.settings.size_limit_bytes:,} bytes).",
                hint="Raise cache.size_limit_bytes or run `mmrec cache clear` for unused combos.",
            )
        try:
            with self.disk.transact(retry=True):
                for key, value in entries:
                    self.disk.set(key, value, retry=True)
        except sqlite3.OperationalError as exc:  # SQLite's word for a full disk or a file size limit
            raise FeatureError(
                f"Could not write to the feature cache {self.folder} ({exc}): the disk is full, the folder is not "
                "writable, or a file size limit (ulimit -f) was reached. This batch was not stored (SQLite rolled "
                "it back); what was stored before is intact.",
                hint="Free disk space or lift the limit, then run the command again: it computes only what is "
                     "missing.") from None
        for key, value in entries:
            self.lru.put(key, value)

    def delete_prefix(self, prefix: str, keep: str | None = None) -> int:
        """Delete every entry whose key starts with `prefix` but not with `keep`, and the packs of
        those vectors; returns how many entries went (e.g. the vectors of a replaced import)."""
        rows = self.disk._sql("SELECT key FROM Cache WHERE raw = 1 AND substr(key, 1, ?) = ?", (len(prefix), prefix))
        return self.delete_keys([key for (key,) in rows if keep is None or not key.startswith(keep)])

    def delete_keys(self, doomed: Sequence[str]) -> int:
        """Delete these entries and the packs that hold any of them (the next materialize writes a pack again);
        returns how many entries went."""
        for start in range(0, len(doomed), _IN_CHUNK):
            with self.disk.transact(retry=True):
                for key in doomed[start:start + _IN_CHUNK]:
                    self.disk.delete(key, retry=True)
        for old_prefix in {key_prefix(key) for key in doomed}:
            FeaturePack(self.folder, old_prefix).remove()
        self.lru = ByteLRU(self.settings.memory_lru_bytes)
        return len(doomed)

    def materialize(
        self, keys: Sequence[str | None], device: torch.device | str = "cpu", dim: int | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor, list[int], int | None]:
        """Keys (None = item lacks the modality) -> ([n, dim] float32 on device, [n] bool mask,
        positions whose key is absent, dim). Dim comes from the stored vectors when not given;
        the tensor is None when no dim is known (nothing stored, none given).

        Keys found in the dense pack are read from it in one fancy-index; the rest come from the
        diskcache, and when those are many the pack is rewritten so the next call is fast.
        """
        import torch

        n = len(keys)
        wanted = np.fromiter((p for p, key in enumerate(keys) if key is not None), dtype=np.int64)
        mask = np.zeros(n, dtype=bool)
        out16: np.ndarray | None = None
        pack = FeaturePack(self.folder, key_prefix(keys[wanted[0]])) if len(wanted) else None
        loaded = pack.load() if pack is not None else None
        remaining = wanted
        if loaded is not None and (dim is None or loaded[1].shape[1] == dim):
            index, matrix = loaded
            rows = np.fromiter((index.get(keys[p], -1) for p in wanted), dtype=np.int64, count=len(wanted))
            covered = rows >= 0
            if covered.any():
                dim = matrix.shape[1]
                out16 = np.zeros((n, dim), dtype=np.float16)
                out16[wanted[covered]] = matrix[rows[covered]]
                mask[wanted[covered]] = True
                self.counters["hits"] += int(covered.sum())
            remaining = wanted[~covered]

        values = self.get_many([keys[p] for p in remaining]) if len(remaining) else []
        missing = [int(p) for p, value in zip(remaining, values) if value is None]
        present = [(int(p), value) for p, value in zip(remaining, values) if value is not None]
        for _, value in present:
            stored_dim = decode_value(value)[0]
            if stored_dim:
                dim = dim or stored_dim
                break
        if dim is None:
            return None, torch.from_numpy(mask).to(device), missing, None
        row_bytes = HEADER_SIZE + 2 * dim
        good = [(position, value) for position, value in present if len(value) == row_bytes]
        for _, value in present:
            if len(value) != row_bytes:
                decoded_dim = decode_value(value)[0]  # raises on corrupt entries
                if decoded_dim:
                    raise FeatureError(
                        f"Feature cache {self.folder} mixes {dim}-d and {decoded_dim}-d vectors for one backbone.",
                        hint=f"Run `mmrec cache clear {self.combo}` and precompute again.",
                    )
        if out16 is None:
            out16 = np.zeros((n, dim), dtype=np.float16)
        if good:
            raw = np.frombuffer(b"".join(value for _, value in good), np.uint8).reshape(len(good), row_bytes)
            expected = np.frombuffer(value_header(dim), np.uint8)
            if not (raw[:, :HEADER_SIZE] == expected).all():
                raise FeatureError(f"Corrupt entries in feature cache {self.folder}.",
                                   hint=f"Run `mmrec cache clear {self.combo}` and precompute again.")
            positions = np.fromiter((position for position, _ in good), dtype=np.int64, count=len(good))
            out16[positions] = raw[:, HEADER_SIZE:].view(np.float16)
            mask[positions] = True
            if pack is not None and len(good) >= max(PACK_MIN_ROWS, len(wanted) // 10):
                vectors = np.flatnonzero(mask)
                pack.write([keys[p] for p in vectors], out16[vectors])
        # Move float16 (half the bytes) and widen on the device.
        tensor = torch.from_numpy(out16).to(device).float()
        return tensor, torch.from_numpy(mask).to(device), missing, dim

    # --- small JSON sidecars (atomic writes; last writer wins under concurrency) ---

    def read_meta(self) -> dict:
        path = self.folder / META_FILE
        try:
            return read_json(path) if path.is_file() else {}
        except (ValueError, UnicodeDecodeError) as exc:  # a truncated or hand-edited meta.json
            raise damaged_store_error(self.folder, self.combo, exc) from None

    def write_meta(self, modality: str, backbone: str, dim: int, weights_id: str, **details: object) -> None:
        """Record the vectors of `modality`: backbone, dim, weights id and any `details` (e.g. what an
        import read); details recorded earlier for the same vectors are kept. `updated_at` moves only when this run
        stored vectors or the record changed: a run that only loaded them (evaluate, recommend) leaves it."""
        meta = self.read_meta()
        entry = {"backbone": backbone, "dim": dim, "weights_id": weights_id}
        previous = meta.get(modality, {})
        if all(previous.get(name) == value for name, value in entry.items()):
            entry = {**previous, **entry}
        stored = any(self.counters[name] for name in ("computed", "copied", "failed"))
        if not stored and meta.get(modality) == {**entry, **details} and meta.get("combo") == self.combo:
            return
        meta.update(combo=self.combo, updated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        meta[modality] = {**entry, **details}
        atomic_write_json(self.folder / META_FILE, meta)

    def save_stats(self, extra: dict | None = None) -> None:
        """Persist this run's hit/miss counters (read by `mmrec cache stats`)."""
        stats = dict(self.counters, at=datetime.now(timezone.utc).isoformat(timespec="seconds"), **(extra or {}))
        atomic_write_json(self.folder / STATS_FILE, {"last_run": stats})

    def read_stats(self) -> dict:
        path = self.folder / STATS_FILE
        return read_json(path).get("last_run", {}) if path.is_file() else {}
