"""The config an importer writes beside the data it imports (OUT/mmrec.yaml). Importing again rewrites that file
only while it is as the last import wrote it (OUT/dataset.json records its sha256): a user's edits are kept, and
the new config goes beside it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mmrec.errors import DataError
from mmrec.fileio import read_json, sha256_file, unrecorded_files

CONFIG_FILE = "mmrec.yaml"
BESIDE_FILE = "mmrec.imported.yaml"
RECORD_FILE = "dataset.json"


def _record(out_dir: Path) -> dict | None:
    """OUT/dataset.json as an earlier import wrote it, or None (no import wrote one, or it does not read)."""
    try:
        record = read_json(Path(out_dir) / RECORD_FILE)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def import_config_target(out_dir: Path) -> tuple[Path, str | None]:
    """(where this import writes its config, why OUT/mmrec.yaml is kept so that the config goes beside it: "edited"
    since the last import, or "own" (no import wrote it); None when it is replaced or absent)."""
    config = Path(out_dir) / CONFIG_FILE
    record = _record(out_dir)
    beside = record is not None and record.get("config_file") == BESIDE_FILE  # the last import kept it too
    written = record.get("config_sha256") if record is not None and not beside else None
    if config.is_file() and sha256_file(config) != written and (written or beside or record is None):
        return Path(out_dir) / BESIDE_FILE, "edited" if written else "own"  # (a record without the sha: replaced)
    return config, None


def refuse_own_files(out_dir: Path, names: tuple[str, ...], force: bool, command: str) -> None:
    """DataError when OUT holds input files (`names`) that no import wrote as they are (OUT/dataset.json records the
    sha256 of those it wrote): a user's own data, which an import would replace; unless `force`."""
    if force:
        return
    record = _record(out_dir)
    if record is not None and "files_sha256" not in record:
        return  # an import from before the files were recorded wrote them
    if own := unrecorded_files(Path(out_dir), names, (record or {}).get("files_sha256") or {}):
        raise DataError(
            f"{out_dir} already holds {' and '.join(own)}, which no import wrote (or which was edited since): the "
            "import would replace them.",
            hint=f"Import into another folder (--out), or pass --force to `{command}` to replace them.")


def files_record(out_dir: Path, names: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """What OUT/dataset.json records of the input files an import wrote (for refuse_own_files)."""
    return {"files_sha256": {name: sha256_file(Path(out_dir) / name) for name in names}}


def config_sha256(text: str) -> str:
    """What OUT/dataset.json records of the config text an import wrote (beside "config_file", where it went)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def kept_config_note(out_dir: Path, written: Path, why: str = "edited") -> str:
    """The note on an OUT/mmrec.yaml kept (`why`: import_config_target's reason) and the config written beside it."""
    what = ("was edited since the last import" if why == "edited" else
            "was not written by an import (your own config)")
    return (f"{Path(out_dir) / CONFIG_FILE} {what}: it is kept as it is, and this import's config is {written} "
            "(compare the two).")
