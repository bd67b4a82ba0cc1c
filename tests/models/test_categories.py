"""Category columns: cleaning, the vocabulary, the item tower's category tokens, and a model that places cold items
by their categories."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mmrec.data.categories import JOIN, SLOTS, CategoryVocab, cell_values, clean_category_columns, column_notes
from mmrec.data.items import clean_items
from mmrec.errors import DataError
from mmrec.models.inputs import build_item_inputs
from mmrec.models.towers import ItemTower, ModelDims
from mmrec.settings import DataSettings, ModelSettings, PreprocessSettings

TINY = Path(__file__).resolve().parents[1] / "training" / "tiny_project.py"


def test_a_cell_names_its_values_cleaned_case_folded_once_each_in_order():
    assert cell_values(" Action|comedy | ACTION||N/A|<b>Drama</b>", "|") == ["action", "comedy", "drama"]
    assert cell_values("Rock & Roll, Pop", None) == ["rock & roll, pop"]  # no separator: the cell is one value
    assert cell_values(float("nan"), "|") == [] and cell_values(None, "|") == [] and cell_values("null", "|") == []
    assert cell_values("a\x1fb|c", "|") == ["a", "b", "c"]  # a JSON list's entries, as read_table joins them
    assert cell_values("x" * 300 + "|y", "|") == ["x" * 200, "y"]  # cut (counted by clean_category_columns)


def test_preprocess_keeps_category_columns_and_says_when_one_cannot_help():
    raw = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "title": ["A", "B", "C", "D"], "description": "",
                        "channel": ["News 1", "news 1", "Sport", None], "sku": ["x1", "x2", "x3", "x4"]})
    data = DataSettings(numerical_features_cols=[], category_columns=["channel", "sku"])
    items, report, _ = clean_items(raw, data, PreprocessSettings())
    assert items["category:channel"].tolist() == ["news 1", "news 1", "sport", ""]
    assert report.categories["channel"] == {"items_with_value": 3, "distinct_values": 2, "shared_values": 1,
                                            "items_over_slots": 0, "values_cut": 0}
    assert any("No value of category column 'sku' is shared by two items" in note for note in report.notes)
    assert not any("'channel'" in note for note in report.notes)
    many = pd.DataFrame({"g": ["|".join(f"v{k}" for k in range(SLOTS + 2))]})
    cleaned, reports = clean_category_columns(many, ["g"], "|")
    assert reports["g"].items_over_slots == 1 and len(cleaned["category:g"][0].split(JOIN)) == SLOTS + 2
    assert any(f"{SLOTS} of each are read (the first the model learns" in note
               for note in column_notes(reports, 1, "|"))
    long = pd.DataFrame({"g": ["a" * 250 + "x|b", "a" * 250 + "y", "b|" + "a" * 250 + "y"]})
    cleaned, reports = clean_category_columns(long, ["g"], "|")
    assert reports["g"].values_cut == 2 and reports["g"].shared_values == 2  # the two long ones read as one
    assert any("2 value(s) of category column 'g' are longer than 200" in note
               for note in column_notes(reports, 3, "|"))
    with pytest.raises(ValueError, match="item id column"):
        DataSettings(category_columns=["item_id"])


def test_the_vocabulary_keeps_shared_values_and_reads_others_as_none():
    items = pd.DataFrame({"item_id": list("abcd"),
                          "category:genre": [JOIN.join(["x", "y"]), "x", JOIN.join(["y", "z"]), ""]})
    vocab = CategoryVocab.fit(items, ["genre"], min_items=2)
    assert vocab.to_dict() == {"genre": ["x", "y"]} and vocab.sizes == [3]  # z is held by one item only
    codes = vocab.encode(items)
    assert codes.shape == (4, SLOTS)
    assert codes[:, :2].tolist() == [[1, 2], [1, 0], [2, 0], [0, 0]] and not codes[:, 2:].any()
    new = pd.DataFrame({"item_id": ["e"], "category:genre": [JOIN.join(["w", "y"])]})  # w: unknown to the vocabulary
    assert vocab.encode(new)[0, :2].tolist() == [2, 0]
    with pytest.raises(DataError, match="no category column 'genre', which the model reads"):
        vocab.encode(new.drop(columns="category:genre"))
    # Only values an item training learns from holds get an embedding: y is held by a and c, neither trained.
    assert CategoryVocab.fit(items, ["genre"], 2, np.array([False, True, False, True])).to_dict() == {"genre": ["x"]}
    assert vocab.unlearned_note(items, 2) is None  # z: one item's own value, never learnable, no news
    new = pd.DataFrame({"item_id": ["e", "f", "g"], "category:genre": ["w", JOIN.join(["w", "x"]), "v"]})
    note = vocab.unlearned_note(new, 2)  # w is shared now: e is placed without its genre until a retrain
    assert note.startswith("Catalogue items hold category values the model has no embedding for, shared by 2 or more "
                           "items now, and no other value of that column: 1 in 'genre' (e.g. 'w').")


def test_an_item_without_a_known_value_has_no_category_token():
    cfg = ModelSettings(embedding_dim=8, num_heads=2, dropout=0.0, use_vision=False, use_text=False,
                        use_numeric=False)
    dims = ModelDims(n_user_ids=3, n_item_ids=4, vision_dim=0, text_dim=0, numeric_dim=0, category_sizes=(3,))
    tower = ItemTower(cfg, dims).eval()
    assert tower.modalities == ["id", "category0"]
    assert not tower.category_embeddings[0].weight.any()  # zeros: an untrained value adds nothing
    categories = np.zeros((3, SLOTS), dtype=np.int64)
    categories[0, :2] = [1, 2]
    categories[1, 0] = 1
    inputs = build_item_inputs(np.array([1, 2, 3]), None, None, None, None, None, categories=categories)
    assert tower._presence(inputs).tolist() == [[True, True], [True, True], [True, False]]
    with torch.no_grad():
        tower.category_embeddings[0].weight[1:] = torch.randn(2, 8)
        token = tower.projections(inputs)["category0"]
    table = tower.category_embeddings[0].weight
    assert torch.allclose(token[0], (table[1] + table[2]) / 2) and torch.allclose(token[1], table[1])
    assert ModelDims(**ModelDims(3, 4, 0, 0, 0, (3, 5)).to_dict()) == ModelDims(3, 4, 0, 0, 0, (3, 5))
    assert ModelDims(**{"n_user_ids": 3, "n_item_ids": 4, "vision_dim": 0, "text_dim": 0,
                        "numeric_dim": 0}).category_sizes == ()  # a checkpoint from before category columns


def _cold_project(root: Path, **model) -> Path:
    """A tiny project whose item clusters (j % 4) show in a category column only; items from index 48 on are never
    interacted with (cold)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_project_for_categories", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config_path = module.write_tiny_project(root, n_users=40, n_items=64, per_user=10, epochs=30, **model)
    from mmrec.data.splits import SplitFrames, load_split, save_split
    from mmrec.data.tables import load_items, save_items

    items = load_items(root / "processed")
    items["view_number"] = 1.0  # no content signal but the category
    items["category:channel"] = [f"channel {j % 4}" for j in range(len(items))]
    save_items(items, root / "processed")
    parts = load_split(root / "splits")
    save_split(SplitFrames(*(frame[frame["item_id"].str[1:].astype(int) < 48].reset_index(drop=True)
                             for frame in (parts.train, parts.val, parts.test))), root / "splits")
    config = yaml.safe_load(config_path.read_text())
    config["data"] = {"numerical_features_cols": ["view_number"], "category_columns": ["channel"]}
    config["training"].update(learning_rate=0.02, patience=30)  # the last model: tiny validation is noise
    config_path.write_text(yaml.safe_dump(config))
    return config_path


