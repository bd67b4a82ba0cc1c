"""run_synth / run_import_movielens / run_import_mmrec: produce a dataset in the mmrec input format."""

from __future__ import annotations

from pathlib import Path

from mmrec.data.mmrec_format import MmrecImport, import_mmrec
from mmrec.data.movielens import MovieLensImport, import_movielens
from mmrec.data.synth import SynthSummary, generate_synthetic
from mmrec.progress import ProgressCallback, null_progress
from mmrec.settings import Settings


def run_synth(
    settings: Settings,
    out_dir: Path | None = None,
    users: int = 300,
    items: int = 400,
    seed: int = 0,
    progress: ProgressCallback = null_progress,
    interactions: int | None = None,
    images: bool = True,
    overwrite: bool = False,
) -> SynthSummary:
    """Synthetic catalogue into `out_dir` (default: paths.data_dir), file names from settings.data; input files
    there that no synth wrote are refused unless `overwrite`."""
    target = Path(out_dir) if out_dir is not None else Path(settings.paths.data_dir)
    return generate_synthetic(
        target,
        users=users,
        items=items,
        seed=seed,
        data=settings.data,
        progress=progress,
        interactions=interactions,
        images=images,
        overwrite=overwrite,
    )


def run_import_movielens(
    settings: Settings,
    src: Path,
    out_dir: Path,
    posters: Path | None = None,
    max_users: int | None = None,
    progress: ProgressCallback = null_progress,
    force: bool = False,
) -> MovieLensImport:
    """MovieLens + posters into `out_dir` in the input format (file names from settings.data)."""
    return import_movielens(Path(src), Path(out_dir), posters, settings.data, max_users, progress, force)


def run_import_mmrec(
    settings: Settings,
    src: Path,
    out_dir: Path,
    name: str | None = None,
    keep_cold_users: bool = False,
    progress: ProgressCallback = null_progress,
    force: bool = False,
) -> MmrecImport:
    """An MMRec benchmark folder into `out_dir`: the input format, its own split and a ready config."""
    return import_mmrec(Path(src), Path(out_dir), settings.data, name, keep_cold_users, progress, force)
