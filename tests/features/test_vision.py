"""Vision-specific behaviour (wrong weights, CLIP normalisation, the real default); the loading contract of
every registered backbone is in test_registry.py."""

import re

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from mmrec.errors import WeightsNotFoundError
from mmrec.features.extract import embed_pixels, iter_vision_features
from mmrec.features.vision import ResNet50


def _random_state_file(model, path):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


def _check(backbone, image, dim):
    pixels = torch.stack([backbone.transform(image), backbone.transform(image.rotate(90))])
    features = embed_pixels(backbone.to("cpu"), pixels)
    assert features.shape == (2, dim) and features.dtype == torch.float32
    assert torch.isfinite(features).all()


def test_wrong_architecture_weights_are_a_clear_error(tmp_path):
    from torchvision import models

    path = _random_state_file(models.resnet18(weights=None), tmp_path / "r18.safetensors")
    with pytest.raises(WeightsNotFoundError, match="do not fit the 'resnet'") as caught:
        ResNet50.load(ResNet50.resolve(path, allow_download=False))
    assert "weight(s) the architecture needs are missing (e.g. layer1.0.conv3.weight" in caught.value.message
    assert "weight(s) of another shape (e.g. fc.weight (1000, 512) instead of (1000, 2048)" in caught.value.message


def test_a_config_that_does_not_fit_its_weights_names_the_shapes(tiny_dino_dir, tmp_path):
    import json
    import shutil

    from mmrec.features.vision import DinoV2Small

    folder = tmp_path / "dino"
    shutil.copytree(tiny_dino_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_size": 48}))  # another size's config
    with pytest.raises(WeightsNotFoundError, match=r"do not fit the 'dino' model its config.json describes \(e.g. "
                                                   r"embeddings.cls_token: stored \(1, 1, 32\), config \(1, 1, 48\)"):
        DinoV2Small.load(DinoV2Small.resolve(str(folder), allow_download=False))


def test_clip_image_tower_loads_an_explicit_checkpoint(tiny_clip_checkpoint, tiny_clip_classes, build):
    vision_cls, _ = tiny_clip_classes
    backbone = vision_cls.load(vision_cls.resolve(str(tiny_clip_checkpoint), allow_download=False))
    assert backbone.dim == 16
    _check(backbone, build.blob(), 16)
    features = embed_pixels(backbone, backbone.transform(build.blob()).unsqueeze(0))
    assert torch.allclose(features.norm(dim=-1), torch.ones(1), atol=1e-4)  # CLIP space is normalised


def test_a_damaged_clip_checkpoint_is_a_user_error(tmp_path, tiny_clip_checkpoint, tiny_clip_classes):
    import argparse

    from safetensors.torch import load_file

    vision_cls, _ = tiny_clip_classes
    state = load_file(str(tiny_clip_checkpoint))
    torch.save(state, tmp_path / "good.pt")
    (tmp_path / "html.pt").write_text("<html>404</html>\n")
    torch.save({"state_dict": state, "args": argparse.Namespace(a=1)}, tmp_path / "pickled.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "good.pt").read_bytes()[:5000])
    torch.save({"visual.other": torch.zeros(2)}, tmp_path / "other.pt")
    for name, expected in (("html.pt", "is not a torch (.pth/.pt) or safetensors weights file"),
                           ("pickled.pt", "holds Python objects besides tensors"),
                           ("cut.pt", "it is truncated or damaged"),
                           ("other.pt", f"do not fit open_clip {vision_cls.arch}")):
        with pytest.raises(WeightsNotFoundError, match=re.escape(expected)):
            vision_cls.load(vision_cls.resolve(str(tmp_path / name), allow_download=False))
    assert vision_cls.load(vision_cls.resolve(str(tmp_path / "good.pt"), allow_download=False)).dim == 16


def test_a_weights_file_that_is_no_state_dict_is_a_user_error(tmp_path):
    from mmrec.features.weights import load_state_dict_file

    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(WeightsNotFoundError, match="is no state dict of tensors \\(name -> tensor\\): it holds list"):
        load_state_dict_file(tmp_path / "list.pth")


def test_real_efficientnet_lite_separates_different_images(real_vision, build):
    images = [build.striped(seed=0), build.striped(seed=5), build.blob(seed=2)]
    features = embed_pixels(real_vision, torch.stack([real_vision.transform(im) for im in images]))
    assert features.shape == (3, 1280)
    similar = F.cosine_similarity(features[0], features[1], dim=0)
    different = F.cosine_similarity(features[0], features[2], dim=0)
    assert similar > different + 0.05


def test_corrupt_image_is_reported_not_raised(tmp_path, real_vision, build):
    good = tmp_path / "good.jpg"
    build.striped().save(good, "JPEG")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    batches = list(iter_vision_features(real_vision, [str(good), str(bad), str(tmp_path / "gone.jpg")], 2, 0))
    positions = [p for b in batches for p in b.positions]
    failed = [p for b in batches for p, _ in b.failed]
    assert positions == [0] and sorted(failed) == [1, 2]


def test_a_decoding_worker_leaves_quietly_on_sigterm():
    """`timeout` and systemd signal the whole group: a worker exits 0 (no "worker killed by signal" error in the
    main process, which says what was kept), as torch lets a worker do when its parent sends the signal."""
    import multiprocessing
    import os
    import signal
    import time

    from mmrec.features.extract import _worker_init

    def worker() -> None:
        _worker_init(0)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    child = multiprocessing.get_context("fork").Process(target=worker)
    child.start()
    child.join(timeout=20)
    assert child.exitcode == 0


def test_a_damaged_clip_safetensors_file_is_a_user_error(tmp_path, tiny_clip_checkpoint, tiny_clip_classes):
    """A .safetensors cut short or a web page saved under the name raised safetensors' own error (a traceback)."""
    vision_cls, _ = tiny_clip_classes
    (tmp_path / "cut.safetensors").write_bytes(tiny_clip_checkpoint.read_bytes()[:5000])
    (tmp_path / "page.safetensors").write_text("<html>404</html>\n")
    for name in ("cut.safetensors", "page.safetensors"):
        with pytest.raises(WeightsNotFoundError, match="it is truncated or damaged"):
            vision_cls.load(vision_cls.resolve(str(tmp_path / name), allow_download=False))


def test_an_images_vector_does_not_depend_on_the_images_beside_it(tmp_path, real_vision, build):
    """Convolutions pick their algorithm by batch size: one image alone and the same image among 19 others got
    vectors that differed in their last bits, so results followed the order a cache was filled in."""
    import numpy as np

    paths = []
    for seed in range(20):
        path = tmp_path / f"{seed}.png"
        (build.striped(seed=seed) if seed % 2 else build.blob(seed=seed)).save(path)
        paths.append(str(path))

    def vectors(batch):
        return [v for b in iter_vision_features(real_vision, batch, 32, 0) for v in b.features]

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        together = vectors(paths)
        assert all(np.array_equal(vectors([paths[k]])[0], together[k]) for k in (0, 7))  # bit for bit
    finally:
        torch.set_num_threads(threads)
