"""Weight resolution: explicit path -> local caches -> download (when allowed) -> WeightsNotFoundError.

Nothing here downloads while HF_HUB_OFFLINE is set. Every resolved source carries a `weights_id`
that identifies the weights' content, so the feature store never serves vectors of old weights.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import ClassVar

from mmrec.errors import WeightsNotFoundError

OFFLINE_DEFAULTS = {"vision": "efficientnet-lite", "text": "sentence-bert"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_DIGEST_SPAN = 1 << 20  # bytes hashed at each end of a weight file


@dataclass(frozen=True)
class WeightsSource:
    """Where a backbone's weights were found: a file or folder, how it was found, and its identity."""

    path: Path
    origin: str  # "explicit" | "package" | "hf-cache" | "torch-hub" | "download"
    weights_id: str


@dataclass
class SearchLog:
    """The places looked at while resolving, quoted in the error when nothing is found."""

    backbone: str
    modality: str
    places: list[str] = field(default_factory=list)

    def fail(self, extra_hint: str = "") -> WeightsNotFoundError:
        default = OFFLINE_DEFAULTS[self.modality]
        looked = "\n".join(f"  - {place}" for place in self.places) or "  (nowhere)"
        hint = (
            f"Pass a local weights path with features.{self.modality}_weights "
            f"(YAML or MMREC_FEATURES__{self.modality.upper()}_WEIGHTS), allow downloads "
            f"(features.allow_download=true and HF_HUB_OFFLINE unset), or use the offline default "
            f"features.{self.modality}_backbone={default}."
        )
        return WeightsNotFoundError(
            f"No weights found for {self.modality} backbone '{self.backbone}'. Looked in:\n{looked}",
            hint=(extra_hint + " " if extra_hint else "") + hint,
        )


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) says not to touch the network."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    return False


def downloads_allowed(allow_download: bool) -> bool:
    return allow_download and not hub_offline()


def hf_cache_dir() -> Path:
    """The HF hub cache, read from the environment now (not at import) so tests can redirect it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def torch_hub_checkpoints_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def file_digest(path: Path) -> str:
    """Cheap content identity of a (possibly huge) weight file: size + first and last MiB."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(_DIGEST_SPAN))
        if size > 2 * _DIGEST_SPAN:
            handle.seek(-_DIGEST_SPAN, os.SEEK_END)
            digest.update(handle.read(_DIGEST_SPAN))
    return digest.hexdigest()[:16]


def dir_digest(folder: Path) -> str:
    """Identity of a model folder: its config plus the digest of every weight file in it."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and (path.suffix in _WEIGHT_SUFFIXES or path.name == "config.json"):
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(file_digest(path).encode())
    return digest.hexdigest()[:16]


def package_weights_id(distribution: str) -> str:
    return f"pkg:{distribution}=={metadata.version(distribution)}"


def explicit_file(path_text: str, log: SearchLog) -> WeightsSource:
    """A weights FILE the user named (torchvision .pth/.safetensors, open_clip checkpoint)."""
    path = Path(path_text).expanduser()
    log.places.append(f"explicit path {path}")
    if not path.is_file():
        raise log.fail(f"The explicit path {path} is not a file.")
    return WeightsSource(path.resolve(), "explicit", f"file:{file_digest(path)}")


def explicit_dir(path_text: str, log: SearchLog) -> WeightsSource:
    """A Hugging Face model FOLDER the user named (config.json + weights + tokenizer files)."""
    path = Path(path_text).expanduser()
    log.places.append(f"explicit path {path}")
    if not (path / "config.json").is_file():
        raise log.fail(f"The explicit path {path} is not a model folder with a config.json.")
    return WeightsSource(path.resolve(), "explicit", f"dir:{dir_digest(path)}")


def resolve_hf_repo(repo_id: str, allow_download: bool, log: SearchLog) -> WeightsSource:
    """A transformers model folder from the HF cache, else downloaded when allowed, else an error."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cache_dir = hf_cache_dir()
    log.places.append(f"Hugging Face cache {cache_dir} (repo {repo_id})")
    patterns = ["*.json", "*.txt", "*.model", "model.safetensors"]
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True,
                                        allow_patterns=patterns))
        if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            return WeightsSource(folder, "hf-cache", f"hf:{repo_id}@{folder.name}")
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        pass
    if not downloads_allowed(allow_download):
        log.places.append("download skipped (HF_HUB_OFFLINE set or features.allow_download=false)")
        raise log.fail()
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=patterns))
    except Exception as exc:  # network, auth, missing repo: all end in the same advice
        log.places.append(f"download from the Hugging Face hub failed: {exc}")
        raise log.fail() from None
    return WeightsSource(folder, "download", f"hf:{repo_id}@{folder.name}")


def resolve_hf_file(repo_id: str, filenames: tuple[str, ...], allow_download: bool, log: SearchLog) -> WeightsSource:
    """One weights file of an HF repo (open_clip checkpoints), from the cache or downloaded."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cache_dir = hf_cache_dir()
    log.places.append(f"Hugging Face cache {cache_dir} (repo {repo_id}: {', '.join(filenames)})")
    for filename in filenames:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
        if isinstance(cached, str) and Path(cached).is_file():
            return WeightsSource(Path(cached), "hf-cache", f"hf:{repo_id}/{filename}@{Path(cached).parent.name}")
    if not downloads_allowed(allow_download):
        log.places.append("download skipped (HF_HUB_OFFLINE set or features.allow_download=false)")
        raise log.fail()
    errors = []
    for filename in filenames:
        try:
            path = Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir))
            return WeightsSource(path, "download", f"hf:{repo_id}/{filename}@{path.parent.name}")
        except Exception as exc:
            errors.append(f"{filename}: {exc}")
    log.places.append("download from the Hugging Face hub failed: " + "; ".join(errors))
    raise log.fail()


def resolve_torch_hub(url: str, allow_download: bool, log: SearchLog) -> WeightsSource:
    """A torchvision checkpoint from TORCH_HOME/hub/checkpoints, else downloaded when allowed."""
    folder = torch_hub_checkpoints_dir()
    target = folder / os.path.basename(url)
    log.places.append(f"torch hub checkpoints {target}")
    if target.is_file():
        return WeightsSource(target, "torch-hub", f"torchvision:{target.name}")
    if not downloads_allowed(allow_download):
        log.places.append("download skipped (HF_HUB_OFFLINE set or features.allow_download=false)")
        raise log.fail()
    import torch.hub

    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), hash_prefix=None, progress=False)
    except Exception as exc:
        log.places.append(f"download from {url} failed: {exc}")
        raise log.fail() from None
    return WeightsSource(target, "download", f"torchvision:{target.name}")


def load_state_dict_file(path: Path) -> dict:
    """Tensors of a .safetensors or .pth/.pt file; never unpickles arbitrary objects."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsNotFoundError(
            f"Could not read weights file {path}: {exc}",
            hint="Pass a .safetensors or a tensors-only .pth file (no pickled objects).",
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


class HuggingFaceWeights:
    """Mixin for backbones whose weights are a Hugging Face model folder (`hf_repo`)."""

    hf_repo: ClassVar[str]

    @classmethod
    def _resolve_explicit(cls, explicit: str, log: SearchLog) -> WeightsSource:
        return explicit_dir(explicit, log)

    @classmethod
    def _resolve_default(cls, allow_download: bool, log: SearchLog) -> WeightsSource:
        return resolve_hf_repo(cls.hf_repo, allow_download, log)
