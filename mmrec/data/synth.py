"""A synthetic multimodal catalogue whose latent categories show in every modality.

Each item has one latent category. The category sets the image's palette, shape and texture, the
vocabulary of its title and description, and (through popularity) the scale of its numeric columns.
Users prefer two or three categories, so content predicts interactions and a cold item can be
placed from its content alone. Everything is deterministic given the seed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from mmrec.data.power_law import ITEM_EXPONENT, power_law_weights, sample_interactions
from mmrec.errors import DataError
from mmrec.fileio import atomic_path, atomic_write_json, sha256_file, unrecorded_files
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import DataSettings

CATEGORIES = (
    (
        "ocean",
        (30, 90, 200),
        "circle",
        "waves",
        "wave tide coral reef sailor harbor shell current island lagoon surf marine",
    ),
    (
        "forest",
        (40, 140, 50),
        "triangle",
        "dots",
        "pine moss trail cabin fern oak grove hiker owl canopy timber woodland",
    ),
    (
        "desert",
        (220, 170, 60),
        "square",
        "stripes",
        "dune cactus mirage oasis camel canyon sand nomad sun mesa drought caravan",
    ),
    (
        "city",
        (120, 120, 130),
        "rectangle",
        "grid",
        "street tower subway neon traffic loft skyline avenue taxi market rooftop bridge",
    ),
    (
        "space",
        (20, 20, 60),
        "star",
        "speckle",
        "orbit comet rocket galaxy nebula astronaut planet lunar cosmic satellite meteor star",
    ),
    (
        "garden",
        (200, 60, 140),
        "flower",
        "checker",
        "rose tulip bloom petal bee orchard seed blossom hedge lily meadow pollen",
    ),
    (
        "winter",
        (200, 220, 240),
        "diamond",
        "snow",
        "snow frost glacier sled ice blizzard cocoa mitten alpine chalet fjord sleet",
    ),
    (
        "machine",
        (160, 60, 30),
        "gear",
        "lines",
        "gear engine piston robot circuit bolt turbine forge wrench motor steel factory",
    ),
)
START_TIME = 1_600_000_000  # first interaction time (unix seconds); they span one year
NOISE_WORDS = (
    "the a great new classic edition collection story guide special deluxe simple daily modern "
    "complete little big best first final original volume series part free quick"
).split()


@dataclass
class SynthSummary:
    """Counts of what was written."""

    out_dir: Path
    users: int
    items: int
    interactions: int
    categories: int
    images: int


def _polygon(cx: float, cy: float, radius: float, points: int, rotation: float, inner: float = 1.0) -> list:
    """Vertices of a regular polygon (inner<1 gives a star with 2*points vertices)."""
    steps = points * (2 if inner < 1.0 else 1)
    coords = []
    for k in range(steps):
        r = radius * (inner if inner < 1.0 and k % 2 else 1.0)
        angle = rotation + 2 * math.pi * k / steps
        coords.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return coords


def _texture(
    draw: ImageDraw.ImageDraw, kind: str, size: int, colour: tuple, rng: np.random.Generator
) -> None:
    step = int(rng.integers(6, 12))
    if kind == "stripes":
        for x in range(-size, size, step):
            draw.line([(x, 0), (x + size, size)], fill=colour, width=2)
    elif kind == "lines":
        for y in range(0, size, step):
            draw.line([(0, y), (size, y)], fill=colour, width=1)
    elif kind == "grid":
        for v in range(0, size, step):
            draw.line([(v, 0), (v, size)], fill=colour)
            draw.line([(0, v), (size, v)], fill=colour)
    elif kind == "checker":
        for x in range(0, size, step):
            for y in range(0, size, step):
                if (x // step + y // step) % 2:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=colour)
    elif kind == "waves":
        for y in range(0, size, step):
            draw.line([(x, y + 3 * math.sin(x / 4)) for x in range(0, size, 3)], fill=colour, width=1)
    else:  # dots, speckle, snow: random points of different sizes
        radius = {"dots": 2, "speckle": 1, "snow": 3}.get(kind, 1)
        for x, y in rng.integers(0, size, size=(size // 2, 2)):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)


def draw_item_image(category: int, rng: np.random.Generator, size: int = 96) -> Image.Image:
    """An RGB image whose palette, shape and texture come from `category`, with random variation."""
    _, base, shape, texture, _ = CATEGORIES[category]
    jitter = rng.integers(-35, 36, size=3)
    background = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(base, jitter, strict=True))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    texture_colour = tuple(int(np.clip(c * 0.6 + 60 + rng.integers(-20, 21), 0, 255)) for c in background)
    _texture(draw, texture, size, texture_colour, rng)
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = rng.uniform(0.25, 0.75, size=2) * size
        radius = rng.uniform(0.12, 0.3) * size
        rotation = rng.uniform(0, 2 * math.pi)
        fill = tuple(int(255 - c + rng.integers(-30, 31)) % 256 for c in background)
        if shape == "circle":
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
        elif shape in ("square", "rectangle"):
            aspect = 1.0 if shape == "square" else 0.45
            draw.rectangle([cx - radius, cy - radius * aspect, cx + radius, cy + radius * aspect], fill=fill)
        elif shape == "triangle":
            draw.polygon(_polygon(cx, cy, radius, 3, rotation), fill=fill)
        elif shape == "diamond":
            draw.polygon(_polygon(cx, cy, radius, 4, rotation * 0), fill=fill)
        elif shape == "star":
            draw.polygon(_polygon(cx, cy, radius, 5, rotation, inner=0.45), fill=fill)
        elif shape == "gear":
            draw.polygon(_polygon(cx, cy, radius, 8, rotation, inner=0.75), fill=fill)
        else:  # flower: petals around a centre
            for k in range(6):
                px = cx + radius * 0.6 * math.cos(rotation + k * math.pi / 3)
                py = cy + radius * 0.6 * math.sin(rotation + k * math.pi / 3)
                draw.ellipse(
                    [px - radius * 0.4, py - radius * 0.4, px + radius * 0.4, py + radius * 0.4], fill=fill
                )
    pixels = np.asarray(image, dtype=np.int16)
    noise = rng.normal(0, 12, size=pixels.shape).astype(np.int16)  # sensor-like noise
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")


def _words(category: int, rng: np.random.Generator, count: int, noise_share: float) -> list[str]:
    vocab = CATEGORIES[category][4].split()
    return [
        str(rng.choice(NOISE_WORDS)) if rng.random() < noise_share else str(rng.choice(vocab))
        for _ in range(count)
    ]


MARKER = "synthetic.json"  # beside the files synth wrote (their sha256): a later synth replaces those, nothing else


def _earlier_record(out_dir: Path, key: str) -> dict[str, str]:
    """{file name: sha256} an earlier synth recorded in `out_dir`'s synthetic.json under `key` ("sha256": the input
    files, "image_sha256": the images it drew); {} when none did."""
    try:
        record = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    hashes = record.get(key) if isinstance(record, dict) else None
    return {str(k): str(v) for k, v in hashes.items()} if isinstance(hashes, dict) else {}


def _remove_earlier_images(images_dir: Path, keep: int) -> None:
    """Remove the images an earlier synth drew into `images_dir` that this one does not draw again (all with
    --no-images, the ids past `keep` for a smaller catalogue): left there, preprocess would find them, images for
    items without any, or stray files. Only files still as drawn (their sha256 in synthetic.json) are removed: a
    picture of the user's own saved under a synth name stays."""
    drawn = _earlier_record(images_dir.parent, "image_sha256")
    for k in range(keep, len(drawn)):
        name = f"i{k:05d}.jpg"
        path = images_dir / name
        if path.is_file() and not path.is_symlink() and drawn.get(name) == sha256_file(path):
            path.unlink()


