import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmrec.data.synth import generate_synthetic
from mmrec.errors import DataError


def _digest(folder):
    return hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())
    ).hexdigest()


def test_deterministic_and_in_the_input_format(tmp_path):
    a = generate_synthetic(tmp_path / "a", users=20, items=24, seed=5)
    generate_synthetic(tmp_path / "b", users=20, items=24, seed=5)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    items = pd.read_csv(tmp_path / "a" / "item_info.csv", dtype={"item_id": str})
    assert list(items.columns) == [
        "item_id",
        "title",
        "description",
        "view_number",
        "comment_number",
        "thumbup_number",
    ]
    inter = pd.read_csv(tmp_path / "a" / "interactions.csv")
    assert (
        list(inter.columns) == ["user_id", "item_id", "timestamp", "rating"] and len(inter) == a.interactions
    )
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert all((tmp_path / "a" / "images" / f"{i}.jpg").is_file() for i in items["item_id"])
    assert _digest(tmp_path / "a") != _digest(generate_synthetic(tmp_path / "c", 20, 24, seed=6).out_dir)


def test_latent_category_shows_in_images_and_text(tmp_path):
    generate_synthetic(tmp_path, users=5, items=80, seed=0)
    items = pd.read_csv(tmp_path / "item_info.csv")
    from mmrec.data.synth import CATEGORIES

    vocab = [set(c[4].split()) for c in CATEGORIES]
    # Each item's title/description words point to one category more than any other.
    words = (items["title"].str.lower() + " " + items["description"]).str.split()
    category = [int(np.argmax([len(set(w) & v) for v in vocab])) for w in words]
    colours = np.array(
        [
            np.asarray(Image.open(tmp_path / "images" / f"{i}.jpg")).reshape(-1, 3).mean(0)
            for i in items["item_id"]
        ]
    )
    # Mean colour of items of one category is closer to its own centroid than to other centroids.
    centroids = {c: colours[np.array(category) == c].mean(0) for c in set(category)}
    nearest = [
        min(centroids, key=lambda c: np.linalg.norm(colours[k] - centroids[c])) for k in range(len(items))
    ]
    assert np.mean(np.array(nearest) == np.array(category)) > 0.6


def test_interaction_target_gives_that_many_power_law_interactions(tmp_path):
    summary = generate_synthetic(tmp_path / "a", users=200, items=100, seed=1, interactions=800, images=False)
    generate_synthetic(tmp_path / "b", users=200, items=100, seed=1, interactions=800, images=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    inter = pd.read_csv(tmp_path / "a" / "interactions.csv", dtype=str)
    assert len(inter) == summary.interactions == 800 and not inter.duplicated(["user_id", "item_id"]).any()
    assert summary.images == 0 and not (tmp_path / "a" / "images").exists()
    counts = inter["item_id"].value_counts()
    assert counts.head(10).sum() > 0.3 * len(inter)  # the top 10% of items: a heavy head
    assert inter["user_id"].nunique() > 100 and set(inter["item_id"]) <= {f"i{k:05d}" for k in range(100)}
    items = pd.read_csv(tmp_path / "a" / "item_info.csv", dtype=str)
    assert len(items) == 100 and items["title"].str.len().min() > 0


def test_the_largest_allowed_target_is_met_exactly(tmp_path):
    # Half of users x items: the power-law draws alone fall short here (120 x 150: 8,830 of 9,000 before).
    summary = generate_synthetic(tmp_path, users=120, items=150, seed=0, interactions=9000, images=False)
    inter = pd.read_csv(tmp_path / "interactions.csv", dtype=str)
    assert summary.interactions == len(inter) == 9000 and not inter.duplicated(["user_id", "item_id"]).any()


def test_an_impossible_interaction_target_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="distinct user-item pairs"):
        generate_synthetic(tmp_path, users=3, items=4, interactions=7, images=False)


def test_a_users_own_catalogue_is_never_replaced_without_being_asked(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "item_info.csv").write_text("item_id,title,description\nmy,precious,data\n")
    with pytest.raises(DataError, match="already holds item_info.csv, which mmrec did not generate") as info:
        generate_synthetic(mine, users=5, items=6)
    assert "--force" in info.value.hint
    assert (mine / "item_info.csv").read_text() == "item_id,title,description\nmy,precious,data\n"
    generate_synthetic(mine, users=5, items=6, overwrite=True)  # asked for
    generate_synthetic(mine, users=6, items=6, seed=1)  # its own earlier output: replaced freely (a rerun demo)
    assert pd.read_csv(mine / "interactions.csv")["user_id"].nunique() == 6
    (mine / "item_info.csv").write_text("item_id,title\nmine,My own edited\n")  # edited in synth's folder
    with pytest.raises(DataError, match="already holds item_info.csv, which mmrec did not generate \\(or which "):
        generate_synthetic(mine, users=5, items=6)


def test_a_catalogue_smaller_than_its_categories_still_gets_interactions(tmp_path):
    """3 items, 8 latent categories: most categories hold no item, and at most half the items go to a user."""
    summary = generate_synthetic(tmp_path / "tiny", users=3, items=3, seed=0, images=False)
    inter = pd.read_csv(tmp_path / "tiny" / "interactions.csv")
    assert summary.interactions == len(inter) and inter["user_id"].nunique() == 3
    assert inter.groupby("user_id").size().max() == 1  # 3 // 2 items each
    wider = generate_synthetic(tmp_path / "six", users=4, items=10, seed=1, images=False)
    per_user = pd.read_csv(tmp_path / "six" / "interactions.csv").groupby("user_id").size()
    assert wider.interactions == per_user.sum() and len(per_user) == 4 and per_user.max() <= 5


def test_a_new_synth_removes_the_images_of_the_earlier_one_it_does_not_write_again(tmp_path):
    # `--no-images` over an earlier synth left its 60 images: preprocess found every item with an image.
    generate_synthetic(tmp_path, users=10, items=12, seed=0)
    (tmp_path / "images" / "mine.jpg").write_bytes(b"not the synth's")
    generate_synthetic(tmp_path, users=10, items=8, seed=0)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [*(f"i{k:05d}.jpg" for k in range(8)),
                                                                        "mine.jpg"]
    (tmp_path / "images" / "i00007.jpg").write_bytes(b"my own picture, saved under a synth name")
    generate_synthetic(tmp_path, users=10, items=8, seed=0, images=False)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["i00007.jpg", "mine.jpg"]
