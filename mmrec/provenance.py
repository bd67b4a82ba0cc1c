"""What made an artefact: package versions recorded in every JSON sidecar."""

from __future__ import annotations

import platform
from importlib import metadata

_PACKAGES = ("mmrec", "torch", "torchvision", "transformers", "open_clip_torch", "pandas", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
