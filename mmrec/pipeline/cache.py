"""`mmrec cache ...`: precompute the feature store, list/inspect/clear combo caches."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mmrec.errors import ConfigError, FeatureError
from mmrec.features.feature_store import (
    FeatureStore,
    existing_combo_folder,
    find_combo_folders,
    folder_bytes,
    remove_combo_folder,
)
from mmrec.features.file_digests import FileDigests
from mmrec.features.fingerprint import item_image_fingerprints, item_text_fingerprints, item_texts
from mmrec.features.imported_vectors import ImportReport, import_item_vectors, imported_record
from mmrec.features.store_format import IMPORTED, split_key
from mmrec.features.vector_file import read_vector_file
from mmrec.fileio import ProcessLock
from mmrec.progress import ProgressCallback, null_progress
from mmrec.settings import CacheSettings, Settings

if TYPE_CHECKING:  # torch is loaded by what computes features, not by listing or clearing stores
    from mmrec.features.item_features import PrecomputeReport

TEST_ITEMS = 100
MODALITIES = ("vision", "text")


@dataclass
class PrecomputeResult:
    """Outcome of `mmrec cache precompute`."""

    report: PrecomputeReport
    cache_folder: Path
    rank: int = 0
    world_size: int = 1


_COUNTS = ("with_content", "already_cached", "computed", "failed", "not_imported")


def _merge_reports(report: PrecomputeReport, n_items: int, device) -> PrecomputeReport:
    """Every rank's counts summed (the slowest rank's seconds), for rank 0 to report the whole job.
    Failure examples stay those of the reporting rank; their count is the job's."""
    import torch
    import torch.distributed as dist

    from mmrec.features.item_features import PrecomputeReport

    modalities = list(report.with_content)  # the modalities precomputed (the model's)
    values = [float(getattr(report, name)[m]) for name in _COUNTS for m in modalities]
    totals = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    seconds = torch.tensor([report.seconds], dtype=torch.float64, device=device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
    merged = PrecomputeReport(report.combo, n_items, failures=report.failures, seconds=float(seconds.item()),
                              imported=report.imported)
    for index, (name, modality) in enumerate((n, m) for n in _COUNTS for m in modalities):
        getattr(merged, name)[modality] = int(totals[index].item())
    return merged


def run_cache_precompute(
    settings: Settings,
    test: bool = False,
    force: bool = False,
    max_items: int | None = None,
    progress: ProgressCallback = null_progress,
) -> PrecomputeResult:
    """Fill the configured combo's store for the processed catalogue (`test`: first 100 items)."""
    from mmrec.data.tables import load_items
    from mmrec.device import resolve_device
    from mmrec.features.item_features import precompute_item_features
    from mmrec.training.distributed import barrier, context_from_env, init_distributed

    items = load_items(settings.paths.processed_dir)
    if test:
        items = items.head(TEST_ITEMS)
    if max_items is not None:
        if max_items < 1:
            raise FeatureError(f"--max-items must be at least 1, got {max_items}.")
        items = items.head(max_items)
    # Under torchrun each rank joins the process group and computes rows rank::world_size into the
    # shared store (safe for concurrent writers); the counts are then summed for rank 0's report.
    import torch.distributed as dist

    ctx = context_from_env()
    # Ranks fill one store together on purpose; two separate runs would compute every vector twice.
    cache_dir, combo = Path(settings.paths.cache_dir), settings.features.combo
    lock = contextlib.nullcontext() if ctx.enabled else ProcessLock(
        cache_dir / f".{combo}.precompute.lock", f"Another run is filling the feature store {cache_dir / combo}",
        "Wait for it to end: this command then finds its vectors cached (or stop that run; its vectors are kept).")
    joined_here = ctx.enabled and not dist.is_initialized()
    device = init_distributed(ctx, resolve_device(settings.features.device))
    features = settings.features.model_copy(update={"device": str(device)}) if ctx.enabled else settings.features
    try:
        with lock:
            report = precompute_item_features(items.iloc[ctx.rank::ctx.world_size], features, settings.cache,
                                              settings.paths.cache_dir, force=force, progress=progress,
                                              modalities=settings.model.modalities)
        if ctx.enabled:
            report = _merge_reports(report, len(items), device)
            barrier(ctx)
    finally:
        if joined_here:  # a group left open aborts the process at exit
            dist.destroy_process_group()
    return PrecomputeResult(report, Path(settings.paths.cache_dir) / settings.features.combo, ctx.rank,
                            ctx.world_size)


@dataclass
class ImportResult:
    """Outcome of `mmrec cache import`."""

    report: ImportReport
    cache_folder: Path


def run_cache_import(
    settings: Settings,
    modality: str,
    path: Path,
    ids: str | None = None,
    column: str | None = None,
    progress: ProgressCallback = null_progress,
) -> ImportResult:
    """Import the vectors of `path` as the `modality` features of the configured combo, whose
    `features.<modality>_backbone` must be `imported`; rows are matched to the processed catalogue."""
    from mmrec.data.tables import load_items

    if modality not in MODALITIES:
        raise ConfigError(f"--modality must be vision or text, got {modality!r}.")
    backbone = getattr(settings.features, f"{modality}_backbone")
    if backbone != IMPORTED:
        raise ConfigError(
            f"features.{modality}_backbone is {backbone!r}: imported vectors would not be used by this config.",
            hint=f"Set features.{modality}_backbone: imported in the config (or MMREC_FEATURES__"
                 f"{modality.upper()}_BACKBONE=imported); train and recommend then read the imported vectors.",
        )
    catalogue_ids = load_items(settings.paths.processed_dir)["item_id"].astype(str).tolist()
    vectors = read_vector_file(Path(path), ids, catalogue_ids, column, settings.data.item_id_column)
    with FeatureStore(Path(settings.paths.cache_dir), settings.features.combo, settings.cache) as store:
        report = import_item_vectors(store, modality, vectors, catalogue_ids, progress)
    return ImportResult(report, Path(settings.paths.cache_dir) / settings.features.combo)


@dataclass
class CacheInfo:
    """One row of `mmrec cache list`."""

    combo: str
    vectors: dict[str, int]  # modality -> stored vectors
    dims: dict[str, int]
    size_bytes: int
    updated_at: str
    problem: str | None = None  # why the store cannot be read (damaged files); its counts are then empty


@dataclass
class CacheStats:
    """What `mmrec cache stats COMBO` shows."""

    combo: str
    folder: Path
    vectors: dict[str, int]
    failures: dict[str, int]  # stored "could not read" markers per modality
    dims: dict[str, int]
    backbones: dict[str, str]
    size_bytes: int
    last_run: dict
    catalogue_items: int | None = None
    coverage: dict[str, float] = field(default_factory=dict)  # share of items with content that are cached (NaN: none)
    missing_modality: dict[str, int] = field(default_factory=dict)  # items lacking the modality entirely
    uncached: dict[str, int] = field(default_factory=dict)  # items with content but no cached vector


def combo_names(cache_dir: Path) -> list[str]:
    """Existing combo caches (for completion and `clear --all`); symbolic links are not among them."""
    return [folder.name for folder in find_combo_folders(cache_dir)[0]]


def _scan(store: FeatureStore) -> tuple[dict[str, int], dict[str, int], dict[str, set[tuple[str, str]]]]:
    """Per modality: vector count, failure-marker count, and the (item_id, fingerprint) pairs stored."""
    vectors = dict.fromkeys(MODALITIES, 0)
    failures = dict.fromkeys(MODALITIES, 0)
    pairs: dict[str, set[tuple[str, str]]] = {m: set() for m in MODALITIES}
    for key, is_failure in store.scan():
        modality, _, _, item_id, fingerprint = split_key(key)
        if modality not in vectors:
            continue
        if not is_failure:
            vectors[modality] += 1
        else:
            failures[modality] += 1
        pairs[modality].add((item_id, fingerprint))
    return vectors, failures, pairs


@dataclass
class CacheListing:
    """What `mmrec cache list` shows: the combo caches, and the entries refused as symbolic links."""

    caches: list[CacheInfo]
    refused: list[str]


def list_caches(cache_dir: Path) -> CacheListing:
    """Every combo cache under `cache_dir` with counts, dims, size and last update (links refused, unopened)."""
    folders, links = find_combo_folders(cache_dir)
    infos = []
    for folder in folders:
        try:
            with FeatureStore(Path(cache_dir), folder.name, CacheSettings(memory_lru_bytes=0)) as store:
                meta = store.read_meta()
                vectors, _, _ = _scan(store)
        except FeatureError as error:  # one damaged store is listed as such; the others still are
            infos.append(CacheInfo(folder.name, {m: 0 for m in MODALITIES}, {}, folder_bytes(folder), "",
                                   problem=f"{error.message} {error.hint or ''}".strip()))
            continue
        infos.append(CacheInfo(
            combo=folder.name,
            vectors=vectors,
            dims={m: meta[m]["dim"] for m in MODALITIES if m in meta},
            size_bytes=folder_bytes(folder),  # the store is closed here, as in cache_stats
            updated_at=meta.get("updated_at", ""),
        ))
    return CacheListing(infos, links)


def cache_stats(cache_dir: Path, combo: str, items: pd.DataFrame | None = None) -> CacheStats:
    """Counts, dims, bytes, last run's hits/misses and, given the catalogue, its coverage."""
    folder = existing_combo_folder(cache_dir, combo)
    with FeatureStore(Path(cache_dir), combo, CacheSettings(memory_lru_bytes=0)) as store:
        meta = store.read_meta()
        vectors, failures, pairs = _scan(store)
        stats = CacheStats(
            combo=combo, folder=folder, vectors=vectors, failures=failures,
            dims={m: meta[m]["dim"] for m in MODALITIES if m in meta},
            backbones={m: meta[m]["backbone"] for m in MODALITIES if m in meta},
            size_bytes=0, last_run=store.read_stats(),
        )
    stats.size_bytes = folder_bytes(folder)  # once closed: the open database's write-ahead log is not the cache's
    if items is not None:
        stats.catalogue_items = len(items)
        ids = [str(i) for i in items["item_id"].tolist()]
        texts = item_texts(items)
        digests = FileDigests.in_folder(cache_dir)
        fingerprints = {}
        for modality in MODALITIES:  # imported vectors are keyed by the import, not by content
            record = imported_record(meta, modality)
            if record is not None:
                fingerprints[modality] = [record["weights_id"]] * len(ids)
            elif modality == "vision":
                fingerprints[modality] = item_image_fingerprints(items, digests)
            else:
                fingerprints[modality] = item_text_fingerprints(items, texts)
        digests.save()
        for modality in MODALITIES:
            with_content = [(i, fp) for i, fp in zip(ids, fingerprints[modality]) if fp is not None]
            cached = sum(pair in pairs[modality] for pair in with_content)
            stats.missing_modality[modality] = len(ids) - len(with_content)
            stats.uncached[modality] = len(with_content) - cached
            stats.coverage[modality] = cached / len(with_content) if with_content else float("nan")  # none to cache
    return stats


@dataclass
class ClearResult:
    """What `mmrec cache clear` did: combos deleted, and combo entries refused (symbolic links)."""

    removed: list[str]
    refused: list[str]


def clear_plan(cache_dir: Path, combo: str | None) -> ClearResult:
    """What clear would do, deleting nothing: one combo (FeatureError if it is a link or absent), or
    with `combo` None every combo cache, symbolic links refused and listed."""
    if combo is not None:
        return ClearResult([existing_combo_folder(cache_dir, combo).name], [])
    folders, links = find_combo_folders(cache_dir)
    return ClearResult([folder.name for folder in folders], links)


def clear_cache(cache_dir: Path, combo: str | None) -> ClearResult:
    """Delete what clear_plan lists; links are never followed."""
    plan = clear_plan(cache_dir, combo)
    for name in plan.removed:
        remove_combo_folder(cache_dir, name)
    return plan


def prune_cache(settings: Settings, dry_run: bool = False) -> tuple[str, int, int]:
    """(combo, entries deleted or that `dry_run` would delete, entries there were) of the configured combo's store:
    the entries no processed catalogue item reads with these settings (other weights, edited content, removed
    items). A FeatureError when the combo has no store."""
    from mmrec.data.tables import load_items
    from mmrec.features.item_features import prune_item_features

    combo = settings.features.combo
    existing_combo_folder(settings.paths.cache_dir, combo)
    items = load_items(settings.paths.processed_dir)
    stale, stored = prune_item_features(items, settings.features, settings.cache, settings.paths.cache_dir, dry_run)
    return combo, stale, stored


__all__ = [
    "CacheInfo",
    "CacheListing",
    "CacheStats",
    "ClearResult",
    "ImportResult",
    "PrecomputeResult",
    "cache_stats",
    "clear_cache",
    "clear_plan",
    "combo_names",
    "list_caches",
    "prune_cache",
    "run_cache_import",
    "run_cache_precompute",
]
