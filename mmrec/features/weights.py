"""Weight resolution: explicit path -> local caches -> download (when allowed) -> WeightsNotFoundError.

Nothing here downloads while HF_HUB_OFFLINE is set. `weights_id` is the one rule for a source's
identity in feature-store keys: the sha256 of every byte of its weight file(s), so the store never
serves vectors of other weights.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mmrec.errors import WeightsNotFoundError
from mmrec.features.file_digests import FileDigests
from mmrec.fileio import looks_like_torch_save

OFFLINE_DEFAULTS = {"vision": "efficientnet-lite", "text": "sentence-bert"}
# Files of a model folder that change its vectors: weights, configs, tokenizer vocabularies.
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".json", ".txt", ".model")


@dataclass(frozen=True)
class WeightsSource:
    """Where a backbone's weights were found: a file or folder, and how it was found."""

    path: Path
    origin: str  # "explicit" | "package" | "hf-cache" | "torch-hub" | "download"


@dataclass
class SearchLog:
    """The places looked at while resolving, quoted in the error when nothing is found."""

    backbone: str
    modality: str
    places: list[str] = field(default_factory=list)

    def fail(self, extra_hint: str = "", explicit: bool = False) -> WeightsNotFoundError:
        """`explicit`: the path the weights setting names is wrong (nothing is searched or downloaded then)."""
        default = OFFLINE_DEFAULTS[self.modality]
        looked = "\n".join(f"  - {place}" for place in self.places) or "  (nowhere)"
        setting = f"features.{self.modality}_weights (YAML or MMREC_FEATURES__{self.modality.upper()}_WEIGHTS)"
        hint = (
            f"Point {setting} at the weights themselves, or unset it to search the local caches (and download, "
            f"with features.allow_download=true); or use the offline default features.{self.modality}_backbone="
            f"{default}." if explicit else
            f"Pass a local weights path with {setting}, allow downloads "
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


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def unreachable(url: str) -> str | None:
    """Why `url`'s host cannot be reached from here (its name does not resolve: no network), else None. Behind a
    proxy the name need not resolve locally, so the download itself decides. Checked before a download, because
    the hub client retries a dead network for ~25 s per file."""
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return None
    host = urllib.parse.urlparse(url).hostname
    if not host:
        return None
    try:
        socket.getaddrinfo(host, 443)
    except OSError as exc:
        return f"{host} cannot be reached: its name does not resolve ({exc.strerror or exc}; no network here?)"
    return None


def can_download(allow_download: bool, url: str, log: SearchLog) -> bool:
    """Whether to try downloading from `url`; when not, the search log says why."""
    if not downloads_allowed(allow_download):
        log.places.append("download skipped (HF_HUB_OFFLINE set or features.allow_download=false)")
        return False
    if reason := unreachable(url):
        log.places.append(f"download skipped: {reason}")
        return False
    return True


def hub_endpoint() -> str:
    """The Hugging Face hub's address (HF_ENDPOINT, read now, else the public hub)."""
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def hf_cache_dir() -> Path:
    """The HF hub cache, read from the environment now (not at import) so tests can redirect it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def torch_hub_checkpoints_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_id(source: WeightsSource, digests: FileDigests, max_text_tokens: int | None = None) -> str:
    """Identity of the vectors a backbone makes from `source`: sha256 over its whole weight file(s)
    (a folder: every model file with its relative path), plus the text truncation length."""
    path = Path(source.path)
    if path.is_dir():
        combined = hashlib.sha256()
        for file in sorted(path.rglob("*")):
            if file.suffix in _MODEL_FILE_SUFFIXES and file.is_file():
                combined.update(f"{file.relative_to(path)}\0{_digest(file, digests)}\0".encode())
        identity = combined.hexdigest()[:16]
    else:
        identity = _digest(path, digests)[:16]
    return f"sha256:{identity}" + (f"@t{max_text_tokens}" if max_text_tokens is not None else "")


def _digest(path: Path, digests: FileDigests) -> str:
    digest = digests.digest(path)
    if digest is None:
        raise WeightsNotFoundError(f"Cannot read weights file {path}.", hint="Check the file exists and is readable.")
    return digest


def explicit_file(path_text: str, log: SearchLog) -> WeightsSource:
    """A weights FILE the user named (torchvision .pth/.safetensors, open_clip checkpoint)."""
    path = Path(path_text).expanduser()
    log.places.append(f"explicit path {path}")
    if not path.is_file():
        if (path / "config.json").is_file():  # e.g. a transformers CLIP folder given to open_clip's `clip`
            raise log.fail(f"The explicit path {path} is a Hugging Face model folder; the '{log.backbone}' backbone "
                           "reads one weights file (a torchvision state dict, or an open_clip checkpoint for clip).",
                           explicit=True)
        raise log.fail(f"The explicit path {path} is not a file.", explicit=True)
    return WeightsSource(path.resolve(), "explicit")


def explicit_dir(path_text: str, log: SearchLog) -> WeightsSource:
    """A Hugging Face model FOLDER the user named (config.json + weights + tokenizer files)."""
    path = Path(path_text).expanduser()
    log.places.append(f"explicit path {path}")
    if not (path / "config.json").is_file():
        raise log.fail(f"The explicit path {path} is not a model folder with a config.json.", explicit=True)
    return WeightsSource(path.resolve(), "explicit")


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
            return WeightsSource(folder, "hf-cache")
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        pass
    if not can_download(allow_download, hub_endpoint(), log):
        raise log.fail()
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=patterns))
    except Exception as exc:  # network, auth, missing repo: all end in the same advice
        log.places.append(f"download from the Hugging Face hub failed: {exc}")
        raise log.fail() from None
    return WeightsSource(folder, "download")


def resolve_hf_file(repo_id: str, filenames: tuple[str, ...], allow_download: bool, log: SearchLog) -> WeightsSource:
    """One weights file of an HF repo (open_clip checkpoints), from the cache or downloaded."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cache_dir = hf_cache_dir()
    log.places.append(f"Hugging Face cache {cache_dir} (repo {repo_id}: {', '.join(filenames)})")
    for filename in filenames:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
        if isinstance(cached, str) and Path(cached).is_file():
            return WeightsSource(Path(cached), "hf-cache")
    if not can_download(allow_download, hub_endpoint(), log):
        raise log.fail()
    errors = []
    for filename in filenames:
        try:
            path = Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir))
            return WeightsSource(path, "download")
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
        return WeightsSource(target, "torch-hub")
    if not can_download(allow_download, url, log):
        raise log.fail()
    import torch.hub

    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), hash_prefix=None, progress=False)
    except Exception as exc:
        log.places.append(f"download from {url} failed: {exc}")
        raise log.fail() from None
    return WeightsSource(target, "download")