def generate_synthetic(
    out_dir: Path,
    users: int = 300,
    items: int = 400,
    seed: int = 0,
    mean_interactions: int = 50,
    image_size: int = 96,
    data: DataSettings | None = None,
    progress: ProgressCallback = null_progress,
    interactions: int | None = None,
    images: bool = True,
    overwrite: bool = False,
) -> SynthSummary:
    """Write item_info.csv, interactions.csv and images/{item_id}.jpg under `out_dir` (names from `data`).

    `interactions` asks for exactly that many distinct user-item pairs with power-law item
    popularity (mmrec.data.power_law, for scale runs); without it each user gets about
    `mean_interactions`. `images=False` writes no image files (a catalogue for scale runs).
    Input files in `out_dir` that an earlier synth did not write as they are (synthetic.json records their sha256)
    are a user's own data: refused unless `overwrite`.
    """
    data = data or DataSettings()
    if users < 1 or items < 2:
        raise DataError(f"Need at least 1 user and 2 items, got users={users}, items={items}.")
    rng = np.random.default_rng(seed)
    n_cat = len(CATEGORIES)
    out_dir = Path(out_dir)
    names = (data.item_info_file, data.interactions_file)
    own = unrecorded_files(out_dir, names, _earlier_record(out_dir, "sha256"))
    if own and not overwrite:
        raise DataError(
            f"{out_dir} already holds {' and '.join(own)}, which mmrec did not generate (or which was edited since): "
            "a synthetic catalogue would replace them (and images of the same names).",
            hint="Write it into another folder (--out), or pass --force to `mmrec data synth` to replace them.")
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_earlier_images(out_dir / data.images_subdir, items if images else 0)
    if images:
        (out_dir / data.images_subdir).mkdir(exist_ok=True)
    category = rng.integers(0, n_cat, size=items)
    popularity = rng.lognormal(0.0, 1.0, size=items)  # heavy-tailed
    if interactions is not None:
        popularity = power_law_weights(items, ITEM_EXPONENT, rng) * np.exp(0.5)  # lognormal's mean
    item_ids = [f"i{k:05d}" for k in range(items)]

    rows = []
    stage = "Drawing item images" if images else "Writing the catalogue"
    progress(ProgressEvent("synth", 0, items, stage))
    for k, item_id in enumerate(item_ids):
        c = int(category[k])
        title = " ".join(_words(c, rng, int(rng.integers(2, 5)), 0.25)).title()
        description = " ".join(_words(c, rng, int(rng.integers(10, 25)), 0.4)) + "."
        views = int(rng.poisson(popularity[k] * 500) + rng.integers(0, 20))
        rows.append(
            {
                "item_id": item_id,
                data.title_column or "title": title,
                (data.description_columns or ["description"])[0]: description,
                "view_number": views,
                "comment_number": int(rng.binomial(views, 0.02)),
                "thumbup_number": int(rng.binomial(views, 0.08)),
            }
        )
        if images:
            with atomic_path(out_dir / data.images_subdir / f"{item_id}.jpg") as tmp:
                draw_item_image(c, rng, image_size).save(tmp, format="JPEG", quality=90)
        if k % 50 == 0:
            progress(ProgressEvent("synth", k + 1, items, stage))
    progress(ProgressEvent("synth", items, items, stage, done=True))
    if interactions is not None:
        user, item, liked = sample_interactions(rng, users, interactions, category, popularity, n_cat)
        ratings = np.clip(rng.normal(np.where(liked, 4.2, 2.8), 0.7), 1, 5).round()
        frame = pd.DataFrame(
            {
                "user_id": [f"u{u:04d}" for u in user],
                "item_id": [item_ids[i] for i in item],
                "timestamp": START_TIME + rng.integers(0, 365 * 86400, size=len(user)),
                "rating": ratings,
            }
        )
    else:
        frame = _per_user_interactions(rng, users, mean_interactions, category, popularity, item_ids)
    with atomic_path(out_dir / data.item_info_file) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    with atomic_path(out_dir / data.interactions_file) as tmp:
        frame.to_csv(tmp, index=False)
    drawn = ({f"{item_id}.jpg": sha256_file(out_dir / data.images_subdir / f"{item_id}.jpg") for item_id in item_ids}
             if images else {})
    atomic_write_json(out_dir / MARKER, {"made_by": "mmrec data synth", "users": users, "items": items, "seed": seed,
                                         "interactions": interactions, "images": images,
                                         "sha256": {name: sha256_file(out_dir / name) for name in names},
                                         "image_sha256": drawn})
    return SynthSummary(out_dir, users, items, len(frame), n_cat, items if images else 0)


