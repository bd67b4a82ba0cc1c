import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

import pytest
from PIL import Image

from mmrec.data.images import ImageJob, load_rgb, process_images
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
    # Past twice the limit Pillow refuses outright, naming its own 2x threshold: the note names the setting.
    for limit in (10_000, 3_000):
        settings = PreprocessSettings(max_image_pixels=limit, num_workers=1)
        result = process_images([ImageJob("bomb", str(image_folder / "bomb.jpg"), "bomb.jpg")], tmp_path / "o",
                                settings)["bomb"]
        assert result.status == "decompression_bomb" and str(2 * limit) not in result.detail.replace(",", "")
        assert f"preprocess.max_image_pixels ({limit:,})" in result.detail, result.detail


def test_a_high_bit_depth_image_is_scaled_a_band_of_rows_at_a_time():
    """A 9000 x 9000 16-bit PNG (under the pixel limit) took 2.2 GB against 0.5 GB for an 8-bit one: the scaling
    made float64 copies of the whole image. Bands of rows give the same pixels."""
    from mmrec.data.images import _SCALED_ROWS, _scaled_to_l

    values = np.random.default_rng(0).integers(0, 65536, (2 * _SCALED_ROWS + 7, 5), dtype=np.uint16)
    scaled = np.asarray(_scaled_to_l(Image.fromarray(values)))
    assert scaled.dtype == np.uint8 and np.array_equal(scaled, np.rint(values / 257.0).astype(np.uint8))


def _png_rgb16(pixels: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG written by hand (PIL cannot write one); pixels: (H, W, 3) uint16."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(float)[..., None] / 255
    return rgb.astype(float) * a + 255 * (1 - a)


def _mode_cases():
    """(name, file bytes, reference RGB as float array) for each input mode that needs care."""
    rng = np.random.default_rng(0)
    gray16 = rng.integers(0, 65536, (6, 8), dtype=np.uint16)
    gray16[0, :3] = (0, 32768, 65535)
    rgb16 = rng.integers(0, 65536, (6, 8, 3), dtype=np.uint16)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    luma = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    cmyk = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)

    def saved(image: Image.Image, fmt: str) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        return buffer.getvalue()

    paletted = Image.fromarray(indices, "L").convert("P")
    paletted.putpalette(palette.tobytes())
    with_alpha = np.dstack([rgb, alpha])
    k = cmyk[..., 3:].astype(float)
    return [
        ("gray16", saved(Image.fromarray(gray16), "PNG"), np.repeat(gray16[..., None] / 257, 3, axis=2)),
        ("rgb16", _png_rgb16(rgb16), rgb16 / 257),
        ("palette", saved(paletted, "PNG"), palette[indices].astype(float)),
        ("LA", saved(Image.fromarray(np.dstack([luma, alpha]), "LA"), "PNG"),
         _over_white(np.repeat(luma[..., None], 3, axis=2), alpha)),
        ("RGBA", saved(Image.fromarray(with_alpha, "RGBA"), "PNG"), _over_white(rgb, alpha)),
        ("CMYK", saved(Image.fromarray(cmyk, "CMYK"), "TIFF"),
         (255 - cmyk[..., :3].astype(float)) * (255 - k) / 255),
    ]


@pytest.mark.parametrize("name, data, reference", [pytest.param(*case, id=case[0]) for case in _mode_cases()])
def test_every_input_mode_converts_to_the_reference_rgb(tmp_path, name, data, reference):
    # 16-bit values are scaled (65535 -> 255), not clipped; alpha is composited over white.
    path = tmp_path / f"{name}.img"
    path.write_bytes(data)
    pixels = np.asarray(load_rgb(str(path), 10**6), dtype=float)
    assert pixels.shape == reference.shape
    assert np.abs(pixels - reference).max() <= 1.0, name


def test_16_bit_gray_survives_the_jpeg_output(tmp_path):
    source = tmp_path / "gray16.png"
    Image.fromarray(np.full((20, 20), 32768, dtype=np.uint16)).save(source)
    job = ImageJob("g", str(source), "g.jpg")
    results = process_images([job], tmp_path / "out", PreprocessSettings(num_workers=1))
    assert results["g"].status == "ok"
    with Image.open(tmp_path / "out" / "g.jpg") as out:
        assert abs(np.asarray(out, dtype=float).mean() - 127.5) < 2  # mid-gray, not white


def test_symlinks_leaving_the_folder_are_refused_unopened(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "real.jpg").write_bytes(_jpeg())
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(_jpeg(colour=(0, 0, 255)))
    (folder / "inside.jpg").symlink_to(folder / "real.jpg")
    (folder / "outside.jpg").symlink_to(secret)
    (folder / "system.jpg").symlink_to("/etc/passwd")
    (folder / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: opened.append(str(fp)) or real_open(fp, *a, **k))
    names = ("inside", "outside", "system", "dangling")
    jobs = [ImageJob(name, str(folder / f"{name}.jpg"), f"{name}.jpg") for name in names]
    results = process_images(jobs, tmp_path / "out", PreprocessSettings(num_workers=1))
    assert {name: results[name].status for name in names} == {
        "inside": "ok",
        "outside": "outside_folder",
        "system": "outside_folder",
        "dangling": "outside_folder",
    }
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["inside.jpg", "sources.json"]
    assert not [path for path in opened if "inside" not in path]


_SLOW_POOL = """
import sys
from pathlib import Path
from mmrec.data.images import ImageJob, process_images
from mmrec.settings import PreprocessSettings
source, out = sys.argv[1], Path(sys.argv[2])
jobs = [ImageJob(f"i{k}", source, f"i{k}.jpg") for k in range(2000)]
process_images(jobs, out, PreprocessSettings(num_workers=2, max_image_side=64))
"""


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_image_workers_die_with_a_killed_parent(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (900, 900, 3), dtype=np.uint8)).save(tmp_path / "noise.jpg")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    parent = subprocess.Popen(
        [sys.executable, "-c", _SLOW_POOL, str(tmp_path / "noise.jpg"), str(tmp_path / "out")], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(parent.pid)) < 2:
            assert parent.poll() is None and time.monotonic() < deadline, "the pool never started"
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 5
    while [pid for pid in workers if _running(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in workers if _running(pid)]
    for pid in alive:  # do not leave them behind if the assertion fails
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"image workers {alive} outlived their killed parent"


def test_an_earlier_image_is_copied_where_hard_links_fail(tmp_path, monkeypatch):
    from mmrec.data import images as images_module

    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (20, 20), (0, 90, 0)).save(folder / "a.jpg")
    jobs = [ImageJob("a", str(folder / "a.jpg"), "a.jpg")]
    first = process_images(jobs, tmp_path / "run1", PreprocessSettings(num_workers=1))

    def no_links(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(images_module.os, "link", no_links)
    again = process_images(jobs, tmp_path / "run2", PreprocessSettings(num_workers=1), earlier=tmp_path / "run1")
    assert again["a"].reused and again["a"].fingerprint == first["a"].fingerprint
    assert (tmp_path / "run2" / "a.jpg").read_bytes() == (tmp_path / "run1" / "a.jpg").read_bytes()
    assert (tmp_path / "run2" / "a.jpg").stat().st_ino != (tmp_path / "run1" / "a.jpg").stat().st_ino  # a copy
