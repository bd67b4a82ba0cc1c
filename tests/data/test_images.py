import io
from pathlib import Path

import pytest
from PIL import Image

from mmrec.data.images import ImageJob, process_images
from mmrec.settings import PreprocessSettings


def _jpeg(size=(40, 30), colour=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.jpg").write_bytes(_jpeg())
    (src / "big.jpg").write_bytes(_jpeg((300, 120)))
    buffer = io.BytesIO()
    Image.new("L", (20, 20), 128).save(buffer, format="PNG")
    (src / "gray.png").write_bytes(buffer.getvalue())
    (src / "zero.jpg").write_bytes(b"")
    (src / "text.jpg").write_bytes(b"this is not an image at all")
    (src / "trunc.jpg").write_bytes(_jpeg((200, 200))[:400])
    (src / "bomb.jpg").write_bytes(_jpeg((120, 120)))
    return src


@pytest.mark.parametrize("workers", [1, 2])
def test_every_defect_is_a_status_never_a_crash(image_folder, tmp_path, workers):
    names = {
        "ok": "ok.jpg",
        "big": "big.jpg",
        "gray": "gray.png",
        "zero": "zero.jpg",
        "text": "text.jpg",
        "trunc": "trunc.jpg",
        "missing": "missing.jpg",
    }
    # Padding makes several chunks, so workers=2 really uses the process pool.
    jobs = [ImageJob(i, str(image_folder / n), f"{i}.jpg") for i, n in names.items()] + [
        ImageJob(f"pad{k}", str(image_folder / "ok.jpg"), f"pad{k}.jpg") for k in range(40)
    ]
    settings = PreprocessSettings(max_image_side=64, num_workers=workers)
    out = tmp_path / "out"
    results = process_images(jobs, out, settings)
    status = {i: results[i].status for i in names}
    assert status == {
        "ok": "ok",
        "big": "ok",
        "gray": "ok",
        "zero": "zero_byte",
        "text": "not_image",
        "trunc": "truncated",
        "missing": "missing",
    }
    with Image.open(out / "big.jpg") as big:
        assert max(big.size) == 64 and big.mode == "RGB"
    with Image.open(out / "gray.jpg") as gray:
        assert gray.mode == "RGB"
    assert not (out / "zero.jpg").exists()
    assert results["ok"].fingerprint and len(results["ok"].fingerprint) == 64


def test_decompression_bomb_is_flagged_and_limit_restored(image_folder, tmp_path):
    before = Image.MAX_IMAGE_PIXELS
    settings = PreprocessSettings(max_image_pixels=100 * 100, num_workers=1)
    results = process_images(
        [ImageJob("bomb", str(image_folder / "bomb.jpg"), "bomb.jpg")], tmp_path / "o", settings
    )
    assert results["bomb"].status == "decompression_bomb"
    assert Image.MAX_IMAGE_PIXELS == before