def _per_user_interactions(
    rng: np.random.Generator,
    users: int,
    mean_interactions: int,
    category: np.ndarray,
    popularity: np.ndarray,
    item_ids: list[str],
) -> pd.DataFrame:
    """About `mean_interactions` per user, drawn one user at a time (the demo-sized generator)."""
    items = len(item_ids)
    n_cat = len(CATEGORIES)
    by_category = [np.flatnonzero(category == c) for c in range(n_cat)]
    events = []
    for u in range(users):
        preferred = rng.choice(n_cat, size=int(rng.integers(2, 4)), replace=False)
        weights = rng.dirichlet(np.ones(len(preferred)))
        most = max(1, items // 2)  # a tiny catalogue: at least one interaction each
        count = int(np.clip(rng.poisson(mean_interactions), min(5, most), most))
        chosen: set[int] = set()
        for _ in range(count * 3):
            if len(chosen) >= count:
                break
            if rng.random() < 0.85:  # mostly from preferred categories, popularity-weighted
                pool = by_category[int(rng.choice(preferred, p=weights))]
            else:
                pool = np.arange(items)
            if len(pool) == 0:  # a category without items (a catalogue smaller than the categories)
                pool = np.arange(items)
            p = popularity[pool] / popularity[pool].sum()
            chosen.add(int(rng.choice(pool, p=p)))
        times = np.sort(START_TIME + rng.integers(0, 365 * 86400, size=len(chosen)))
        for item, ts in zip(rng.permutation(sorted(chosen)), times, strict=True):
            liked = category[item] in preferred
            rating = float(np.clip(rng.normal(4.2 if liked else 2.8, 0.7), 1, 5).round())
            events.append((f"u{u:04d}", item_ids[item], int(ts), rating))

    return pd.DataFrame(events, columns=["user_id", "item_id", "timestamp", "rating"])
