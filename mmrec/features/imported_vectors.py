"""Imported vectors in the feature store: `import_item_vectors` puts a checked VectorFile into a combo.

Keys of imported vectors are `modality|imported|imported:<digest>|item_id|imported:<digest>`: the
digest (sha256 over the file, its row ids and the chosen column) stands for both the weights and the
content, because the file alone decides each vector. The combo's meta.json records that identity;
plan_item_keys reads it back, so training uses exactly the last import. A new file writes under a
new identity, switches meta.json (one atomic write), then deletes the previous vectors: a crash at
any point leaves the store serving either the old import or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mmrec.data.ids import mangled_ids_notes
from mmrec.errors import FeatureError
from mmrec.features.feature_store import FeatureStore
from mmrec.features.store_format import IMPORTED, make_key, value_header
from mmrec.features.vector_file import VectorFile, examples
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress

CHUNK_ROWS = 20_000  # rows per read and per store transaction
FLOAT16_MAX = float(np.finfo(np.float16).max)  # the store keeps float16: larger values would become inf


def imported_record(meta: dict, modality: str) -> dict | None:
    """What the last import into a combo recorded for `modality` (None when nothing was imported)."""
    record = meta.get(modality)
    return record if isinstance(record, dict) and record.get("backbone") == IMPORTED else None


def import_identity(vectors: VectorFile) -> str:
    """"imported:<16 hex>" of the file's bytes, its row ids and its vector column."""
    combined = hashlib.sha256(vectors.digest.encode())
    combined.update(b"\0" + "\n".join(vectors.ids).encode("utf-8") + b"\0" + (vectors.column or "").encode())
    return f"{IMPORTED}:{combined.hexdigest()[:16]}"


def imported_key(modality: str, identity: str, item_id: str) -> str:
    return make_key(modality, IMPORTED, identity, item_id, identity)


@dataclass
class ImportReport:
    """What `mmrec cache import` did to one modality of one combo."""

    combo: str
    modality: str
    path: Path
    identity: str
    rows: int
    dim: int
    catalogue_items: int
    written: int = 0
    unchanged: bool = False  # the same file was imported before: nothing written
    replaced: str | None = None  # identity of the import these vectors replace
    replaced_dim: int | None = None  # its dimension, when it differs from these vectors'
    removed: int = 0  # vectors of earlier imports deleted
    unknown_ids: list[str] = field(default_factory=list)  # rows whose id is not in the catalogue (skipped)
    missing_items: list[str] = field(default_factory=list)  # catalogue items without a row (no vector)
    notes: list[str] = field(default_factory=list)  # e.g. unknown ids that lost their leading zeros
    seconds: float = 0.0


def _check_values(vectors: VectorFile, progress: ProgressCallback) -> None:
    """Refuse rows with NaN/inf, or with values float16 cannot hold, naming how many and which."""
    not_finite: list[str] = []
    too_large: list[str] = []
    for start, block in vectors.chunks(CHUNK_ROWS):
        finite = np.isfinite(block).all(axis=1)
        not_finite += [vectors.ids[start + row] for row in np.flatnonzero(~finite)]
        big = finite & (np.abs(np.where(np.isfinite(block), block, 0)).max(axis=1) > FLOAT16_MAX)
        too_large += [vectors.ids[start + row] for row in np.flatnonzero(big)]
        progress(ProgressEvent("import:check", start + len(block), vectors.rows, "Checking vectors"))
    progress(ProgressEvent("import:check", vectors.rows, vectors.rows, done=True))
    if not_finite:
        raise FeatureError(f"{vectors.path}: {len(not_finite):,} row(s) contain NaN or infinite values "
                           f"(items {examples(not_finite)}).",
                           hint="Fix or drop those rows; nothing was imported.")
    if too_large:
        raise FeatureError(f"{vectors.path}: {len(too_large):,} row(s) hold values beyond {FLOAT16_MAX:.0f}, which "
                           f"the float16 store cannot keep (items {examples(too_large)}).",
                           hint="Scale or normalise the vectors; nothing was imported.")


def import_item_vectors(
    store: FeatureStore,
    modality: str,
    vectors: VectorFile,
    catalogue_ids: list[str],
    progress: ProgressCallback = null_progress,
) -> ImportReport:
    """Put the rows of `vectors` whose ids are catalogue items into `store` under the file's identity.

    Rows of unknown ids are skipped and catalogue items without a row listed; a file with the
    identity already recorded is a no-op. Another file replaces the recorded import, whatever its dimension:
    the new vectors are written under their own identity, the store's record switches to them, then the
    old ones are deleted (a crash before the switch serves the old import whole, after it the new one).
    """
    started = time.perf_counter()
    known = set(catalogue_ids)
    report = ImportReport(store.combo, modality, vectors.path, import_identity(vectors), vectors.rows, vectors.dim,
                          len(catalogue_ids))
    report.unknown_ids = [item for item in vectors.ids if item not in known]
    report.notes.extend(mangled_ids_notes(report.unknown_ids, catalogue_ids, str(vectors.path)))
    in_file = set(vectors.ids)
    report.missing_items = [item for item in catalogue_ids if item not in in_file]
    if len(report.unknown_ids) == vectors.rows:
        raise FeatureError(f"None of the {vectors.rows:,} item ids of {vectors.path} is in the catalogue "
                           f"(e.g. {examples(report.unknown_ids)}).",
                           hint=report.notes[0] if report.notes else
                           "Check the id list (--ids) matches the item_id column of the processed items.")
    previous = imported_record(store.read_meta(), modality)
    wanted = [row for row, item in enumerate(vectors.ids) if item in known]
    keys = [imported_key(modality, report.identity, vectors.ids[row]) for row in wanted]
    if previous is not None and previous.get("weights_id") == report.identity:
        if len(store.existing_keys(keys)) == len(keys):
            report.unchanged = True
            report.seconds = time.perf_counter() - started
            return report
    _check_values(vectors, progress)
    header = np.frombuffer(value_header(vectors.dim), np.uint8)
    for start, block in vectors.chunks(CHUNK_ROWS):
        rows = [row - start for row in range(start, start + len(block)) if vectors.ids[row] in known]
        if not rows:
            continue
        values = np.empty((len(rows), len(header) + 2 * vectors.dim), np.uint8)
        values[:, :len(header)] = header
        values[:, len(header):] = block[rows].astype(np.float16).view(np.uint8)
        store.put_many([(imported_key(modality, report.identity, vectors.ids[start + row]), value.tobytes())
                        for row, value in zip(rows, values)])
        report.written += len(rows)
        progress(ProgressEvent("import:write", report.written, len(wanted), f"Importing {modality} vectors"))
    progress(ProgressEvent("import:write", len(wanted), len(wanted), done=True))
    # The switch: from here on the store serves the new vectors.
    store.write_meta(modality, IMPORTED, vectors.dim, report.identity, file=str(vectors.path),
                     file_sha256=vectors.digest, column=vectors.column, rows=vectors.rows, items=len(wanted),
                     imported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if previous is not None and previous.get("weights_id") != report.identity:
        report.replaced = previous.get("weights_id")
        if previous.get("dim") != vectors.dim:
            report.replaced_dim = previous.get("dim")
    report.removed = store.delete_prefix(f"{modality}|{IMPORTED}|", keep=f"{modality}|{IMPORTED}|{report.identity}|")
    report.seconds = time.perf_counter() - started
    return report
