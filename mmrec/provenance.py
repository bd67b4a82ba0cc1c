"""What made an artefact: package versions recorded in every JSON sidecar."""

from __future__ import annotations

import functools
import platform
from importlib import metadata

_PACKAGES = ("mmrec", "torch", "torchvision", "transformers", "open_clip_torch", "pandas", "numpy")


def package_versions() -> dict[str, str]:
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    """Read once per process (each checkpoint save asked the package metadata again: ~20 ms)."""
    versions = [("python", platform.python_version())]
    for name in _PACKAGES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions)