@pytest.mark.parametrize("use_categories", [True, False])
def test_a_trained_model_places_cold_items_by_their_categories(tmp_path, use_categories):
    from mmrec.data.splits import load_split
    from mmrec.data.tables import load_items
    from mmrec.pipeline.train import run_train
    from mmrec.recommenders.multimodal import MultimodalRecommender
    from mmrec.settings import CacheSettings, load_settings

    config = _cold_project(tmp_path, use_categories=use_categories, id_dropout=0.5, item_item=False)
    settings = load_settings(config, {}).settings
    result = run_train(settings)
    recommender = MultimodalRecommender.from_checkpoint(
        result.last_path, items=load_items(tmp_path / "processed"), cache_dir=tmp_path / "cache",
        cache=CacheSettings())
    assert recommender.spec.categories == ({"channel": [f"channel {c}" for c in range(4)]} if use_categories else {})
    train = load_split(tmp_path / "splits", test=False).train
    recommender.fit(train, recommender.items["item_id"].tolist())
    users = [f"u{u}" for u in range(40)]
    scores = recommender.score(users)[:, 48:]  # the 16 cold items, 4 per channel (column k: channel k % 4)
    by_channel = torch.stack([scores[:, c::4].mean(dim=1) for c in range(4)], dim=1)  # [users, 4]
    own = by_channel[torch.arange(40), torch.tensor([u % 4 for u in range(40)])]  # the channel the user watches
    above = int((own > (by_channel.sum(dim=1) - own) / 3).sum())
    if use_categories:
        assert above >= 36, above  # its new items above the other channels' (40 of 40 on 1 and 2 threads)
    else:  # cold items have nothing but the learned "no id" row: all alike, nothing to place them by
        assert torch.allclose(scores, scores[:, :1].expand_as(scores), atol=1e-5)