_WEIGHTS_FILE_HINT = ("Point features.vision_weights / features.text_weights at the backbone's weights (a .safetensors "
                      "file, a tensors-only .pth/.pt, or its model folder), or unset it to use the usual lookup.")


def check_torch_save(path: Path) -> None:
    """WeightsNotFoundError unless `path` starts like a torch save (a zip archive or a pickle)."""
    if not looks_like_torch_save(path):
        raise WeightsNotFoundError(
            f"Weights file {path} is not a torch (.pth/.pt) or safetensors weights file: it is neither a zip "
            "archive nor a pickle (a text file, an HTML page or a download that failed?).",
            hint=_WEIGHTS_FILE_HINT,
        )


def unreadable_torch_save(path: Path, exc: Exception) -> WeightsNotFoundError:
    """The user error for a torch.load(weights_only=True) of `path` that raised `exc`: Python objects besides
    tensors (refused, never unpickled), or a truncated or damaged file."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError):
        return WeightsNotFoundError(
            f"Weights file {path} holds Python objects besides tensors, which mmrec does not unpickle.",
            hint="Pass a .safetensors or a tensors-only .pth file (e.g. re-save model.state_dict()).")
    said = str(exc).strip().split("\n")[0].split(". ")[0] or type(exc).__name__  # torch's first sentence
    return WeightsNotFoundError(f"Could not read weights file {path}: it is truncated or damaged ({said}).",
                                hint=_WEIGHTS_FILE_HINT)


def load_state_dict_file(path: Path) -> dict:
    """Tensors of a .safetensors or .pth/.pt file; never unpickles arbitrary objects."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except SafetensorError as exc:
            raise WeightsNotFoundError(f"Weights file {path} is not a safetensors weights file ({exc}).",
                                       hint=_WEIGHTS_FILE_HINT) from None
    check_torch_save(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise unreadable_torch_save(path, exc) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    other = (type(state).__name__ if not isinstance(state, dict) else
             next((f"{key!r}: {type(value).__name__}" for key, value in state.items()
                   if not isinstance(value, torch.Tensor)), None))
    if other is not None:
        raise WeightsNotFoundError(
            f"Weights file {path} is no state dict of tensors (name -> tensor): it holds {other}.",
            hint="Pass a .safetensors file or a .pth of model.state_dict().")
    return state


def _mismatched(name: str, folder: str, loader: Any) -> WeightsNotFoundError:
    """The weights of `folder` do not have the shapes its config.json gives (a config edited or copied from
    another size of the model): which ones, read by loading once more with the mismatch allowed."""
    try:
        _, info = loader.from_pretrained(folder, output_loading_info=True, ignore_mismatched_sizes=True)
        shown = [f"{key}: stored {tuple(stored)}, config {tuple(wanted)}"
                 for key, stored, wanted in sorted(info.get("mismatched_keys") or [], key=str)[:3]]
    except Exception:  # noqa: BLE001  (only the example list is lost)
        shown = []
    return WeightsNotFoundError(
        f"The weights in {folder} do not fit the '{name}' model its config.json describes"
        + (f" (e.g. {'; '.join(shown)})" if shown else "") + ".",
        hint="Use the config.json saved with those weights (save_pretrained writes both), or weights of the size the "
             "config gives.")


def _unreadable(backbone: str, folder: str, what: str, exc: Exception) -> WeightsNotFoundError:
    text = str(exc).strip()
    if "Weights only load failed" in text:  # torch's advice to unpickle it follows: mmrec never does
        said = "a weights file holds Python objects besides tensors, which mmrec does not unpickle"
    else:  # the first lines: some messages end their first line with a colon and list the rest below
        said = " ".join(line.strip() for line in text.splitlines()[:4] if line.strip())[:300] or type(exc).__name__
    return WeightsNotFoundError(
        f"Could not load {what} from {folder} for the '{backbone}' backbone: {said}",
        hint="Point the weights setting at a complete Hugging Face model folder (config.json, weights, and for "
             "text backbones the tokenizer files), as save_pretrained writes it.")


class HuggingFaceWeights:
    """Mixin for backbones whose weights are a Hugging Face model folder (`hf_repo`)."""

    hf_repo: ClassVar[str]
    name: ClassVar[str]
    # config.json's model_type values this backbone is (empty: any encoder, e.g. a sentence-transformers model)
    model_types: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def load_pretrained(cls, loader: Any, source: WeightsSource) -> Any:
        """`loader.from_pretrained(folder)`, refusing (WeightsNotFoundError) a folder that is not this backbone: no
        config.json, another model type, damaged files, or weights missing that transformers would initialise at
        random (a BERT folder named as DINO loaded with every DINO weight random, exit 0, before)."""
        from transformers import AutoConfig

        folder = str(source.path)
        try:
            config = AutoConfig.from_pretrained(folder)
        except Exception as exc:  # OSError, ValueError, JSON errors: what a user's folder can raise
            raise _unreadable(cls.name, folder, "its config.json", exc) from None
        if cls.model_types and config.model_type not in cls.model_types:
            raise WeightsNotFoundError(
                f"{folder} holds a '{config.model_type}' model; the '{cls.name}' backbone is "
                f"{' or '.join(repr(t) for t in cls.model_types)} (e.g. {cls.hf_repo}).",
                hint=f"Point the weights setting at a {cls.name} model folder, or choose the backbone that "
                     f"model is (`mmrec cache backbones` lists them).")
        from transformers.utils import logging as hf_logging

        # transformers' own load report is not shown: it calls the pooler (which mmrec never uses, and masked-LM
        # checkpoints such as roberta-base lack) "newly initialized", and what does matter is checked below.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            model, info = loader.from_pretrained(folder, output_loading_info=True)
        except Exception as exc:  # truncated safetensors, a config that does not fit the loader ...
            if "ignore_mismatched_sizes" in str(exc):  # transformers points at a report it logged: name the shapes
                raise _mismatched(cls.name, folder, loader) from None
            raise _unreadable(cls.name, folder, "its weights", exc) from None
        finally:
            hf_logging.set_verbosity(verbosity)
        # The pooler (a dense layer over [CLS]) is never used: mmrec pools the hidden states itself, and
        # masked-LM checkpoints such as roberta-base do not carry it.
        missing = [key for key in info.get("missing_keys") or [] if not str(key).startswith("pooler.")]
        missing += list(info.get("mismatched_keys") or [])
        if missing:
            raise WeightsNotFoundError(
                f"{len(missing)} weight(s) of the '{cls.name}' model are missing from {folder} or do not fit it "
                f"(e.g. {', '.join(map(str, missing[:3]))}): they would be random.",
                hint=f"Point the weights setting at a complete {cls.name} model folder (save_pretrained).")
        return model

    @classmethod
    def load_tokenizer(cls, source: WeightsSource) -> Any:
        """The folder's tokenizer; a missing or broken one is a WeightsNotFoundError."""
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(source.path))
        except Exception as exc:  # no tokenizer files, a vocabulary without [UNK] ...
            raise _unreadable(cls.name, str(source.path), "its tokenizer", exc) from None

    @classmethod
    def _resolve_explicit(cls, explicit: str, log: SearchLog) -> WeightsSource:
        return explicit_dir(explicit, log)

    @classmethod
    def _resolve_default(cls, allow_download: bool, log: SearchLog) -> WeightsSource:
        return resolve_hf_repo(cls.hf_repo, allow_download, log)
