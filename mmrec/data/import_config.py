"""The config an importer writes beside the data it imports (OUT/mmrec.yaml). Importing again rewrites that file
only while it is as the last import wrote it (OUT/dataset.json records its sha256): a user's edits are kept, and
the new config goes beside it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mmrec.fileio import read_json, sha256_file

CONFIG_FILE = "mmrec.yaml"
BESIDE_FILE = "mmrec.imported.yaml"
RECORD_FILE = "dataset.json"


def import_config_target(out_dir: Path) -> tuple[Path, bool]:
    """(where this import writes its config, whether an edited OUT/mmrec.yaml is kept so it goes beside it)."""
    config = Path(out_dir) / CONFIG_FILE
    try:
        written = read_json(Path(out_dir) / RECORD_FILE).get("config_sha256")
    except (OSError, ValueError, AttributeError):
        written = None  # no earlier import, or one from before the sha was recorded
    if written and config.is_file() and sha256_file(config) != written:
        return Path(out_dir) / BESIDE_FILE, True
    return config, False


def config_sha256(text: str) -> str:
    """What OUT/dataset.json records of the config text an import wrote."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def kept_config_note(out_dir: Path, written: Path) -> str:
    return (f"{Path(out_dir) / CONFIG_FILE} was edited since the last import: it is kept as it is, and this "
            f"import's config is {written} (compare the two).")