def test_content_similarity_over_categories_matches_values_exactly():
    from mmrec.models.content_profile import category_features, content_features, content_modalities

    codes = np.zeros((4, 2 * SLOTS), dtype=np.int64)  # two columns: a channel, then genres
    codes[:, 0] = [1, 1, 2, 0]  # items 0 and 1 share channel 1; item 3 has none
    codes[:, SLOTS : SLOTS + 2] = [[1, 2], [1, 2], [3, 0], [0, 0]]
    text = np.eye(4, 5, dtype=np.float32)
    inputs = build_item_inputs(np.arange(1, 5), None, None, text, np.ones(4, dtype=bool), None, categories=codes)
    features = category_features(inputs.categories)
    cosine = features @ features.T
    assert features.shape == (4, 512) and torch.allclose(cosine[0, 1], torch.tensor(1.0))
    assert abs(float(cosine[0, 2])) < 0.3 and not features[3].any()
    # A value's vector does not depend on which others the catalogue holds (serving sees another catalogue).
    assert torch.equal(category_features(inputs.categories[:2])[:, :256], features[:2, :256])
    cfg = ModelSettings(use_vision=False)
    assert content_modalities(cfg, inputs) == ["text", "category", "text+category"]
    assert content_modalities(cfg.model_copy(update={"use_categories": False}), inputs) == ["text"]
    both = content_features(inputs, "text+category")
    assert both.shape == (4, 5 + 512) and torch.allclose(both.norm(dim=1)[:3], torch.ones(3))
    with pytest.raises(ValueError, match="unknown content modality"):
        content_features(inputs, "text+text")


def test_a_resume_refuses_other_category_values_and_reads_settings_added_since_as_defaults(tmp_path):
    from mmrec.checkpoints.store import load_checkpoint, save_checkpoint
    from mmrec.data.tables import load_items, save_items
    from mmrec.errors import CheckpointError
    from mmrec.pipeline.train import run_train
    from mmrec.settings import load_settings

    config = _cold_project(tmp_path, item_item=False)
    settings = load_settings(config, {"training.epochs": 2}).settings
    last = run_train(settings).last_path
    # A checkpoint written before model.use_categories existed records no such key: it ran as the default does.
    state = load_checkpoint(last)
    for key in ("use_categories", "category_min_items"):
        del state["meta"]["settings"]["model"][key]
    save_checkpoint(last, state, state["meta"])
    resumed = run_train(load_settings(config, {"training.epochs": 3}).settings, resume=last)
    assert resumed.history[-1].epoch == 3
    # The same number of values, another one among them: each embedding row would serve another value.
    items = load_items(tmp_path / "processed")
    items["category:channel"] = items["category:channel"].str.replace("channel 0", "zz channel")
    save_items(items, tmp_path / "processed")
    with pytest.raises(CheckpointError, match="other values of category column 'channel'.*'channel 0' is in one"):
        run_train(load_settings(config, {"training.epochs": 4}).settings, resume=resumed.last_path)


def test_training_says_which_category_columns_get_no_token(tmp_path):
    from mmrec.pipeline.train import run_train
    from mmrec.settings import load_settings

    config = _cold_project(tmp_path, item_item=False, category_min_items=100)
    result = run_train(load_settings(config, {"training.epochs": 1}).settings)
    assert any(note.startswith("Category column(s) 'channel' (data.category_columns) hold no value shared by 100 or "
                               "more catalogue items") for note in result.notes)
    assert result.best_path is not None


def test_json_and_parquet_lists_in_a_category_column_are_several_values(tmp_path):
    import json

    from mmrec.data.raw_tables import read_table

    rows = [{"item_id": "a", "tags": ["News", "cars"], "description": ["one", "text"]},
            {"item_id": "b", "tags": "news|Sport", "description": "x"}]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    frame = read_table(path, "item_info", each_entry=["tags"]).frame
    assert [cell_values(cell, "|") for cell in frame["tags"]] == [["news", "cars"], ["news", "sport"]]
    assert frame["description"].tolist() == ["one text", "x"]  # other lists still read as one text
    pd.DataFrame({"item_id": ["a"], "tags": [["x", "y z"]]}).to_parquet(tmp_path / "items.parquet")
    frame = read_table(tmp_path / "items.parquet", "item_info", each_entry=["tags"]).frame
    assert cell_values(frame["tags"][0], None) == ["x", "y z"]
