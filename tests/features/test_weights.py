import json
import os

import pytest

from mmrec.errors import WeightsNotFoundError
from mmrec.features.file_digests import FileDigests, sha256_file
from mmrec.features.registry import TEXT_BACKBONES, VISION_BACKBONES, resolve_backbone_weights
from mmrec.features.weights import WeightsSource, hub_offline, weights_id
from mmrec.settings import FeaturesSettings

NEEDS_DOWNLOAD = [("vision", n) for n in ("resnet", "clip", "dino", "convnext")] + \
                 [("text", n) for n in ("bert", "roberta", "mpnet", "clip")]


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


@pytest.mark.parametrize("modality,name", NEEDS_DOWNLOAD)
def test_missing_weights_offline_is_a_clear_error(empty_caches, modality, name):
    registry = VISION_BACKBONES if modality == "vision" else TEXT_BACKBONES
    assert hub_offline()
    with pytest.raises(WeightsNotFoundError) as info:
        registry.get(name).resolve(None, allow_download=True)  # allowed, but offline wins
    error = info.value
    assert f"'{name}'" in error.message and str(empty_caches) in error.message
    assert "download skipped" in error.message
    default = "efficientnet-lite" if modality == "vision" else "sentence-bert"
    assert f"features.{modality}_weights" in error.hint and default in error.hint
    assert not any((empty_caches / "hf").rglob("*.safetensors"))  # nothing was downloaded


@pytest.mark.parametrize("modality,name", [("vision", "clip"), ("vision", "resnet"), ("text", "bert")])
def test_a_dead_network_is_named_at_once_without_trying_the_download(empty_caches, monkeypatch, modality, name):
    import socket

    import huggingface_hub
    import torch.hub

    monkeypatch.delenv("HF_HUB_OFFLINE")  # downloads allowed, but the hub's name does not resolve
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    looked_up = []

    def no_dns(host, *args, **kwargs):
        looked_up.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    def never(*args, local_files_only=False, **kwargs):
        if local_files_only:  # the cache lookup before any download: an empty cache
            from huggingface_hub.errors import LocalEntryNotFoundError

            raise LocalEntryNotFoundError("not cached")
        raise AssertionError("no download is tried when the host does not resolve")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    for module, attribute in ((huggingface_hub, "hf_hub_download"), (huggingface_hub, "snapshot_download"),
                              (torch.hub, "download_url_to_file")):
        monkeypatch.setattr(module, attribute, never)
    registry = VISION_BACKBONES if modality == "vision" else TEXT_BACKBONES
    with pytest.raises(WeightsNotFoundError) as info:
        registry.get(name).resolve(None, allow_download=True)
    assert "cannot be reached: its name does not resolve (Name or service not known; no network here?)" in \
        info.value.message
    assert looked_up and looked_up[0] in ("huggingface.co", "download.pytorch.org")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")  # behind a proxy the download decides
    from mmrec.features.weights import unreachable

    assert unreachable("https://huggingface.co") is None


def test_missing_explicit_path_names_it(tmp_path):
    features = FeaturesSettings(vision_weights=str(tmp_path / "nope.pth"), text_weights=str(tmp_path / "nodir"))
    with pytest.raises(WeightsNotFoundError, match="nope.pth"):
        resolve_backbone_weights(features, "vision")
    with pytest.raises(WeightsNotFoundError, match="nodir") as caught:
        resolve_backbone_weights(features, "text")
    # A path the settings name is wrong: nothing is downloaded then, so no advice to allow downloads.
    assert "Point features.text_weights" in caught.value.hint and "allow downloads" not in caught.value.hint


def test_a_model_folder_where_a_weights_file_is_read_says_so(tmp_path):
    (tmp_path / "clip-hf").mkdir()
    (tmp_path / "clip-hf" / "config.json").write_text("{}")
    features = FeaturesSettings(vision_backbone="clip", vision_weights=str(tmp_path / "clip-hf"))
    with pytest.raises(WeightsNotFoundError) as caught:
        resolve_backbone_weights(features, "vision")
    assert "is a Hugging Face model folder; the 'clip' backbone reads one weights file" in caught.value.hint


def test_a_file_that_is_no_weights_file_says_what_it_is_not(tmp_path):
    import torch

    from mmrec.features.weights import load_state_dict_file

    text = tmp_path / "junk.pth"
    text.write_text("junk\n")
    (tmp_path / "junk.safetensors").write_text("junk\n")
    torch.save({"w": torch.ones(2)}, tmp_path / "good.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "good.pth").read_bytes()[:100])
    for name, expected in (("junk.pth", "is not a torch (.pth/.pt) or safetensors weights file"),
                           ("junk.safetensors", "is not a safetensors weights file"),
                           ("cut.pth", "it is truncated or damaged (PytorchStreamReader failed")):
        with pytest.raises(WeightsNotFoundError) as info:
            load_state_dict_file(tmp_path / name)
        assert expected in info.value.message and "features.vision_weights" in info.value.hint
        assert "\n" not in info.value.message
    assert load_state_dict_file(tmp_path / "good.pth")["w"].tolist() == [1.0, 1.0]


def test_offline_defaults_resolve_without_network(empty_caches):
    features = FeaturesSettings()
    assert resolve_backbone_weights(features, "vision").origin == "package"
    assert resolve_backbone_weights(features, "text").origin == "package"


def _identity(path, digests=None, max_tokens=None):
    return weights_id(WeightsSource(path, "explicit"), digests or FileDigests(), max_tokens)


def test_weights_identity_hashes_the_whole_file(tmp_path):
    path = tmp_path / "w.pth"
    data = bytearray(b"a" * (5 << 20))
    path.write_bytes(bytes(data))
    before = _identity(path)
    data[len(data) // 2] = ord("b")  # one byte in the middle (neither the first nor the last MiB)
    path.write_bytes(bytes(data))
    assert _identity(path) != before
    assert _identity(path, max_tokens=16).endswith("@t16") and _identity(path).startswith("sha256:")


def test_folder_identity_covers_weights_config_and_tokenizer(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "vocab.txt").write_text("a\nb")
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    before = _identity(folder)
    (folder / "model.safetensors").write_bytes(b"y" * 10)
    after = _identity(folder)
    (folder / "vocab.txt").write_text("a\nc")
    assert len({before, after, _identity(folder)}) == 3
    (folder / "README.md").write_text("docs do not change vectors")
    assert _identity(folder) == _identity(folder)


def test_weights_digest_is_remembered_by_size_and_mtime(tmp_path, monkeypatch):
    from mmrec.features import file_digests

    path = tmp_path / "w.pth"
    path.write_bytes(b"a" * 1000)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # old enough to be remembered
    memory = tmp_path / "cache" / file_digests.DIGESTS_FILE
    digests = FileDigests(memory)
    first = _identity(path, digests)
    digests.save()
    assert json.loads(memory.read_text())[str(path)][2]
    calls = []
    monkeypatch.setattr(file_digests, "sha256_file", lambda p: calls.append(p) or "never")
    assert _identity(path, FileDigests(memory)) == first and not calls  # read from the memory
    path.write_bytes(b"b" * 1000)  # same size, new mtime: hashed again
    assert _identity(path, FileDigests(memory)) != first and calls


def test_a_damaged_digest_memory_is_ignored(tmp_path):
    memory = tmp_path / "digests.json"
    memory.write_text("{not json")
    path = tmp_path / "w.pth"
    path.write_bytes(b"a")
    assert FileDigests(memory).digest(path) == sha256_file(path)
