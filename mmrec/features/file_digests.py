"""Whole-file sha256 digests, remembered by (path, size, mtime_ns) so unchanged files are not re-read.

Weights identities and image fingerprints both come from here. The memory is one JSON file (under
the cache dir), replaced atomically; concurrent writers may lose each other's entries, which only
costs a re-hash. A file modified in the last few seconds is hashed but not remembered: another
write within the same mtime tick would otherwise go unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from mmrec.fileio import atomic_write_text, sha256_file

DIGESTS_FILE = "file-digests.json"
_RACY_NS = 2_000_000_000


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileDigests:
    """path -> sha256 of the whole file, re-hashed only when its size or mtime changes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, list] = {}
        self._changed = False
        if self.path is not None and self.path.is_file():
            try:
                entries = json.loads(self.path.read_text(encoding="utf-8"))
                self._entries = entries if isinstance(entries, dict) else {}
            except (OSError, ValueError):
                self._entries = {}  # a damaged memory is only a cache: start again

    @classmethod
    def in_folder(cls, folder: Path) -> FileDigests:
        return cls(Path(folder) / DIGESTS_FILE)

    def digest(self, path: str | os.PathLike[str]) -> str | None:
        """sha256 of the file's content, or None when it cannot be read."""
        name = os.path.abspath(path)
        try:
            stat = os.stat(name)
        except OSError:
            return None
        known = self._entries.get(name)
        if known is not None and known[:2] == [stat.st_size, stat.st_mtime_ns]:
            return known[2]
        try:
            digest = sha256_file(name)
        except OSError:
            return None
        self.remember(name, digest, stat)
        return digest

    def remember(self, path: str | os.PathLike[str], digest: str, stat: os.stat_result) -> None:
        """Record `digest` as the content of `path` as it was at `stat`."""
        if time.time_ns() - stat.st_mtime_ns < _RACY_NS:
            return
        name = os.path.abspath(path)
        entry = [stat.st_size, stat.st_mtime_ns, digest]
        if self._entries.get(name) != entry:
            self._entries[name] = entry
            self._changed = True

    def save(self) -> None:
        """Write the memory back (atomically) when something new was learned."""
        if self.path is None or not self._changed:
            return
        try:
            atomic_write_text(self.path, json.dumps(self._entries, separators=(",", ":")))
        except OSError:
            return  # a read-only cache dir costs re-hashing next time, nothing else
        self._changed = False
